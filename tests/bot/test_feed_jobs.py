"""The bot's feed jobs against hostile feed servers (issue 12, items 9 and 10, the bot's side):
each feed is fetched on its own, so a feed that drips its headers a byte at a time, or one
whose items break the ingest, never keeps the next feed in FEED_URLS from arriving; and
SIGTERM stops the bot within seconds even while a fetch hangs, with nothing half-written.
A feed at a private address is refused in one line (issue 23)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from bot.app import NEWS
from bot.subscriptions import SubscriptionStore
from retrieval import IndexKeeper
from tests.support import FEEDS
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.harness import bot_environ, bot_process, running_bot, wait_while_running
from tests.support.http import LoopbackServer, reply
from tests.support.seeds import TYPHOON, write_seeds

VOLCANO = "冰岛雷克雅内斯半岛火山再度喷发"  # bot_news.xml's two new articles
ICEBERG = "南极冰架崩解"
# An Atom entry dated in year 10000 once the time zone is applied: ingest raised ValueError.
YEAR_10000 = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:t</id>
<updated>2025-03-05T00:00:00Z</updated>
<entry><title>future</title><link href="https://future.example.org/1.html"/><id>urn:1</id>
<updated>9999-12-31T23:59:59-05:00</updated><content type="html">&lt;p&gt;text&lt;/p&gt;</content>
</entry></feed>"""


class FeedServer(LoopbackServer):
    """/bot_news.xml (the fixture), /year10000.xml, and /drip.xml: a status line and headers
    sent a byte every 0.2 s, never finished (until the test ends)."""

    def __init__(self) -> None:
        super().__init__(self._respond)
        self.closing = threading.Event()
        self.dripping = threading.Event()  # a fetch of /drip.xml is under way

    def _respond(self, request: BaseHTTPRequestHandler) -> None:
        name = request.path.rpartition("/")[2]
        if name == "drip.xml":
            self.dripping.set()
            for byte in b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 100_000:
                if self.closing.wait(0.2):
                    return
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
        elif name == "year10000.xml":
            reply(request, 200, YEAR_10000, "application/atom+xml")
        else:
            reply(request, 200, (FEEDS / name).read_bytes(), "application/rss+xml")

    def stop(self) -> None:
        self.closing.set()
        super().stop()


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def _pushed_titles(fake_api, chat_id: int) -> str:
    return "".join(
        c.params["text"]
        for c in fake_api.calls_to("sendMessage")
        if int(c.params["chat_id"]) == chat_id and "reply_parameters" not in c.params
    )


async def test_a_dripping_or_failing_feed_never_keeps_the_next_feed_from_arriving(
    fake_api, feeds, tmp_path
):
    seeds = write_seeds(tmp_path / "seeds", TYPHOON)
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    db = tmp_path / "subscriptions.sqlite3"
    SubscriptionStore(db).subscribe(8601)
    urls = [feeds.url(f"/f/{name}") for name in ("drip.xml", "year10000.xml", "bot_news.xml")]
    env = {"FEED_URLS": " ".join(urls), "FEED_ALLOW_PRIVATE": "1", "SUBSCRIPTIONS_DB": str(db)}
    async with running_bot(fake_api, keeper, **env):
        await fake_api.wait_for(
            lambda: (
                VOLCANO in _pushed_titles(fake_api, 8601)
                and ICEBERG in _pushed_titles(fake_api, 8601)
            ),
            timeout=30,
            message="the good feed's articles, pushed",
        )
        assert feeds.dripping.is_set()  # the first feed is still arriving, a byte at a time


def test_sigterm_stops_the_bot_within_seconds_mid_fetch_with_nothing_half_written(feeds, tmp_path):
    seeds = write_seeds(tmp_path / "seeds", TYPHOON)
    db = tmp_path / "subscriptions.sqlite3"
    SubscriptionStore(db).subscribe(8701)
    with FakeBotApi() as fake:
        environ = bot_environ(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=fake.api_root,
            SEEDS_DIR=str(seeds),
            INDEX_DIR=str(tmp_path / "index"),
            SUBSCRIPTIONS_DB=str(db),
            FEED_URLS=f"{feeds.url('/drip.xml')} {feeds.url('/bot_news.xml')}",
            FEED_ALLOW_PRIVATE="1",
        )
        with bot_process(tmp_path, environ) as process:
            wait_while_running(
                process,
                lambda: ICEBERG in _pushed_titles(fake, 8701) and feeds.dripping.is_set(),
                time.monotonic() + 60,
                "the good feed never arrived",
            )
            process.send_signal(signal.SIGTERM)
            # The drip would go on for hours; "within seconds" is generous on any machine.
            _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert "stopped" in stderr
    assert sorted(p.name for p in seeds.iterdir() if p.name.startswith(".")) == []
    # Every seed file is whole: the library reads all of them, skips none.
    stats = IndexKeeper.open(seeds, index_dir=tmp_path / "index-after").library.stats()
    assert stats.skipped == () and stats.articles == 4
    assert SubscriptionStore(db).chats() == [8701]


async def test_the_bot_logs_a_refused_fetch_in_one_line(fake_api, tmp_path, caplog):
    """Issue 23: a feed (or its redirect) at a private address is refused: one WARNING line,
    no traceback, and the server never hears from the bot."""
    caplog.set_level(logging.INFO)
    feed = (FEEDS / "bot_news.xml").read_bytes()
    feed_server = LoopbackServer(lambda r: reply(r, 200, feed, "application/rss+xml")).start()
    keeper = IndexKeeper.open(write_seeds(tmp_path / "seeds", TYPHOON), tmp_path / "index")
    url = feed_server.url("/feed.xml")
    try:
        async with running_bot(fake_api, keeper, FEED_URLS=url) as application:
            news = application.bot_data[NEWS]
            await fake_api.wait_for(lambda: url in news.ingests, message="the first fetch")
    finally:
        feed_server.stop()
    assert news.ingests[url].ok is False and feed_server.requests == []
    lines = [r for r in caplog.records if "refused" in r.getMessage()]
    assert [(r.levelno, r.exc_info) for r in lines] == [(logging.WARNING, None)]
    assert lines[0].getMessage() == (
        f"feed {url}: failed: refused: 127.0.0.1 is not a public address "
        "(FEED_ALLOW_PRIVATE=1 or ingest --allow-private allows private addresses)"
    )
