"""Feed ingest: fetch feeds from a loopback HTTP server and write seed files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from retrieval import IndexKeeper, seedfile
from retrieval.cli import main as cli_main
from retrieval.feeds import FeedReport, format_report, ingest_feeds
from retrieval.feeds import write as feed_write
from retrieval.feeds.fetch import make_client
from retrieval.feeds.parse import FeedItem, parse_feed, sanitize_html
from retrieval.feeds.write import known_articles, render_item
from retrieval.version import VERSION
from tests.support import FEEDS, REPO
from tests.support.http import LoopbackServer, free_port, reply
from tests.support.seeds import SEED, SEED_URL

OWN_NAME = re.compile(r"^\d{8}-\d{6}_[0-9a-f]{16}\.txt$")
CONTENT_TYPES = {".xml": "application/rss+xml", ".rdf": "application/rdf+xml"}
HUGE = 11 * 1024 * 1024
DYNAMIC: dict[str, bytes] = {}  # /dynamic/… feeds a test sets while the server runs


# ---- the loopback feed server ----------------------------------------------------------


def serve_feeds(request: BaseHTTPRequestHandler) -> None:
    """tests/fixtures/feeds/, plus routes for the failure cases."""
    path = request.path
    if path.startswith("/feeds/") or path.startswith("/as-html/"):
        file = FEEDS / path.rpartition("/")[2]
        if not file.is_file():
            reply(request, 404, b"not found", "text/plain")
        elif path.startswith("/as-html/") or file.suffix == ".html":
            reply(request, 200, file.read_bytes(), "text/html; charset=utf-8")
        else:
            reply(request, 200, file.read_bytes(), CONTENT_TYPES.get(file.suffix, "text/xml"))
    elif path.startswith("/dynamic/"):
        reply(request, 200, DYNAMIC[path], "application/rss+xml")
    elif path.startswith("/status/"):
        reply(request, int(path.rpartition("/")[2]), b"<html>error</html>", "text/html")
    elif path == "/loop":
        reply(request, 302, b"", "text/plain", Location="/loop")
    elif path.startswith("/chain/"):
        left = int(path.rpartition("/")[2])
        target = f"/chain/{left - 1}" if left > 1 else "/feeds/voa_rss20.xml"
        reply(request, 302, b"", "text/plain", Location=target)
    elif path == "/empty":
        reply(request, 200, b"", "application/rss+xml")
    elif path == "/huge":
        send_huge(request)
    elif path == "/huge-declared":
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(HUGE))
        request.end_headers()
        request.wfile.write(b"<?xml version='1.0'?><rss version='2.0'>")
    elif path == "/slow":
        time.sleep(1.0)
        reply(request, 200, (FEEDS / "voa_rss20.xml").read_bytes(), "application/rss+xml")
    else:
        reply(request, 404, b"not found", "text/plain")


def send_huge(request: BaseHTTPRequestHandler) -> None:
    """A well-formed-looking RSS stream of 11 MB, no Content-Length: only a cap stops it."""
    request.send_response(200)
    request.send_header("Content-Type", "application/rss+xml")
    request.send_header("Connection", "close")
    request.end_headers()
    item = (
        b"<item><title>x</title><link>http://h.example/x</link>"
        b"<description>" + b"y" * 8000 + b"</description></item>"
    )
    try:
        request.wfile.write(b"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>")
        for _ in range(HUGE // len(item) + 1):
            request.wfile.write(item)
        request.wfile.write(b"</channel></rss>")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up at its size cap, as it should


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer(serve_feeds) as srv:
        yield srv


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A seeds directory holding the project's seed article and two unrelated files."""
    d = tmp_path / "seeds"
    d.mkdir()
    shutil.copy2(SEED, d / SEED.name)
    (d / "README.md").write_text("not a seed\n", encoding="utf-8")
    (d / "notes.txt").write_text("a text file without a seed header\n", encoding="utf-8")
    return d


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/feed.xml"


def snapshot(d: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.iterdir())}


def own_files(d: Path) -> list[Path]:
    return sorted(p for p in d.iterdir() if OWN_NAME.match(p.name))


def read_seed(path: Path) -> tuple[int, str, str, str]:
    """(ms, title, url, body) of a seed file, checking the exact layout on the way."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'\A---\nfeed: "http[^"\n]+"\n---\n', "", text)  # the feed that wrote it
    first, header, rule, blank, body = text.split("\n", 4)
    match = re.fullmatch(r"<!--(\d+)-->", first)
    assert match, first
    assert header.startswith("[") and header.endswith(")")
    title, _, url = header[1:-1].rpartition("](")
    assert rule == "------" and blank == ""
    assert body.endswith("\n") and "\n" not in body.rstrip("\n")
    return int(match.group(1)), title, url, body.rstrip("\n")


def rfc822_ms(value: str) -> int:
    return int(parsedate_to_datetime(value).timestamp() * 1000)


# ---- happy paths ---------------------------------------------------------------------


def test_rss20_items_become_seed_files_and_the_seed_article_is_not_written_again(
    server: LoopbackServer, seeds: Path
) -> None:
    before = snapshot(seeds)
    url = server.url("/feeds/voa_rss20.xml")

    [report] = ingest_feeds([url], seeds, allow_private=True)

    assert report == FeedReport(url, new=2, updated=0, skipped=1)
    assert format_report(report) == f"{url}: 2 new, 0 updated, 1 skipped"
    after = snapshot(seeds)
    for name, state in before.items():  # the seed and the unrelated files are untouched
        assert after[name] == state
    written = own_files(seeds)
    assert len(written) == 2
    by_url = {read_seed(p)[2]: (p, read_seed(p)) for p in written}
    assert SEED_URL not in by_url
    ai = "https://www.voachinese.com/a/congress-ai-hearing-20250211/7970001.html"
    path, (ms, title, _, body) = by_url[ai]
    assert ms == rfc822_ms("Tue, 11 Feb 2025 01:30:00 GMT")
    assert title == "美国国会听证会聚焦[人工智能]安全(上)"
    assert path.name.startswith("20250211-013000_")
    assert body.startswith('<img src="https://gdb.voanews.com/a1b2c3_w900.jpg" width="100%">')
    assert "<p><strong>两党议员的关切</strong></p>" in body
    tw = "https://www.voachinese.com/a/taiwan-exports-january-2025/7970002.html#comments"
    ms, _, _, body = by_url[tw][1]
    assert ms == rfc822_ms("Tue, 11 Feb 2025 03:05:09 +0800")  # converted to UTC
    assert body == "<p>台湾经济部星期二公布，一月出口比去年同期增长\xa04.4%。</p>"
    assert not [p for p in seeds.iterdir() if p.name.startswith(".")]  # no temp files left


def test_a_seed_in_a_subdirectory_is_not_written_again(server: LoopbackServer, seeds: Path) -> None:
    # the index reads seeds recursively, so deduplication must see the same files
    (seeds / "archive").mkdir()
    (seeds / SEED.name).rename(seeds / "archive" / SEED.name)
    [report] = ingest_feeds([server.url("/feeds/voa_rss20.xml")], seeds, allow_private=True)
    assert (report.new, report.skipped) == (2, 1)
    assert SEED_URL not in {read_seed(p)[2] for p in own_files(seeds)}


def test_a_second_run_writes_nothing(server: LoopbackServer, seeds: Path) -> None:
    url = server.url("/feeds/voa_rss20.xml")
    ingest_feeds([url], seeds, allow_private=True)
    before = snapshot(seeds)

    [report] = ingest_feeds([url], seeds, allow_private=True)

    assert (report.new, report.updated, report.skipped, report.error) == (0, 0, 3, None)
    assert snapshot(seeds) == before


def test_the_index_knows_the_articles_a_feed_must_not_write_again(
    server: LoopbackServer, seeds: Path, tmp_path: Path
) -> None:
    """The bot passes the index's articles (IndexKeeper.known_articles) instead of reading
    every seed file's header at every feed run: the same mapping, the same run."""
    url = server.url("/feeds/voa_rss20.xml")
    ingest_feeds([url], seeds, allow_private=True)  # the loopback feed server
    keeper = IndexKeeper.open(seeds, tmp_path / "index")
    known = keeper.known_articles()
    assert known == known_articles(seeds)
    before = snapshot(seeds)
    (seeds / "unreadable.txt").write_bytes(b"\xff not a seed file")  # no header is read
    [report] = ingest_feeds([url], seeds, known=known, allow_private=True)
    assert (report.new, report.updated, report.skipped, report.error) == (0, 0, 3, None)
    assert {k: v for k, v in snapshot(seeds).items() if k != "unreadable.txt"} == before


def test_a_changed_item_replaces_its_file_under_the_same_name(
    server: LoopbackServer, seeds: Path
) -> None:
    feed = (FEEDS / "voa_rss20.xml").read_bytes()
    DYNAMIC["/dynamic/changing.xml"] = feed
    url = server.url("/dynamic/changing.xml")
    ingest_feeds([url], seeds, allow_private=True)
    names = [p.name for p in own_files(seeds)]
    DYNAMIC["/dynamic/changing.xml"] = feed.replace(
        "需要为前沿模型建立测试标准".encode(), "需要为前沿模型建立新的测试标准".encode()
    )

    [report] = ingest_feeds([url], seeds, allow_private=True)

    assert (report.new, report.updated, report.skipped) == (0, 1, 2)
    assert [p.name for p in own_files(seeds)] == names
    bodies = [read_seed(p)[3] for p in own_files(seeds)]
    assert any("新的测试标准" in b for b in bodies)
    assert SEED.read_bytes() == (seeds / SEED.name).read_bytes()
    assert not [p for p in seeds.iterdir() if p.name.startswith(".")]


def test_the_seed_article_is_never_rewritten_even_when_the_feed_differs(
    server: LoopbackServer, seeds: Path
) -> None:
    # The fixture's item for the seed link has a shorter body than the seed file.
    ingest_feeds([server.url("/feeds/voa_rss20.xml")], seeds, allow_private=True)
    ingest_feeds([server.url("/feeds/voa_rss20.xml")], seeds, allow_private=True)
    assert (seeds / SEED.name).read_bytes() == SEED.read_bytes()
    assert list(known_articles(seeds).values()).count(seeds / SEED.name) == 1
    assert sum(SEED_URL in p.read_text(encoding="utf-8") for p in seeds.glob("*.txt")) == 1


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        (
            "rss10.rdf",
            {
                "https://news.example.org/2025/02/rdf-one.html": (
                    "RDF item one",
                    "2025-02-09T08:15:30Z",
                    "<p>Full text of the RDF item.</p><p>Second paragraph.</p>",
                )
            },
        ),
        (
            "atom.xml",
            {
                "https://atom.example.org/posts/1": (
                    "Atom HTML entry",  # type="html" title: tags dropped
                    "2025-02-07T09:00:00Z",  # published wins over updated
                    "<p>Atom content in HTML.</p>",
                ),
                "https://atom.example.org/posts/2": (
                    "Atom plain-text entry",
                    "2025-02-08T09:30:00Z",
                    "<p>Plain text with &lt;angle brackets&gt; &amp; ampersands.</p>",
                ),
            },
        ),
        (
            "encoding_override.xml",  # says utf-8, is windows-1252: feedparser recovers
            {
                "https://enc.example.org/cafe.html": (
                    "Café news",
                    "2025-02-10T15:00:00Z",
                    "<p>Crème brûlée.</p>",
                )
            },
        ),
    ],
)
def test_rss10_atom_and_mislabelled_encodings_are_read(
    server: LoopbackServer, seeds: Path, fixture: str, expected: dict[str, tuple[str, str, str]]
) -> None:
    [report] = ingest_feeds([server.url(f"/feeds/{fixture}")], seeds, allow_private=True)

    assert (report.error, report.new, report.skipped) == (None, len(expected), 0)
    got = {}
    for path in own_files(seeds):
        ms, title, url, body = read_seed(path)
        got[url] = (title, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000)), body)
    assert got == expected


def test_html_named_entities_do_not_break_a_feed(server: LoopbackServer, seeds: Path) -> None:
    # &nbsp; &eacute; &mdash; are HTML's, not XML's: a strict parse would refuse the feed
    reports = ingest_feeds([server.url("/feeds/html_entities.xml")], seeds, allow_private=True)
    assert reports[0].error is None and reports[0].new == 1
    [path] = own_files(seeds)
    _, title, _, body = read_seed(path)
    assert title == "Café talks resume & continue"  # titles are one plain line
    assert "Talks resumed\u00a0— both sides said so." in body


def test_a_feed_served_as_text_html_is_still_a_feed(server: LoopbackServer, seeds: Path) -> None:
    [report] = ingest_feeds([server.url("/as-html/voa_rss20.xml")], seeds, allow_private=True)
    assert (report.error, report.new) == (None, 2)


def test_undated_items_take_the_feed_date_once_and_are_reported(
    server: LoopbackServer, seeds: Path
) -> None:
    url = server.url("/feeds/rss091_undated.xml")

    [report] = ingest_feeds([url], seeds, allow_private=True)

    assert (report.new, report.undated) == (1, 1)
    assert "(1 undated, given the feed's date or the fetch time)" in format_report(report)
    [path] = own_files(seeds)
    assert read_seed(path)[0] == rfc822_ms("Fri, 07 Feb 2025 06:00:00 GMT")
    [again] = ingest_feeds([url], seeds, allow_private=True)
    assert (again.new, again.updated, again.skipped, again.undated) == (0, 0, 1, 0)


def test_undated_items_in_an_undated_feed_take_the_fetch_time() -> None:
    data = (FEEDS / "rss091_undated.xml").read_bytes().replace(b"lastBuildDate", b"x-nodate")
    parsed = parse_feed(data, "https://old.example.org/rss", now_ms=1_700_000_000_000)
    [item] = parsed.items
    assert (item.published_ms, item.dated) == (1_700_000_000_000, False)


def test_redirects_are_followed_up_to_five(server: LoopbackServer, seeds: Path) -> None:
    ok, too_many = ingest_feeds(
        [server.url("/chain/5"), server.url("/chain/6")], seeds, allow_private=True
    )
    assert (ok.error, ok.new) == (None, 2)
    assert too_many.error == "more than 5 redirects"


def test_requests_carry_the_user_agent(server: LoopbackServer, seeds: Path) -> None:
    server.requests.clear()
    ingest_feeds([server.url("/feeds/atom.xml")], seeds, allow_private=True)
    assert [r.headers["User-Agent"] for r in server.requests] == [
        f"news-qa-bot/{VERSION} (+feed ingest)"
    ]


# ---- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        (None, "cannot connect: "),  # a closed port on 127.0.0.1
        ("/status/404", "HTTP 404 Not Found"),
        ("/status/500", "HTTP 500 Internal Server Error"),
        ("/feeds/page.html", "not a feed: got an HTML page"),
        ("/feeds/truncated.xml", "malformed XML at line 18: unclosed CDATA section"),
        ("/empty", "not a feed: no RSS or Atom document found"),
        ("/huge", "response larger than 10,485,760 bytes"),
        ("/huge-declared", "response larger than 10,485,760 bytes"),
        ("/loop", "more than 5 redirects"),
        ("/feeds/missing.xml", "HTTP 404 Not Found"),
    ],
)
def test_a_broken_feed_fails_with_one_line_and_writes_nothing(
    server: LoopbackServer, seeds: Path, path: str | None, reason: str
) -> None:
    url = closed_port_url() if path is None else server.url(path)
    before = snapshot(seeds)

    [report] = ingest_feeds([url], seeds, allow_private=True)

    assert report.error is not None and report.error.startswith(reason)
    assert (report.new, report.updated, report.skipped) == (0, 0, 0)
    line = format_report(report)
    assert line.startswith(f"{url}: failed: {reason}") and "\n" not in line
    assert snapshot(seeds) == before


def test_a_slow_server_times_out(server: LoopbackServer, seeds: Path) -> None:
    with make_client(timeout=0.2) as client:
        [report] = ingest_feeds([server.url("/slow")], seeds, client=client, allow_private=True)
    assert report.error == "timed out waiting for the server"
    assert not own_files(seeds)


def test_one_broken_feed_does_not_stop_the_others(server: LoopbackServer, seeds: Path) -> None:
    bad, good = ingest_feeds(
        [server.url("/feeds/truncated.xml"), server.url("/feeds/atom.xml")],
        seeds,
        allow_private=True,
    )
    assert bad.error and not good.error
    assert len(own_files(seeds)) == 2


def test_items_without_link_title_or_content_are_skipped_with_reasons(
    server: LoopbackServer, seeds: Path
) -> None:
    [report] = ingest_feeds([server.url("/feeds/missing_fields.xml")], seeds, allow_private=True)

    assert (report.error, report.new, report.skipped) == (None, 1, 5)
    assert [note.split(": ", 1)[1].split(" (")[0].split(":")[0] for note in report.notes] == [
        "no link",
        "no title",
        "link is not http(s)",
        "no content",
        "https",  # the duplicate note names the link
    ]
    assert report.notes[-1] == (
        "skipped duplicate link in this feed: https://gaps.example.org/good.html#again"
    )
    [path] = own_files(seeds)
    assert read_seed(path)[1:3] == ("The good one", "https://gaps.example.org/good.html")


def test_scripts_styles_and_event_handlers_are_stripped(
    server: LoopbackServer, seeds: Path
) -> None:
    [report] = ingest_feeds([server.url("/feeds/unsafe.xml")], seeds, allow_private=True)

    assert report.new == 1
    [path] = own_files(seeds)
    body = read_seed(path)[3].lower()
    for bad in ("<script", "<style", "<iframe", "<object", "onclick", "onmouseover", "onerror"):
        assert bad not in body
    assert "javascript" not in body and "steal" not in body and "display:none" not in body
    assert "<p>kept text.</p>" in body and "<p><strong>heading</strong></p>" in body
    assert '<img src="https://unsafe.example.org/ok.jpg">' in body


def test_relative_links_are_made_absolute(server: LoopbackServer, seeds: Path) -> None:
    [report] = ingest_feeds([server.url("/feeds/relative.xml")], seeds, allow_private=True)

    assert report.new == 2
    files = {read_seed(p)[2]: read_seed(p)[3] for p in own_files(seeds)}
    item = server.url("/news/2025/rel-1.html")  # the item link, against the feed's URL
    assert files[item] == (
        f'<img src="{server.url("/news/2025/images/pic.jpg")}"><p>See '
        f'<a href="{server.url("/news/about.html")}">about</a> and '
        f'<a href="{server.url("/root.html")}">root</a> and '
        '<a href="http://cdn.example.net/x.js">cdn</a>.</p>'
    )
    assert files["https://rel.example.com/story/2.html"] == (
        '<p><a href="https://rel.example.com/story/more.html">more</a></p>'
    )


# ---- the seeds directory -------------------------------------------------------------


def test_dedup_recognises_variant_seed_files(server: LoopbackServer, seeds: Path) -> None:
    # Front matter, BOM, CRLF, a title with brackets: the archive's variants of the header.
    variant = (
        "\ufeff---\r\nsource: voa\r\ntags: [a, b]\r\n---\r\n<!--1739237400000-->\r\n"
        "[国会[听证](AI)](https://www.voachinese.com/a/congress-ai-hearing-20250211/7970001.html"
        "#top)\r\n------\r\n\r\n<div>\r\n<p>x</p>\r\n</div>\r\n"
    )
    (seeds / "0001_variant.txt").write_text(variant, encoding="utf-8", newline="")
    before = snapshot(seeds)

    [report] = ingest_feeds([server.url("/feeds/voa_rss20.xml")], seeds, allow_private=True)

    assert (report.new, report.skipped) == (1, 2)
    assert snapshot(seeds)["0001_variant.txt"] == before["0001_variant.txt"]


@pytest.mark.parametrize(
    ("head", "url"),
    [
        ("<!--1-->\n[t](https://a.example/x)\n------\n", "https://a.example/x"),
        ("<!--1-->\r\n[a [b] (c](https://a.example/x_(y))\r\n", "https://a.example/x_(y)"),
        ("\ufeff<!--1-->\n[t](https://a.example/x)\n", "https://a.example/x"),
        ("---\ntitle: x\n---\n<!--1-->\n[t](https://a.example/x)\n", "https://a.example/x"),
        ("\n[t](https://a.example/x)  \n", "https://a.example/x"),
    ],
)
def test_seed_headers_are_read_in_every_variant(head: str, url: str) -> None:
    assert seedfile.split_header(head).url == url


@pytest.mark.parametrize("head", ["just text\n[t](https://a.example/x)\n", "<!--1-->\n", ""])
def test_text_without_a_seed_header_is_refused_with_a_reason(head: str) -> None:
    with pytest.raises(seedfile.SeedFormatError):
        seedfile.split_header(head)


def test_canonical_urls_ignore_fragments_whitespace_and_host_case() -> None:
    assert seedfile.canonical_url("  HTTPS://WWW.Example.org/a/B.html?q=1#frag \n") == (
        "https://www.example.org/a/B.html?q=1"
    )


def test_known_articles_reads_the_real_seed(seeds: Path) -> None:
    assert known_articles(seeds) == {SEED_URL: seeds / SEED.name}


def test_file_names_sort_by_date_and_depend_only_on_date_and_link() -> None:
    early = seedfile.file_name("https://a.example/z", 1739228342000)
    late = seedfile.file_name("https://a.example/a", 1739237400000)
    assert early == "20250210-225902_" + early[16:] and OWN_NAME.match(early)
    assert early < late
    assert seedfile.file_name("https://A.example/z#x", 1739228342000) == early


def test_render_seed_matches_the_seed_layout() -> None:
    item = FeedItem(title="a [b]", link="https://a.example/x)", published_ms=5, html="<p>x</p>")
    assert render_item(item) == "<!--5-->\n[a [b]](https://a.example/x))\n------\n\n<p>x</p>\n"


def test_sanitize_html_keeps_text_and_drops_active_content() -> None:
    dirty = (
        '<p onclick="x()" style="color: #999;">文字<script>bad()</script></p>\n'
        '<a href=" java\nscript:alert(1)">j</a><a href="data:text/html,x">d</a>'
        '<img src="../i.png"><!-- note --><iframe src="x">t</iframe><br>'
    )
    assert sanitize_html(dirty, "https://e.example/a/b.html") == (
        '<p style="color: #999;">文字</p>\n<a>j</a><a>d</a><img src="https://e.example/i.png"><br>'
    )


def test_a_failed_write_leaves_no_temp_file_and_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "20250101-000000_0123456789abcdef.txt"
    target.write_text("old\n", encoding="utf-8")

    def fail(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(feed_write.os, "replace", fail)
    with pytest.raises(OSError):
        feed_write.write_atomic(target, "new\n")
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# ---- the CLI ---------------------------------------------------------------------------


def run_ingest(urls: list[str], seeds: Path) -> int:
    return cli_main(["ingest", "--seeds", str(seeds), "--allow-private", *urls])


def test_ingest_prints_one_line_per_feed_and_exits_1_on_any_failure(
    server: LoopbackServer, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, bad = server.url("/feeds/atom.xml"), server.url("/status/500")

    code = run_ingest([good, bad], seeds)

    out, err = capsys.readouterr()
    assert code == 1
    assert out == f"{good}: 2 new, 0 updated, 0 skipped\n"
    assert err == f"{bad}: failed: HTTP 500 Internal Server Error\n"
    assert run_ingest([good], seeds) == 0
    assert capsys.readouterr().out == f"{good}: 0 new, 0 updated, 2 skipped\n"


def test_ingest_reports_skipped_items_on_stderr(
    server: LoopbackServer, seeds: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = server.url("/feeds/missing_fields.xml")
    assert run_ingest([url], seeds) == 0
    out, err = capsys.readouterr()
    assert out == f"{url}: 1 new, 0 updated, 5 skipped\n"
    assert len(err.splitlines()) == 5
    assert all(line.startswith(f"{url}: skipped ") for line in err.splitlines())


def test_ingest_exits_2_without_a_seeds_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_ingest(["http://127.0.0.1:9/x"], tmp_path / "nope") == 2
    assert capsys.readouterr().err == (
        f"error: seeds directory {tmp_path / 'nope'}, it does not exist; "
        "pass --seeds DIR or set SEEDS_DIR\n"
    )


def test_cli_ingest_reports_and_exit_codes(server: LoopbackServer, seeds: Path) -> None:
    good, bad = server.url("/feeds/voa_rss20.xml"), server.url("/feeds/page.html")
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    cmd = [sys.executable, "-m", "retrieval", "ingest", "--seeds", str(seeds), good, bad]
    env["FEED_ALLOW_PRIVATE"] = "1"  # the loopback server

    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 1
    assert done.stdout == f"{good}: 2 new, 0 updated, 1 skipped\n"
    assert done.stderr.strip().endswith(f"{bad}: failed: not a feed: got an HTML page")
    assert "Traceback" not in done.stderr
    again = subprocess.run(cmd[:-1], cwd=REPO, env=env, capture_output=True, text=True)
    assert (again.returncode, again.stdout) == (0, f"{good}: 0 new, 0 updated, 3 skipped\n")


def test_httpx_client_given_by_the_caller_is_left_open(server: LoopbackServer, seeds: Path) -> None:
    with make_client() as client:
        ingest_feeds([server.url("/feeds/atom.xml")], seeds, client=client, allow_private=True)
        assert not client.is_closed
        assert client.get(server.url("/feeds/atom.xml")).status_code == 200


def test_a_caller_client_that_does_not_follow_redirects_gets_a_clear_reason(
    server: LoopbackServer, seeds: Path
) -> None:
    with httpx.Client(follow_redirects=False) as client:
        [report] = ingest_feeds([server.url("/chain/1")], seeds, client=client, allow_private=True)
    assert report.error == "HTTP 302 Found (redirect not followed)"
