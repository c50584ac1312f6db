"""Failures at start are one line: `python -m bot` against an unreachable or refusing Bot API,
a bad webhook setting, a bad INDEX_DIR; and no secret on stderr at any log level."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import subprocess
import time
from contextlib import suppress
from pathlib import Path

import pytest

from retrieval import IndexKeeper
from tests.support import FEEDS
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.harness import bot_environ, bot_process, run_bot, running_bot, wait_while_running
from tests.support.http import LoopbackServer, free_port, reply
from tests.support.seeds import SEED_TITLE, TYPHOON, write_seeds
from tests.support.socks import SocksProxy

REJECTED = "Telegram rejected the token: get a new one from @BotFather"
WEBHOOK_SECRET = "Wh-s3cret_only-in-this-test"


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    return write_seeds(tmp_path / "seeds", TYPHOON)


def _bot(tmp_path: Path, seeds: Path, **env: str) -> subprocess.CompletedProcess:
    env.setdefault("TELEGRAM_BOT_TOKEN", TOKEN)
    return run_bot(cwd=tmp_path, SEEDS_DIR=str(seeds), INDEX_DIR=str(tmp_path / "index"), **env)


def _no_secret_and_no_traceback(result: subprocess.CompletedProcess, *secrets: str) -> None:
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    for secret in (TOKEN, TOKEN.split(":")[1], *secrets):
        assert secret not in output


def test_an_unreachable_bot_api_is_retried_then_one_line_and_exit_1(tmp_path, seeds):
    api = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    result = _bot(tmp_path, seeds, TELEGRAM_API_BASE_URL=api, START_RETRY_SECONDS="2.5")
    assert result.returncode == 1, result.stderr
    _no_secret_and_no_traceback(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 8, result.stderr
    warnings = [line for line in lines if " WARNING " in line]
    assert len(warnings) >= 2 and all(api in line for line in warnings)
    assert " ERROR " in lines[-1] and api in lines[-1] and "TELEGRAM_PROXY" in lines[-1]


def test_an_unreachable_proxy_is_one_line_naming_it_without_its_password(tmp_path, seeds):
    with FakeBotApi() as fake:
        proxy = f"socks5://who:pa55word-xyz@127.0.0.1:{free_port()}"
        result = _bot(
            tmp_path,
            seeds,
            TELEGRAM_API_BASE_URL=fake.api_root,
            TELEGRAM_PROXY=proxy,
            START_RETRY_SECONDS="0",
            LOG_LEVEL="DEBUG",
        )
    assert result.returncode == 1, result.stderr
    _no_secret_and_no_traceback(result, "pa55word-xyz")
    last = result.stderr.strip().splitlines()[-1]
    assert "TELEGRAM_PROXY" in last and "127.0.0.1" in last
    assert fake.calls == []


@pytest.mark.parametrize(
    ("name", "value"),
    [("TELEGRAM_PROXY", "ftp://who:pa55word-xyz@proxy.example:21"), ("ALL_PROXY", "foo://x:1")],
)
def test_a_bad_proxy_is_one_line_and_exit_2(tmp_path, seeds, name, value):
    with FakeBotApi() as fake:
        result = _bot(tmp_path, seeds, TELEGRAM_API_BASE_URL=fake.api_root, **{name: value})
    assert result.returncode == 2
    _no_secret_and_no_traceback(result, "pa55word-xyz")
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    # besides it, only the index's INFO lines (building it, what it holds)
    assert len(result.stderr.strip().splitlines()) <= 3 and "proxy" in line.lower()
    assert fake.calls == []


@pytest.mark.parametrize("status", [401, 404])
def test_a_rejected_token_is_one_line_and_printed_nowhere(tmp_path, seeds, status):
    def refuse(request) -> None:
        # Whatever the Bot API says, even the token itself, must not come out.
        description = f"Not Found: {request.path}" if status == 404 else "Unauthorized"
        payload = {"ok": False, "error_code": status, "description": description}
        reply(request, status, json.dumps(payload).encode(), "application/json")

    with LoopbackServer(refuse) as api:
        result = _bot(tmp_path, seeds, TELEGRAM_API_BASE_URL=api.url(), LOG_LEVEL="DEBUG")
    assert result.returncode == 1
    _no_secret_and_no_traceback(result)
    assert result.stderr.strip().splitlines()[-1].endswith(REJECTED)


def test_a_bad_webhook_listen_address_is_exit_2_before_any_bot_api_call(tmp_path, seeds):
    with FakeBotApi() as fake:
        result = _bot(
            tmp_path,
            seeds,
            TELEGRAM_API_BASE_URL=fake.api_root,
            WEBHOOK_URL="https://bot.example.org/hook",
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            WEBHOOK_LISTEN="999.1.1.1",
        )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "WEBHOOK_LISTEN" in line and "999.1.1.1" in line
    assert fake.calls == []


def test_a_port_in_use_is_one_line_exit_1_and_no_webhook_is_registered(tmp_path, seeds):
    with socket.create_server(("127.0.0.1", 0)) as taken, FakeBotApi() as fake:
        port = taken.getsockname()[1]
        result = _bot(
            tmp_path,
            seeds,
            TELEGRAM_API_BASE_URL=fake.api_root,
            WEBHOOK_URL="https://bot.example.org/hook",
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
        )
    assert result.returncode == 1
    _no_secret_and_no_traceback(result, WEBHOOK_SECRET)
    [line] = [line for line in result.stderr.splitlines() if " ERROR " in line]
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr
    assert "WEBHOOK_PORT" in line and str(port) in line
    assert fake.calls_to("setWebhook", ok_only=False) == []


def test_a_webhook_secret_without_a_webhook_url_is_exit_2(tmp_path, seeds):
    result = _bot(tmp_path, seeds, WEBHOOK_SECRET=WEBHOOK_SECRET)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "WEBHOOK_SECRET" in line and "WEBHOOK_URL" in line and WEBHOOK_SECRET not in line


def test_index_dir_naming_a_file_is_exit_2_and_an_unwritable_one_still_answers(tmp_path, seeds):
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("x")
    result = run_bot(
        "--console", cwd=tmp_path, stdin="", SEEDS_DIR=str(seeds), INDEX_DIR=str(a_file)
    )
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.split(": ", 1)[1].startswith("INDEX_DIR")
    # Below a file, nothing can be written: a warning, and answers from memory.
    result = run_bot(
        "--console",
        cwd=tmp_path,
        stdin="台风海葵\n",
        SEEDS_DIR=str(seeds),
        INDEX_DIR=str(a_file / "index"),
    )
    assert result.returncode == 0, result.stderr
    assert "cannot write the index" in result.stderr and TYPHOON.title in result.stdout


def test_secrets_are_redacted_at_debug_whatever_the_bot_api_says(tmp_path, seeds):
    """LOG_LEVEL=DEBUG logged setWebhook's parameters, secret included; the proxy password
    must not show either."""
    with FakeBotApi() as fake, SocksProxy(credentials=("user", "proxy-pa55")) as proxy:
        port = free_port()
        environ = bot_environ(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=fake.api_root,
            TELEGRAM_PROXY=proxy.url(),
            SEEDS_DIR=str(seeds),
            INDEX_DIR=str(tmp_path / "index"),
            WEBHOOK_URL="https://bot.example.org/hook",
            WEBHOOK_SECRET=WEBHOOK_SECRET,
            WEBHOOK_LISTEN="127.0.0.1",
            WEBHOOK_PORT=str(port),
            LOG_LEVEL="DEBUG",
        )
        with bot_process(tmp_path, environ) as process:
            wait_while_running(process, lambda: fake.calls_to("setWebhook"), time.monotonic() + 30)
            time.sleep(0.3)  # the DEBUG lines after the call
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    [set_webhook] = fake.calls_to("setWebhook")
    assert set_webhook.params["secret_token"] == WEBHOOK_SECRET  # it was really sent
    assert "setWebhook" in stderr and "secret_token" in stderr  # and really logged, redacted
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    _no_secret_and_no_traceback(result, WEBHOOK_SECRET, "proxy-pa55")


async def test_the_bot_starts_once_the_bot_api_answers_within_the_retry_window(
    fake_api, tmp_path, monkeypatch, caplog
):
    with suppress(ImportError):  # so that this test also runs against the code before it
        import bot.startup

        monkeypatch.setattr(bot.startup, "FIRST_RETRY_DELAY", 0.05)
    keeper = IndexKeeper.open(write_seeds(tmp_path / "seeds"), index_dir=tmp_path / "index")
    fake_api.fail("getMe", status=502, times=6)  # more than the rate limiter's own retries
    with caplog.at_level(logging.WARNING, logger="bot.startup"):
        async with running_bot(fake_api, keeper, START_RETRY_SECONDS="30"):
            user, chat = fake_api.user_in_private_chat()
            html = await fake_api.say(chat, user, "石破茂访问白宫")
            assert SEED_TITLE in html
    retries = [r for r in caplog.records if r.name == "bot.startup"]
    assert len(retries) == 6 and all(r.levelno == logging.WARNING for r in retries)


async def test_the_first_feed_fetch_comes_right_after_start(fake_api, tmp_path):
    """With the default 30-minute interval, the first fetch used to come 30 minutes late."""
    keeper = IndexKeeper.open(write_seeds(tmp_path / "seeds"), index_dir=tmp_path / "index")
    library = keeper.library
    feed = (FEEDS / "bot_news.xml").read_bytes()
    with LoopbackServer(lambda r: reply(r, 200, feed, "application/rss+xml")) as feeds:
        env = {"FEED_URLS": feeds.url("/bot_news.xml"), "FEED_INTERVAL_MINUTES": "30"}
        env["FEED_ALLOW_PRIVATE"] = "1"  # the loopback feed server
        async with running_bot(fake_api, keeper, **env):
            await fake_api.wait_for(lambda: feeds.requests, timeout=10, message="a fetch")
            await fake_api.wait_for(lambda: library.stats().articles > 1, message="its articles")
            await asyncio.sleep(0.5)
            assert len(feeds.requests) == 1  # and the next one only after the interval


async def test_stopping_the_bot_stops_embedding_and_closes_the_index(tmp_path, seeds, fake_api):
    """`running` started the application itself and never called post_stop: a stopped bot
    left its background embedding going and its index open (a merge could still start)."""
    import threading

    import numpy as np

    from retrieval import Meaning
    from tests.support.seeds import write_articles
    from tests.test_meaning import CountingModel

    class Slow(CountingModel):
        started = threading.Event()

        def passage(self, texts: str | list[str]) -> np.ndarray:
            self.started.set()
            time.sleep(0.05)
            return super().passage(texts)

    write_articles(seeds, 0, 40)
    model = Slow()
    keeper = IndexKeeper.open(seeds, tmp_path / "index", meaning=Meaning(model, "slow"))
    async with running_bot(fake_api, keeper):
        assert await asyncio.to_thread(model.started.wait, 10)
    embedded = len(model.embedded)
    await asyncio.sleep(0.3)
    assert len(model.embedded) == embedded < keeper.library.stats().passages
    assert keeper.merge_aside() is False  # closed: no merge starts
