"""Feed fetches reach public addresses only (issue 23): a feed, or a redirect it answers with,
must not make the fetch read the machine's own services or its network's into SEEDS_DIR.
Each connection is checked as made (the peer's address, not a resolution before it); private
addresses need FEED_ALLOW_PRIVATE=1 or `ingest --allow-private`; through a proxy, the proxy
resolves names and only addresses written in URLs are checked. Servers on 127.0.0.1 only."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from retrieval.cli import main as cli_main
from retrieval.feeds import ingest_feeds
from retrieval.feeds.fetch import is_public
from tests.support import FEEDS
from tests.support.http import LoopbackServer, reply
from tests.support.socks import SocksProxy

FEED = (FEEDS / "bot_news.xml").read_bytes()


def serve_feed(request: BaseHTTPRequestHandler) -> None:
    reply(request, 200, FEED, "application/rss+xml")


@pytest.fixture
def feed_server():
    with LoopbackServer(serve_feed) as server:
        yield server


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    directory = tmp_path / "seeds"
    directory.mkdir()
    return directory


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4 in IPv6 clothing
        ("64:ff9b::a00:1", False),  # 10.0.0.1 through NAT64
    ],
)
def test_what_counts_as_public(address: str, public: bool) -> None:
    assert is_public(address) is public


def test_a_feed_at_a_private_address_is_refused_unless_allowed(feed_server, seeds):
    url = feed_server.url("/feed.xml")
    [report] = ingest_feeds([url], seeds)
    assert report.error.startswith("refused: 127.0.0.1 is not a public address")
    assert "FEED_ALLOW_PRIVATE=1" in report.error
    assert feed_server.requests == [] and list(seeds.iterdir()) == []  # never connected
    [allowed] = ingest_feeds([url], seeds, allow_private=True)
    assert (allowed.error, allowed.new) == (None, 3)


def test_a_name_is_checked_by_the_address_it_connected_to(feed_server, seeds):
    """No resolution beforehand that a second lookup could contradict (DNS rebinding): the
    connected socket's peer is what counts, and nothing is sent to a private one."""
    url = feed_server.url("/feed.xml").replace("127.0.0.1", "localhost")
    [report] = ingest_feeds([url], seeds)
    assert report.error.startswith("refused: localhost is at 127.0.0.1, not a public address")
    assert feed_server.requests == []
    [allowed] = ingest_feeds([url], seeds, allow_private=True)
    assert (allowed.error, allowed.new) == (None, 3)


def test_a_redirect_to_a_private_address_is_refused(seeds):
    """The finding: a feed redirecting to 127.0.0.1/admin/feed.xml was ingested. Its public
    first hop is played by an HTTP proxy on 127.0.0.1 (a proxy's own address is allowed), so
    the name is the proxy's to resolve and the redirect's address is checked in its URL."""
    admin = LoopbackServer(serve_feed).start()
    target = admin.url("/admin/feed.xml")

    def proxy_answer(request: BaseHTTPRequestHandler) -> None:
        if request.path == "http://news.example/feed.xml":
            reply(request, 302, b"", "text/plain", Location=target)
        elif request.path == target:  # what a proxy would fetch from 127.0.0.1
            serve_feed(request)
        else:
            reply(request, 404, b"", "text/plain")

    try:
        with LoopbackServer(proxy_answer) as proxy:
            [report] = ingest_feeds(["http://news.example/feed.xml"], seeds, proxy=proxy.url())
    finally:
        admin.stop()
    assert report.error.startswith("refused: 127.0.0.1 is not a public address")
    assert [r.path for r in proxy.requests] == ["http://news.example/feed.xml"]
    assert list(seeds.iterdir()) == []


def test_through_a_socks_proxy_names_are_the_proxys_and_written_addresses_are_checked(
    feed_server, seeds
):
    """Proxies keep working with the check on: the proxy (here on 127.0.0.1) resolves names,
    so `localhost` goes through; `127.0.0.1` written in the URL does not."""
    with SocksProxy() as proxy:
        by_name = feed_server.url("/feed.xml").replace("127.0.0.1", "localhost")
        by_address = feed_server.url("/other.xml")
        named, written = ingest_feeds([by_name, by_address], seeds, proxy=proxy.url("socks5h"))
    assert (named.error, named.new) == (None, 3)
    assert written.error.startswith("refused: 127.0.0.1 is not a public address")
    assert [r.path for r in feed_server.requests] == ["/feed.xml"]


def test_the_cli_refuses_in_one_line_unless_allowed(feed_server, seeds, capsys, monkeypatch):
    url = feed_server.url("/feed.xml")
    monkeypatch.delenv("FEED_ALLOW_PRIVATE", raising=False)
    assert cli_main(["ingest", "--seeds", str(seeds), url]) == 1
    err = capsys.readouterr().err
    assert err == f"{url}: failed: {err.split(': failed: ', 1)[1]}"
    assert len(err.splitlines()) == 1 and "refused: 127.0.0.1" in err
    assert cli_main(["ingest", "--seeds", str(seeds), "--allow-private", url]) == 0
    monkeypatch.setenv("FEED_ALLOW_PRIVATE", "1")
    assert cli_main(["ingest", "--seeds", str(seeds), url]) == 0
    assert capsys.readouterr().out.count("0 new") == 1
    monkeypatch.setenv("FEED_ALLOW_PRIVATE", "maybe")
    assert cli_main(["ingest", "--seeds", str(seeds), url]) == 2
    assert "FEED_ALLOW_PRIVATE" in capsys.readouterr().err
