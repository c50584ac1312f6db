"""Fetching a feed over HTTP with limits: one deadline, a size cap, bounded redirects, and
public addresses only.

A feed's URL, or any redirect it answers with, could point the fetch at the machine's own
services or its network's (127.0.0.1/admin, 169.254.169.254, 10.x.x.x): the fetch would read
them into SEEDS_DIR, where questions find them. So each connection is checked as made, the
peer's address itself, not the name's resolution a moment earlier (a name can resolve to a
public address for a check and a private one for the connection: DNS rebinding), unless the
operator allows private addresses (`Reach.allow_private`). Through a proxy the proxy resolves
names and connects; then only addresses written in the URLs themselves can be checked.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import urllib.request
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from retrieval.feeds.parse import FeedError
from retrieval.seedfile import is_web_url
from retrieval.version import VERSION

USER_AGENT = f"news-qa-bot/{VERSION} (+feed ingest)"
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# The whole fetch: connect, redirects, headers and body. httpx's timeouts bound each socket
# operation, so a server sending a byte at a time never trips them.
DEADLINE_SECONDS = 60.0
ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, " + (
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)
# The content codings _inflate undoes, a piece at a time, so the size cap holds for the
# decoded body (httpx's own decoders inflate a whole chunk at once: a gzip bomb's 2 GB).
ACCEPT_ENCODING = "gzip, deflate"
_WBITS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
MAX_CODINGS = 2
_PIECE = 64 * 1024


ALLOW_PRIVATE_HINT = "FEED_ALLOW_PRIVATE=1 or ingest --allow-private allows private addresses"
_PROXY_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # IPv4 addresses reached through IPv6


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet: not loopback, private, link-local,
    shared (CGNAT), multicast or reserved, nor such an IPv4 address wrapped in IPv6."""
    ip = ipaddress.ip_address(address.partition("%")[0])  # no IPv6 zone
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def _ip(host: str) -> str | None:
    """`host` if it is an IP address (brackets off), else None: a name."""
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None
    return host


@dataclass(frozen=True, slots=True)
class Reach:
    """Where feed fetches may connect: public addresses, and the proxies' own (a proxy on
    the machine or the network is the operator's choice); private ones too if
    `allow_private`."""

    allow_private: bool = False
    proxies: frozenset[tuple[str, int]] = frozenset()  # (host, port), host lower-case

    @classmethod
    def of(cls, proxy: str | None, allow_private: bool = False) -> Reach:
        """The reach of fetches through `proxy`, else through the standard proxy variables
        (which httpx honours, and reads the same way)."""
        if proxy:
            urls = [proxy]
        else:
            found = urllib.request.getproxies()
            urls = [u if "://" in u else f"http://{u}" for k, u in found.items() if k != "no"]
        proxies = set()
        for url in urls:
            with contextlib.suppress(ValueError):  # httpx refuses it, so no fetch uses it
                parts = urlsplit(url)
                port = parts.port or _PROXY_PORTS.get(parts.scheme.lower())
                if parts.hostname and port:
                    proxies.add((parts.hostname.lower(), port))
        return cls(allow_private, frozenset(proxies))

    def check(self, address: str, name: str | None = None) -> None:
        """Raise FeedError unless `address` (an IP) may be fetched from; `name` is the host
        name that led there, for the message."""
        if self.allow_private or is_public(address):
            return
        shown = f"{name} is at {address}," if name and name != address else f"{address} is"
        raise FeedError(f"refused: {shown} not a public address ({ALLOW_PRIVATE_HINT})")


class _Guard:
    """One fetch's address checks, as httpcore's trace extension calls them: a direct
    connection's peer once connected (before a byte is sent), and the host of each request
    (a redirect's too) when written as an address, which through a proxy is all there is
    to check."""

    def __init__(self, reach: Reach) -> None:
        self.reach = reach
        self._connecting: tuple[str, int] | None = None

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.started":
            self._connecting = (str(info["host"]).lower(), int(info["port"]))
            literal = _ip(self._connecting[0])
            if literal is not None and self._connecting not in self.reach.proxies:
                self.reach.check(literal)  # no connection at all
        elif event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            if stream is None or self._connecting in self.reach.proxies:
                return  # a proxy's own address; the proxy connects onwards
            peer = stream.get_extra_info("server_addr")
            try:
                self.reach.check(peer[0], self._connecting and self._connecting[0])
            except FeedError:
                stream.close()
                raise
        elif event == "socks.setup_socks5_connection.started":
            self._check_host(str(info.get("host", "")))
        elif event.endswith(".send_request_headers.started"):
            self._check_host(_destination(info["request"]))

    def _check_host(self, host: str) -> None:
        literal = _ip(host)
        if literal is not None:
            self.reach.check(literal)


def _destination(request: Any) -> str:
    """The host an httpcore request is for: its URL's, or through an HTTP proxy the one in
    its target (CONNECT host:port, or an absolute URL)."""
    target = request.url.target.decode("ascii", "replace")
    if request.method == b"CONNECT":
        return target.rpartition(":")[0]
    if "://" in target:
        return urlsplit(target).hostname or ""
    return request.url.host.decode("ascii", "replace")


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched feed body and where it finally came from (after redirects)."""

    url: str
    body: bytes
    content_type: str | None


def make_client(timeout: httpx.Timeout | float = TIMEOUT, proxy: str | None = None) -> httpx.Client:
    """An httpx client with the ingest limits: timeouts, redirect cap, a clear User-Agent;
    through `proxy` if given (else the standard proxy variables apply)."""
    return httpx.Client(
        timeout=timeout,
        proxy=proxy,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
    )


def fetch_feed(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int = MAX_BYTES,
    deadline: float = DEADLINE_SECONDS,
    reach: Reach | None = None,
) -> Fetched:
    """GET `url`, streaming, within `deadline` seconds in all, refusing bodies over
    `max_bytes` (compressed or decoded), connecting only where `reach` allows (default:
    public addresses, and the standard proxy variables' proxies); raises FeedError."""
    if not is_web_url(url):
        raise FeedError("not an http(s) URL")
    too_big = f"response larger than {max_bytes:,} bytes"
    timer = _Deadline(deadline)
    guard = _Guard(reach if reach is not None else Reach.of(None))

    def trace(event: str, info: dict[str, Any]) -> None:
        timer.trace(event, info)
        guard.trace(event, info)

    try:
        with (
            timer,
            client.stream(
                "GET",
                url,
                # One request per connection: the deadline can then always reach the socket
                # a request waits on (a pooled connection would not announce it).
                headers={"Accept-Encoding": ACCEPT_ENCODING, "Connection": "close"},
                extensions={"trace": trace},
            ) as response,
        ):
            if response.status_code >= 300:
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if response.is_redirect:
                    reason += " (redirect not followed)"
                raise FeedError(reason)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(too_big)
            if response.is_stream_consumed:  # a mock transport's body: read and decoded
                body: Iterable[bytes] = [response.content]
            else:
                body = _capped(response.iter_raw(), max_bytes, too_big)
                for coding in reversed(_codings(response.headers.get("content-encoding", ""))):
                    body = _inflate(body, coding)
            data = b"".join(_capped(body, max_bytes, too_big))
            return Fetched(str(response.url), data, response.headers.get("content-type"))
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        if timer.expired:
            raise FeedError(timer.reason) from exc
        raise _reason(exc) from exc


def _reason(exc: Exception) -> FeedError:
    if isinstance(exc, httpx.TooManyRedirects):
        return FeedError(f"more than {MAX_REDIRECTS} redirects")
    if isinstance(exc, httpx.ConnectTimeout):
        return FeedError("connection timed out")
    if isinstance(exc, httpx.TimeoutException):
        return FeedError("timed out waiting for the server")
    if isinstance(exc, httpx.ConnectError):
        return FeedError(f"cannot connect: {exc}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return FeedError(f"bad URL: {exc}")
    return FeedError(f"{type(exc).__name__}: {exc}")


class _Deadline:
    """Ends a fetch at its deadline, whatever it waits for: a timer shuts the connection's
    socket down, which wakes the read blocked on it, and a new connection is refused."""

    def __init__(self, seconds: float) -> None:
        self.reason = f"took longer than {seconds:g} s"
        self.expired = False
        self._finished = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._finished = True

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx's trace extension, called at each step of a request: remembers the socket
        of each new connection (a redirect opens one), and opens none after the deadline."""
        with self._lock:
            if event == "connection.connect_tcp.started" and self.expired:
                raise FeedError(self.reason)
            if event != "connection.connect_tcp.complete":
                return
            stream = info.get("return_value")
            self._socket = stream.get_extra_info("socket") if stream is not None else None
            late = self.expired
        if late:  # connected just after the deadline: fail its first read or write
            self._shutdown()

    def _expire(self) -> None:
        with self._lock:
            if self._finished:
                return
            self.expired = True
        self._shutdown()

    def _shutdown(self) -> None:
        with self._lock:
            sock = self._socket
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def _codings(header: str) -> list[str]:
    """The Content-Encoding codings, in the order they were applied; FeedError if unknown."""
    codings = [c.strip().lower() for c in header.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > MAX_CODINGS:
        raise FeedError(f"Content-Encoding has {len(codings)} layers: {header[:80]}")
    for coding in codings:
        if coding not in _WBITS:
            raise FeedError(f"unsupported Content-Encoding: {coding[:40]}")
    return codings


def _inflate(pieces: Iterable[bytes], coding: str) -> Iterator[bytes]:
    """Undo one content coding, yielding at most _PIECE bytes at a time."""
    inflater = zlib.decompressobj(_WBITS[coding])
    try:
        for data in pieces:
            while True:
                out = inflater.decompress(data, _PIECE)
                data = inflater.unconsumed_tail
                if out:
                    yield out
                # a full piece may leave output pending inside zlib: ask again until less
                if not data and len(out) < _PIECE:
                    break
    except zlib.error as exc:
        raise FeedError(f"cannot decode the {coding} body: {exc}") from exc


def _capped(pieces: Iterable[bytes], max_bytes: int, reason: str) -> Iterator[bytes]:
    size = 0
    for piece in pieces:
        size += len(piece)
        if size > max_bytes:
            raise FeedError(reason)
        yield piece
