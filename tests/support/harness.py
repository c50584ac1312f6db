"""The bot as the tests run it: the real Application against the fake Bot API server, started
exactly as run_polling / run_webhook start it (minus signals), or `python -m bot` itself in a
subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from telegram.ext import Application, BaseRateLimiter

from bot.app import ALLOWED_UPDATES, build_application, webhook_kwargs
from bot.settings import Settings
from retrieval import Library
from tests.support import REPO
from tests.support.fake_bot_api import TOKEN, FakeBotApi


def setting_names() -> set[str]:
    """Every environment variable Settings.from_env reads, found by watching it read them."""
    read: set[str] = set()

    class Watched(dict[str, str]):
        def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
            read.add(name)
            return super().get(name, default)

    Settings.from_env(Watched(TELEGRAM_BOT_TOKEN=TOKEN))
    return read


def bot_environ(**env: str) -> dict[str, str]:
    """The environment for `python -m bot`: this process's, minus every bot setting, plus `env`,
    importing the bot from this checkout."""
    names = setting_names()
    environ = {k: v for k, v in os.environ.items() if k not in names}
    environ.update(env, PYTHONPATH=str(REPO))
    return environ


def run_bot(
    *args: str, cwd: Path, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess:
    """`python -m bot ARGS` in `cwd` with the settings `env`, to completion."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=bot_environ(**env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def bot_settings(fake: FakeBotApi, **env: str) -> Settings:
    return Settings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": fake.token,
            "TELEGRAM_API_BASE_URL": fake.api_root,
            "RELOAD_SECONDS": "0",
            **env,
        }
    )


@asynccontextmanager
async def running_bot(
    fake: FakeBotApi,
    library: Library,
    *,
    webhook: bool = False,
    rate_limiter: BaseRateLimiter | None = None,
    **env: str,
) -> AsyncIterator[Application]:
    """The real Application, started the way run_polling/run_webhook start it. Subscriptions
    live in a throwaway database unless SUBSCRIPTIONS_DB is given; SEEDS_DIR is the library's
    (never the repository's seeds/, which a feed ingest would write into)."""
    env.setdefault("SEEDS_DIR", str(library.seeds_dir))
    with tempfile.TemporaryDirectory(prefix="bot-subscriptions-") as scratch:
        env.setdefault("SUBSCRIPTIONS_DB", str(Path(scratch) / "subscriptions.sqlite3"))
        settings = bot_settings(fake, **env)
        application = build_application(settings, library, rate_limiter)
        async with application:  # initialize() … shutdown()
            await application.post_init(application)
            if webhook:
                await application.updater.start_webhook(**webhook_kwargs(settings))
            else:
                await application.updater.start_polling(
                    poll_interval=0, timeout=1, allowed_updates=ALLOWED_UPDATES
                )
            await application.start()
            try:
                yield application
            finally:
                await application.updater.stop()
                await application.stop()
