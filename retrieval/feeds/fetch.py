"""Fetching a feed over HTTP with limits: timeouts, a deadline, a size cap, bounded redirects."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from retrieval.feeds.parse import FeedError
from retrieval.seedfile import is_web_url
from retrieval.version import VERSION

USER_AGENT = f"news-qa-bot/{VERSION} (+feed ingest)"
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# Read timeouts bound each chunk, not the whole body: a server dripping bytes needs this.
DEADLINE_SECONDS = 60.0
ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, " + (
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)


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


def fetch_feed(client: httpx.Client, url: str, *, max_bytes: int = MAX_BYTES) -> Fetched:
    """GET `url`, streaming, refusing bodies over `max_bytes`; raises FeedError."""
    if not is_web_url(url):
        raise FeedError("not an http(s) URL")
    too_big = f"response larger than {max_bytes:,} bytes"
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 300:
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if response.is_redirect:
                    reason += " (redirect not followed)"
                raise FeedError(reason)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(too_big)
            deadline = time.monotonic() + DEADLINE_SECONDS
            chunks: list[bytes] = []
            size = 0
            # iter_bytes yields decoded bytes, so the cap also stops compression bombs.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(too_big)
                if time.monotonic() > deadline:
                    raise FeedError(f"download took longer than {DEADLINE_SECONDS:.0f} s")
                chunks.append(chunk)
            content_type = response.headers.get("content-type")
            return Fetched(str(response.url), b"".join(chunks), content_type)
    except httpx.TooManyRedirects as exc:
        raise FeedError(f"more than {MAX_REDIRECTS} redirects") from exc
    except httpx.ConnectTimeout as exc:
        raise FeedError("connection timed out") from exc
    except httpx.TimeoutException as exc:
        raise FeedError("timed out waiting for the server") from exc
    except httpx.ConnectError as exc:
        raise FeedError(f"cannot connect: {exc}") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise FeedError(f"bad URL: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"{type(exc).__name__}: {exc}") from exc
