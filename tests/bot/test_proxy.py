"""Proxies: TELEGRAM_PROXY for all Bot API traffic, FEED_PROXY (and `ingest --proxy`) for
feeds, the standard variables when those are unset; through a SOCKS5 proxy on 127.0.0.1.

The autouse `_no_proxy` fixture sets NO_PROXY for loopback: an explicit proxy (TELEGRAM_PROXY,
FEED_PROXY, --proxy) is used regardless, while the tests of the standard variables drop it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval import IndexKeeper
from tests.support import FEEDS, REPO
from tests.support.fake_bot_api import FakeBotApi
from tests.support.harness import bot_environ, bot_process, running_bot, wait_while_running
from tests.support.http import LoopbackServer, free_port, reply
from tests.support.seeds import TYPHOON, write_seeds
from tests.support.socks import SocksProxy

FEED = "/bot_news.xml"


def serve_feed(request) -> None:
    reply(request, 200, (FEEDS / FEED.lstrip("/")).read_bytes(), "application/rss+xml")


@pytest.fixture
def feed_server():
    with LoopbackServer(serve_feed) as server:
        yield server


@pytest.fixture
def keeper(tmp_path: Path) -> IndexKeeper:
    seeds = write_seeds(tmp_path / "seeds", TYPHOON)
    return IndexKeeper.open(seeds, index_dir=tmp_path / "index")


async def test_bot_api_traffic_and_feed_fetches_go_through_their_socks_proxies(
    fake_api, keeper, feed_server
):
    with SocksProxy(credentials=("tg-user", "tg-pass-123")) as telegram, SocksProxy() as feeds:
        async with running_bot(
            fake_api,
            keeper,
            TELEGRAM_PROXY=telegram.url("socks5"),
            FEED_PROXY=feeds.url("socks5h"),
            FEED_URLS=feed_server.url(FEED),
            FEED_ALLOW_PRIVATE="1",
        ):
            user, chat = fake_api.user_in_private_chat()
            reply_call = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "台风海葵"))
            assert TYPHOON.title in reply_call.params["text"]
            await fake_api.wait_for(
                lambda: keeper.library.stats().articles > 1, message="the feed's items"
            )
            # The fetched article is answered (through the proxy too).
            reply_call = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "冰岛火山"))
            assert "冰岛" in reply_call.params["text"]
        through_telegram = telegram.sent()
        for method in (b"/getMe", b"/getUpdates", b"/sendMessage"):
            assert method in through_telegram, method
        assert f"GET {FEED} ".encode() in feeds.sent()
        assert FEED.encode() not in through_telegram and b"/getUpdates" not in feeds.sent()


def _ingest(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = bot_environ(**{"FEED_ALLOW_PRIVATE": "1", **env})  # the loopback feed server
    return subprocess.run(
        [sys.executable, "-m", "retrieval", "ingest", *args],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ingest_fetches_through_proxy_or_feed_proxy(tmp_path, feed_server):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with SocksProxy() as proxy:
        done = _ingest("--seeds", str(seeds), "--proxy", proxy.url(), feed_server.url(FEED))
        assert done.returncode == 0, done.stderr
        assert f"GET {FEED} ".encode() in proxy.sent()
    with SocksProxy(credentials=("feed-user", "feed-pass-456")) as proxy:
        done = _ingest("--seeds", str(seeds), feed_server.url(FEED), FEED_PROXY=proxy.url())
        assert done.returncode == 0, done.stderr
        assert f"GET {FEED} ".encode() in proxy.sent()


def test_ingest_says_so_in_one_line_when_the_proxy_is_unusable(tmp_path, feed_server):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    done = _ingest("--seeds", str(seeds), "--proxy", "ftp://u:hunter2@x:21", feed_server.url(FEED))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "proxy" in done.stderr
    assert "hunter2" not in done.stderr and "Traceback" not in done.stderr
    # A proxy that is down: that feed fails with a reason, as any unreachable feed does.
    dead = f"socks5://127.0.0.1:{free_port()}"
    done = _ingest("--seeds", str(seeds), "--proxy", dead, feed_server.url(FEED))
    assert done.returncode == 1 and "failed:" in done.stderr and "Traceback" not in done.stderr


def test_the_standard_proxy_variables_still_work_when_ours_are_unset(tmp_path, feed_server):
    """ALL_PROXY=socks5://… crashed both commands for want of a package; NO_PROXY is dropped
    here, or loopback would bypass the proxy."""
    seeds = write_seeds(tmp_path / "seeds", TYPHOON)
    with SocksProxy() as proxy:
        env = {"ALL_PROXY": proxy.url(), "NO_PROXY": ""}
        done = _ingest("--seeds", str(seeds), feed_server.url(FEED), **env)
        assert done.returncode == 0, done.stderr
        assert f"GET {FEED} ".encode() in proxy.sent()

        with FakeBotApi() as fake:
            environ = bot_environ(
                TELEGRAM_BOT_TOKEN=fake.token,
                TELEGRAM_API_BASE_URL=fake.api_root,
                SEEDS_DIR=str(seeds),
                INDEX_DIR=str(tmp_path / "index"),
                **env,
            )
            environ.pop("no_proxy", None)
            with bot_process(tmp_path, environ) as process:
                wait_while_running(
                    process,
                    lambda: b"/getUpdates" in proxy.sent(),
                    time.monotonic() + 30,
                    "getUpdates never went through the proxy",
                )
                process.terminate()
                _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr
