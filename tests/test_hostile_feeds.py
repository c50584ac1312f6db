"""Hostile feeds (issue 12, items 9–12): one feed's server or items cost that feed at most.

Servers are on 127.0.0.1 (a small one here) or an httpx.MockTransport; nothing leaves the
machine."""

from __future__ import annotations

import gzip
import re
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from retrieval import IndexKeeper, seedfile
from retrieval.feeds import FeedReport, ingest_feeds

DRIP_SECONDS = 60.0  # how long a dripping server keeps going: far beyond the test deadline


def rss(*items: str, channel: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"{channel}{''.join(items)}</channel></rss>"
    ).encode()


def item(
    link: str, text: str, title: str = "标题", date: str = "Tue, 11 Feb 2025 01:30:00 GMT"
) -> str:
    return (
        f"<item><title>{title}</title><link>{link}</link><pubDate>{date}</pubDate>"
        f"<description><![CDATA[<p>{text}</p>]]></description></item>"
    )


GOOD = rss(
    item("https://good.example.org/1.html", "第一篇正常的文章。"),
    item("https://good.example.org/2.html", "第二篇正常的文章。"),
)


# ---- a loopback server whose routes misbehave -------------------------------------------------


class Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
        else:
            route(self)

    def send_body(self, body: bytes, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def drip(self, data: bytes) -> None:
        """Send `data` a byte at a time, 5 a second: each read waits far less than any read
        timeout, the whole takes minutes."""
        end = time.monotonic() + DRIP_SECONDS
        for byte in data:
            if self.server.closing.is_set() or time.monotonic() > end:
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(0.2)


def drip_headers(handler: Handler) -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
    handler.drip(head + b"X-Padding: " + b"x" * 1000 + b"\r\n\r\n" + GOOD)


def drip_body(handler: Handler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "application/rss+xml")
    handler.send_header("Content-Length", str(len(GOOD)))
    handler.end_headers()
    handler.drip(GOOD)


def silent(handler: Handler) -> None:
    handler.server.closing.wait(DRIP_SECONDS)  # accepts the connection, never answers


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.closing = threading.Event()
        self.routes: dict[str, Callable[[Handler], None]] = {
            "/good.xml": lambda h: h.send_body(GOOD),
            "/drip-headers": drip_headers,
            "/drip-body": drip_body,
            "/silent": silent,
        }

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients giving up is expected
            super().handle_error(request, client_address)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def serve(self, path: str, body: bytes, **headers: str) -> str:
        self.routes[path] = lambda h: h.send_body(body, **headers)
        return self.url(path)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.closing.set()
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    directory = tmp_path / "seeds"
    directory.mkdir()
    return directory


def bodies(seeds: Path) -> dict[str, str]:
    """URL → body text of every seed file."""
    out = {}
    for path in sorted(seeds.glob("*.txt")):
        header = seedfile.split_header(path.read_text(encoding="utf-8"))
        out[header.url] = re.sub(r"<[^>]+>", "", header.body).strip()
    return out


# ---- 9. one deadline per fetch; one slow feed never holds up the next -------------------------


@pytest.mark.parametrize("path", ["/drip-headers", "/drip-body", "/silent"])
def test_a_dripping_or_silent_server_fails_at_the_deadline_and_the_next_feed_arrives(
    server: Server, seeds: Path, path: str
) -> None:
    start = time.monotonic()

    slow, good = ingest_feeds(
        [server.url(path), server.url("/good.xml")], seeds, deadline=1.0, allow_private=True
    )

    elapsed = time.monotonic() - start
    assert slow == FeedReport(server.url(path), error="took longer than 1 s")
    assert (good.error, good.new) == (None, 2)
    # 1 s plus the good feed; the server drips for a minute, and reads time out after 20 s
    assert elapsed < 10, f"took {elapsed:.1f} s"


def test_the_deadline_does_not_cut_a_feed_that_arrives_in_time(server: Server, seeds: Path) -> None:
    reports = ingest_feeds([server.url("/good.xml")] * 3, seeds, deadline=5.0, allow_private=True)
    assert [(r.error, r.new) for r in reports] == [(None, 2), (None, 0), (None, 0)]


# ---- 10. a bad date or a bad item skips that item, never the feed, never the next feed --------

ATOM_ENTRY = (
    '<entry><title>{title}</title><link href="{link}"/><id>{link}</id>'
    "<updated>{date}</updated>{content}</entry>"
)


def atom(*entries: str, updated: str = "2025-02-11T00:00:00Z") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>t</title><id>urn:t</id><updated>{updated}</updated>{''.join(entries)}</feed>"
    ).encode()


def entry(link: str, date: str = "2025-02-11T08:00:00Z", content: str = "") -> str:
    content = content or "<content>一篇正常的条目。</content>"
    return ATOM_ENTRY.format(title="条目", link=link, date=date, content=content)


@pytest.mark.parametrize(
    "date", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "0000-01-01T00:00:00Z"]
)
def test_an_atom_item_dated_past_year_9999_is_skipped_with_a_note(
    server: Server, seeds: Path, date: str
) -> None:
    url = server.serve(
        "/year10000.xml",
        atom(entry("https://a.example.org/1"), entry("https://a.example.org/bad", date)),
    )

    bad, good = ingest_feeds([url, server.url("/good.xml")], seeds, allow_private=True)

    assert (bad.error, bad.new, bad.skipped) == (None, 1, 1)
    assert bad.notes == (f"skipped item 2 ('条目'): date out of range: {date}",)
    assert (good.error, good.new) == (None, 2)
    assert set(bodies(seeds)) == {"https://a.example.org/1", *_good_links()}


def test_a_feed_dated_past_year_9999_still_gives_its_items(server: Server, seeds: Path) -> None:
    url = server.serve(
        "/feed10000.xml",
        atom(entry("https://a.example.org/1"), updated="9999-12-31T23:59:59-05:00"),
    )
    [report] = ingest_feeds([url], seeds, allow_private=True)
    assert (report.error, report.new) == (None, 1)


@pytest.mark.parametrize(
    ("content", "note"),
    [
        # markup Python's HTML parser rejects outright (bs4: ParserRejectedMarkup)
        ('<content type="html"><![CDATA[<![ x]]></content>', "skipped item 2: unreadable: "),
        ("", "skipped item 2 ('条目'): unusable link: http://[x/bad"),
    ],
)
def test_a_malformed_item_is_skipped_with_a_note_and_the_rest_arrive(
    server: Server, seeds: Path, content: str, note: str
) -> None:
    link = "http://[x/bad" if not content else "https://a.example.org/bad"
    url = server.serve(
        "/malformed.xml",
        atom(
            entry("https://a.example.org/1"),
            ATOM_ENTRY.format(
                title="条目", link=link, date="2025-02-11T08:00:00Z", content=content or ""
            ),
            entry("https://a.example.org/3"),
        ),
    )

    bad, good = ingest_feeds([url, server.url("/good.xml")], seeds, allow_private=True)

    assert (bad.error, bad.new, bad.skipped) == (None, 2, 1)
    [got] = bad.notes
    assert got.startswith(note) and "\n" not in got
    assert (good.error, good.new) == (None, 2)


def test_a_deeply_nested_item_is_written_and_the_next_feed_arrives(
    server: Server, seeds: Path, tmp_path: Path
) -> None:
    deep = "<div>" * 1000 + "深层条目里的正文。" + "</div>" * 1000
    xhtml = (
        f'<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">{deep}</div></content>'
    )
    url = server.serve("/deep.xml", atom(entry("https://a.example.org/deep", content=xhtml)))

    deep_report, good = ingest_feeds([url, server.url("/good.xml")], seeds, allow_private=True)

    assert (deep_report.error, deep_report.new) == (None, 1)
    assert (good.error, good.new) == (None, 2)
    keeper = IndexKeeper.open(seeds, tmp_path / "index")
    library = keeper.library
    assert (
        library.search("深层条目里的正文", k=1).hits[0].article.url == "https://a.example.org/deep"
    )


def _good_links() -> set[str]:
    return {"https://good.example.org/1.html", "https://good.example.org/2.html"}


# ---- 11. the size cap holds for the decoded body ----------------------------------------------


def gzip_bomb(inflated_mb: int) -> bytes:
    """Zeros gzipped twice: a few hundred bytes that inflate to `inflated_mb` MB."""
    once = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    zeros = bytes(1 << 20)
    inner = b"".join(once.compress(zeros) for _ in range(inflated_mb)) + once.flush()
    return gzip.compress(inner, 9)


def test_a_nested_gzip_bomb_is_refused_without_being_inflated(server: Server, seeds: Path) -> None:
    bomb = gzip_bomb(256)
    assert len(bomb) < 2048
    url = server.serve("/bomb", bomb, Content_Encoding="gzip, gzip")

    tracemalloc.start()
    try:
        [report] = ingest_feeds([url], seeds, max_bytes=1 << 20, allow_private=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert report.error == "response larger than 1,048,576 bytes"
    # the inner layer alone inflates to 256 MB at once when both are decoded before the cap
    assert peak < 32 << 20, f"peak {peak / 2**20:.0f} MB while fetching"


def test_a_gzip_bomb_and_the_feed_after_it(server: Server, seeds: Path) -> None:
    url = server.serve("/bomb2", gzip_bomb(64), Content_Encoding="gzip, gzip")
    bomb, good = ingest_feeds(
        [url, server.url("/good.xml")], seeds, max_bytes=1 << 20, allow_private=True
    )
    assert bomb.error == "response larger than 1,048,576 bytes"
    assert (good.error, good.new) == (None, 2)


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
        ("identity", lambda data: data),
    ],
)
def test_compressed_feeds_are_still_read(
    server: Server, seeds: Path, encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    url = server.serve(
        f"/enc/{encoding.replace(', ', '-')}", encode(GOOD), Content_Encoding=encoding
    )
    [report] = ingest_feeds([url], seeds, allow_private=True)
    assert (report.error, report.new) == (None, 2)


@pytest.mark.parametrize(
    ("encoding", "reason"),
    [
        ("br", "unsupported Content-Encoding: br"),
        ("gzip, gzip, gzip", "Content-Encoding has 3 layers: gzip, gzip, gzip"),
    ],
)
def test_unasked_or_piled_up_encodings_fail_the_feed(
    server: Server, seeds: Path, encoding: str, reason: str
) -> None:
    url = server.serve(f"/bad-enc/{encoding.replace(', ', '-')}", GOOD, Content_Encoding=encoding)
    [report] = ingest_feeds([url], seeds, allow_private=True)
    assert report.error == reason


def test_a_corrupt_gzip_body_fails_the_feed_with_a_reason(server: Server, seeds: Path) -> None:
    corrupt = gzip.compress(GOOD)[:10] + b"\xff" * 64  # a gzip header, then no valid block
    url = server.serve("/corrupt", corrupt, Content_Encoding="gzip")
    [report] = ingest_feeds([url], seeds, allow_private=True)
    assert report.error is not None and report.error.startswith("cannot decode the gzip body")


# ---- 12. an article belongs to the feed that first wrote it ----------------------------------

ARTICLE = "https://news.example.org/a/1.html"
TRUSTED = "https://news.example.org/rss"


class Feeds:
    """Feeds on several hosts, served by a MockTransport: URL → current body."""

    def __init__(self) -> None:
        self.bodies: dict[str, bytes] = {}

    def ingest(self, url: str, text: str, seeds: Path) -> FeedReport:
        self.bodies[url] = rss(item(ARTICLE, text))
        transport = httpx.MockTransport(
            lambda request: httpx.Response(200, content=self.bodies[str(request.url)])
        )
        with httpx.Client(transport=transport) as client:
            [report] = ingest_feeds([url], seeds, client=client, allow_private=True)
        return report


def test_another_feed_cannot_rewrite_an_article_a_feed_wrote(seeds: Path) -> None:
    feeds = Feeds()
    assert feeds.ingest(TRUSTED, "原文。", seeds).new == 1

    for _ in range(2):  # each fetch used to flip the text back and forth
        hostile = feeds.ingest("https://evil.example.net/rss", "篡改后的内容。", seeds)
        assert (hostile.new, hostile.updated, hostile.skipped) == (0, 0, 1)
        assert hostile.notes == (f"skipped {ARTICLE}: the article belongs to {TRUSTED}",)
        assert bodies(seeds) == {ARTICLE: "原文。"}
        assert feeds.ingest(TRUSTED, "原文。", seeds).skipped == 1

    # the feed that wrote it, and other feeds on its host, still update it
    assert feeds.ingest(TRUSTED, "更正后的原文。", seeds).updated == 1
    assert feeds.ingest("https://news.example.org/world/rss", "再次更正。", seeds).updated == 1
    assert bodies(seeds) == {ARTICLE: "再次更正。"}
    [path] = seeds.glob("*.txt")
    assert seedfile.split_header(path.read_text(encoding="utf-8")).feed == TRUSTED


def test_the_first_feed_owns_the_article_even_on_another_host(seeds: Path) -> None:
    feeds = Feeds()
    aggregator = "https://aggregator.example.com/feed"
    assert feeds.ingest(aggregator, "聚合站的版本。", seeds).new == 1
    assert feeds.ingest(TRUSTED, "新闻站的版本。", seeds).skipped == 1
    assert bodies(seeds) == {ARTICLE: "聚合站的版本。"}


def test_a_file_written_before_owners_were_recorded_belongs_to_the_articles_host(
    seeds: Path,
) -> None:
    name = seedfile.file_name(ARTICLE, 1_739_237_400_000)
    (seeds / name).write_text(
        seedfile.render("旧文件", ARTICLE, 1_739_237_400_000, "<p>旧版本。</p>"), encoding="utf-8"
    )
    feeds = Feeds()

    assert feeds.ingest("https://evil.example.net/rss", "篡改。", seeds).skipped == 1
    assert bodies(seeds) == {ARTICLE: "旧版本。"}
    assert feeds.ingest(TRUSTED, "新版本。", seeds).updated == 1
    assert bodies(seeds) == {ARTICLE: "新版本。"}
    header = seedfile.split_header((seeds / name).read_text(encoding="utf-8"))
    assert header.feed == TRUSTED  # recorded from now on


def test_an_unchanged_item_leaves_an_old_file_byte_for_byte(seeds: Path) -> None:
    name = seedfile.file_name(ARTICLE, 1_739_237_400_000)
    text = seedfile.render("标题", ARTICLE, 1_739_237_400_000, "<p>原样。</p>")
    (seeds / name).write_text(text, encoding="utf-8")
    report = Feeds().ingest(TRUSTED, "原样。", seeds)
    assert (report.updated, report.skipped) == (0, 1)
    assert (seeds / name).read_text(encoding="utf-8") == text
