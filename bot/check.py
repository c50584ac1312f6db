"""`python -m bot --check`: the settings, the saved index, the token; one line, exit 0 or 1.

For deploy scripts and container health checks, so it runs beside the bot: it opens the index
read-only (never builds, saves or locks it), calls only getMe (never getUpdates, which would
take updates from the running bot), and writes nothing. Exit 1 for anything wrong, bad
settings included: Docker reserves exit status 2 in health checks.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping

from telegram import Bot
from telegram.error import InvalidToken, NetworkError, TelegramError
from telegram.request import HTTPXRequest

from retrieval.usage import counted

from .logs import configure_logging, redact
from .settings import Settings, SettingsError, standard_proxy_credentials
from .startup import REJECTED_TOKEN, via

TIMEOUT = 10.0  # seconds per Bot API request: a health check must answer soon


class Unhealthy(Exception):
    """str(error) is the one line to print."""


def check(environ: Mapping[str, str], *, bot_command: str = "python -m bot") -> int:
    """`bot_command`: how the bot was run, for the hint when the token is missing."""
    secrets: list[str] = standard_proxy_credentials(environ)
    try:
        settings = Settings.from_env(environ, bot_command=bot_command)
        secrets += settings.secrets
        # Only errors, and redacted: the one line below is the report.
        configure_logging("ERROR", secrets=secrets)
        index = _index_summary(settings)
        username = asyncio.run(_get_me(settings))
    except SettingsError as exc:  # every bad setting, one line each
        for problem in exc.problems:
            print(f"unhealthy: {redact(problem, secrets)}", file=sys.stderr)
        return 1
    except Unhealthy as exc:
        print(f"unhealthy: {redact(str(exc), secrets)}", file=sys.stderr)
        return 1
    print(f"ok: @{username}, {index}")
    return 0


def _index_summary(settings: Settings) -> str:
    """What the saved index holds, read without building or writing anything."""
    from retrieval import IndexCorrupt, IndexDirUnusable, default_index_dir, saved_stats

    if not settings.seeds_dir.is_dir():
        raise Unhealthy(f"SEEDS_DIR: {settings.seeds_dir} is not a directory")
    index_dir = settings.index_dir or default_index_dir(settings.seeds_dir)
    try:
        stats = saved_stats(index_dir)
    except IndexDirUnusable as exc:
        raise Unhealthy(f"INDEX_DIR: {exc}") from None
    except IndexCorrupt as exc:
        raise Unhealthy(
            f"the index in {index_dir} is unusable ({exc}); the bot rebuilds it when it starts"
        ) from None
    if stats is None:
        return f"no index yet in {index_dir} (the bot builds it when it starts)"
    newest = stats.newest.date().isoformat() if stats.newest else "-"
    articles, passages = counted(stats.articles, "article"), counted(stats.passages, "passage")
    return f"index {index_dir}: {articles}, {passages}, newest {newest}"


async def _get_me(settings: Settings) -> str:
    try:
        request = HTTPXRequest(
            proxy=settings.telegram_proxy, connect_timeout=TIMEOUT, read_timeout=TIMEOUT
        )
    except ValueError as exc:  # httpx refusing a proxy from HTTPS_PROXY / ALL_PROXY
        raise Unhealthy(f"proxy settings: {exc}") from None
    bot = Bot(
        settings.token or "",
        base_url=settings.base_url,
        base_file_url=settings.base_file_url,
        request=request,
        get_updates_request=request,
    )
    try:
        async with bot:  # initialize() calls getMe
            return bot.username
    except InvalidToken:  # PTB's message carries the token
        raise Unhealthy(REJECTED_TOKEN) from None
    except NetworkError as exc:
        raise Unhealthy(
            f"cannot reach the Telegram Bot API at {settings.api_root}{via(settings)} "
            f"({exc.message})"
        ) from None
    except TelegramError as exc:
        raise Unhealthy(f"the Bot API at {settings.api_root} answered: {exc.message}") from None
