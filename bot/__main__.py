"""`python -m bot` runs the Telegram bot; `python -m bot --console` answers in the terminal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from dotenv import load_dotenv

from retrieval import progress
from retrieval.usage import BAD_INPUT, command, directory_problem, error_line, file_problem
from retrieval.version import VERSION

from .i18n import DEFAULT_LANG, LANGUAGES
from .logs import configure_logging, redact
from .settings import Settings, SettingsError, no_token_message, standard_proxy_credentials

logger = logging.getLogger("bot")

SCRIPT = "news-qa-bot"  # the console script pyproject.toml installs
SEEDS_FIX = "set SEEDS_DIR to the directory of the seed article files"


def bot_command() -> str:
    """How this bot was run (`news-qa-bot`, `.venv/bin/python -m bot`, …), for hints."""
    return command("bot", script=SCRIPT)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=bot_command(), description=__doc__)
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
    parser.add_argument(
        "--env-file",
        metavar="FILE",
        help="settings file to read (default: .env in the current directory, if there is one)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar or progress lines while the index builds "
        "(LOG_LEVEL=WARNING does the same)",
    )
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


def _refused(
    args: argparse.Namespace,
    problems: Sequence[str],
    fix: str | None = None,
    secrets: Sequence[str] = (),
) -> int:
    """Mistakes in what was typed or set, one line each (redacted): `error: …` and exit 2, or
    under --check, its own `unhealthy: …` and exit 1 (Docker reserves 2 in health checks)."""
    for problem in problems:
        line = error_line(problem, fix)
        if args.check:
            line = "unhealthy: " + line.removeprefix("error: ")
        print(redact(line, secrets), file=sys.stderr)
    return 1 if args.check else BAD_INPUT


def _main(args: argparse.Namespace) -> int:
    if args.env_file is not None:
        problem = file_problem(Path(args.env_file))
        if problem:
            fix = "name the settings file, or leave --env-file out to read ./.env if there is one"
            return _refused(args, [f"--env-file {args.env_file}, {problem}"], fix)
    # Real environment variables win over the file.
    load_dotenv(args.env_file or ".env", override=False)
    if args.check:
        from .check import check

        return check(os.environ, bot_command=bot_command())
    if (
        not args.console
        and not os.environ.get("TELEGRAM_BOT_TOKEN", "").strip()
        and sys.stdin.isatty()
        and sys.stdout.isatty()
    ):
        # A person at a terminal without a token: say how to get one, then let them try the
        # bot right here. Without a terminal (services, scripts) it is an error: exit 2.
        logger.warning("%s", no_token_message(bot_command()))
        logger.warning("no token, so answering here in the terminal (Ctrl-D to quit)")
        args.console = True
    try:
        settings = Settings.from_env(
            os.environ, require_token=not args.console, bot_command=bot_command()
        )
    except SettingsError as exc:
        return _refused(args, exc.problems)
    secrets = settings.secrets + standard_proxy_credentials(os.environ)
    configure_logging(settings.log_level, secrets=secrets)

    # Imported here: the retrieval stack (numpy, OpenCC, jieba) takes a second to load, which
    # a settings error need not wait for.
    from retrieval import (
        AliasesFileError,
        IndexDirUnusable,
        IndexKeeper,
        Meaning,
        Workers,
        default_index_dir,
        saved_index_exists,
    )

    if not settings.seeds_dir.is_dir() and not os.environ.get("SEEDS_DIR", "").strip():
        # Typically the installed news-qa-bot run outside the checkout.
        problem = f"SEEDS_DIR is not set and there is no ./seeds directory in {Path.cwd()}"
        return _refused(args, [problem], f"{SEEDS_FIX} (the repository's seeds/ to start with)")
    problem = directory_problem(settings.seeds_dir)
    if problem:
        return _refused(args, [f"SEEDS_DIR {settings.seeds_dir}, {problem}"], SEEDS_FIX)
    if args.quiet:
        progress.show(False)
    index_dir = settings.index_dir or default_index_dir(settings.seeds_dir)
    try:
        fresh = not saved_index_exists(index_dir)
    except IndexDirUnusable as exc:
        return _refused(args, [f"{exc} (INDEX_DIR)"], None, secrets)
    if fresh:
        logger.info("building the index of %s in %s before starting", settings.seeds_dir, index_dir)
    else:
        logger.info("loading the index in %s; seed files new since are indexed first", index_dir)
    try:
        keeper = IndexKeeper.open(
            settings.seeds_dir,
            settings.index_dir,
            aliases_file=settings.aliases_file,
            workers=Workers(count=os.cpu_count() or 1, progress=progress.Reporter()),
            meaning=Meaning.load(),
        )
    except OSError as exc:
        return _refused(args, [f"SEEDS_DIR {settings.seeds_dir}, {exc}"], SEEDS_FIX, secrets)
    except AliasesFileError as exc:
        return _refused(args, [f"ALIASES_FILE {exc}"], "fix it, or unset ALIASES_FILE", secrets)
    except IndexDirUnusable as exc:
        return _refused(args, [f"{exc} (INDEX_DIR)"], None, secrets)

    if args.console:
        from .console import run_console

        try:
            return run_console(
                keeper.library, args.lang, settings.results_per_page, sys.stdin, sys.stdout
            )
        finally:
            keeper.close()  # writes out what its questions embedded, for the next run

    import sqlite3

    from .app import build_application
    from .startup import StartupError, run
    from .subscriptions import SubscriptionStore

    try:
        subscriptions = SubscriptionStore(settings.subscriptions_db)
    except sqlite3.Error as exc:
        problem = f"SUBSCRIPTIONS_DB {settings.subscriptions_db}, it cannot be opened ({exc})"
        return _refused(args, [problem], None, secrets)
    try:
        application = build_application(settings, keeper, subscriptions=subscriptions)
    except ValueError as exc:  # httpx refusing a proxy from HTTPS_PROXY / ALL_PROXY
        problem = f"the proxy settings are not usable, {exc}"
        return _refused(args, [problem], "check TELEGRAM_PROXY, HTTPS_PROXY and ALL_PROXY", secrets)
    try:
        run(application, settings)
    except StartupError as exc:  # not a mistake in the settings: a log line, exit 1
        logger.error("%s", exc)
        return 1
    logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
