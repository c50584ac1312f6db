"""`python -m bot` runs the Telegram bot; `python -m bot --console` answers in the terminal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dotenv import load_dotenv

from retrieval.version import VERSION

from .i18n import DEFAULT_LANG, LANGUAGES
from .logs import configure_logging
from .settings import NO_TOKEN_MESSAGE, Settings, SettingsError, standard_proxy_credentials

logger = logging.getLogger("bot")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "--console",
        action="store_true",
        help="answer questions typed in the terminal (no token needed)",
    )
    parser.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=DEFAULT_LANG,
        help="language of the bot's own words in --console mode",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the settings, the saved index and the token (getMe), print one line, and "
        "exit 0 (healthy) or 1; changes nothing, safe beside a running bot",
    )
    parser.add_argument("--env-file", default=".env", help="settings file to read (default: .env)")
    parser.add_argument("--version", action="version", version=f"news-qa-bot {VERSION}")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_logging()  # first, so even settings errors go through the token filter
    try:
        return _main(args)
    except KeyboardInterrupt:  # Ctrl-C while loading: not an error worth a traceback
        return 130
    except Exception:  # a bug: logged through the filter, so no secret reaches stderr
        logger.exception("unexpected error")
        return 1


def _main(args: argparse.Namespace) -> int:
    # Real environment variables win over the file.
    load_dotenv(args.env_file, override=False)
    if args.check:
        from .check import check

        return check(os.environ)
    if (
        not args.console
        and not os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    ):
        # A person at a terminal without a token: say how to get one, then let them try the
        # bot right here. Without a terminal (services, scripts) it is an error: exit 2.
        logger.warning("%s", NO_TOKEN_MESSAGE)
        logger.warning("no token, so answering here in the terminal (Ctrl-D to quit)")
        args.console = True
    try:
        settings = Settings.from_env(os.environ, require_token=not args.console)
    except SettingsError as exc:
        logger.error("%s", exc)
        return 2
    secrets = settings.secrets + standard_proxy_credentials(os.environ)
    configure_logging(settings.log_level, secrets=secrets)

    # Imported here: the retrieval stack (numpy, OpenCC, jieba) takes a second to load, which
    # a settings error need not wait for.
    from retrieval import AliasesFileError, IndexDirUnusable, IndexKeeper, Meaning

    if not settings.seeds_dir.is_dir() and not os.environ.get("SEEDS_DIR", "").strip():
        # Typically the installed news-qa-bot run outside the checkout.
        logger.error(
            "SEEDS_DIR is not set and there is no ./seeds directory in %s: set SEEDS_DIR to "
            "the directory of the seed article files (the repository's seeds/ to start with)",
            Path.cwd(),
        )
        return 2
    try:
        keeper = IndexKeeper.open(
            settings.seeds_dir,
            settings.index_dir,
            aliases_file=settings.aliases_file,
            meaning=Meaning.load(),
        )
    except OSError as exc:
        logger.error("SEEDS_DIR: %s is not a readable directory (%s)", settings.seeds_dir, exc)
        return 2
    except AliasesFileError as exc:
        logger.error("ALIASES_FILE: %s", exc)
        return 2
    except IndexDirUnusable as exc:
        logger.error("INDEX_DIR: %s", exc)
        return 2

    if args.console:
        from .console import run_console

        try:
            return run_console(
                keeper.library, args.lang, settings.results_per_page, sys.stdin, sys.stdout
            )
        finally:
            keeper.close()  # saves what its questions embedded, for the next run

    import sqlite3

    from .app import build_application
    from .startup import StartupError, run
    from .subscriptions import SubscriptionStore

    try:
        subscriptions = SubscriptionStore(settings.subscriptions_db)
    except sqlite3.Error as exc:
        logger.error("SUBSCRIPTIONS_DB: cannot open %s (%s)", settings.subscriptions_db, exc)
        return 2
    try:
        application = build_application(settings, keeper, subscriptions=subscriptions)
    except ValueError as exc:  # httpx refusing a proxy from HTTPS_PROXY / ALL_PROXY
        logger.error("proxy settings: %s", exc)
        return 2
    try:
        run(application, settings)
    except StartupError as exc:
        logger.error("%s", exc)
        return 1
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
