"""The bot as the tests run it: the real Application against the fake Bot API server, started
exactly as `python -m bot` starts it (bot.startup.running, minus signals), or `python -m bot`
itself in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from telegram.ext import Application, BaseRateLimiter

from bot.app import build_application
from bot.settings import Settings
from bot.startup import running
from retrieval import IndexKeeper
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


@contextmanager
def bot_process(cwd: Path, environ: dict[str, str]) -> Iterator[subprocess.Popen]:
    """`python -m bot` running in `cwd` with `environ` (see `bot_environ`), its output piped as
    text; killed if it is still running when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=cwd,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_while_running(
    process: subprocess.Popen, done: Callable[[], object], deadline: float, message: str = ""
) -> None:
    """Until `done()`: fails with the process's stderr if it exits first, or with `message`
    once `time.monotonic()` passes `deadline`."""
    while not done():
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, message
        time.sleep(0.05)


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
    keeper: IndexKeeper,
    *,
    webhook: bool = False,
    rate_limiter: BaseRateLimiter | None = None,
    **env: str,
) -> AsyncIterator[Application]:
    """The real Application, started as `python -m bot` starts it: long polling, or the
    webhook server when `webhook` (then env must hold WEBHOOK_URL, WEBHOOK_SECRET and a free
    WEBHOOK_PORT). Subscriptions live in a throwaway database unless SUBSCRIPTIONS_DB is
    given; SEEDS_DIR is the keeper's (never the repository's seeds/, which a feed ingest
    would write into)."""
    env.setdefault("SEEDS_DIR", str(keeper.seeds_dir))
    assert webhook == bool(env.get("WEBHOOK_URL")), "webhook=True goes with WEBHOOK_URL"
    with tempfile.TemporaryDirectory(prefix="bot-subscriptions-") as scratch:
        env.setdefault("SUBSCRIPTIONS_DB", str(Path(scratch) / "subscriptions.sqlite3"))
        settings = bot_settings(fake, **env)
        application = build_application(settings, keeper, rate_limiter)
        # A short long-poll, so that stopping never waits long for one in flight.
        async with running(application, settings, poll_timeout=1) as started:
            yield started
