"""Feeds → seed files: fetch each feed, parse it, write its new and changed items."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from retrieval.feeds.fetch import DEADLINE_SECONDS, MAX_BYTES, Reach, fetch_feed, make_client
from retrieval.feeds.parse import FeedError, parse_feed
from retrieval.feeds.write import known_articles, store_items
from retrieval.progress import Reporter, task

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeedReport:
    """What ingesting one feed did."""

    url: str
    new: int = 0
    updated: int = 0
    skipped: int = 0
    error: str | None = None
    undated: int = 0  # new or updated items dated by the feed or the fetch time
    notes: tuple[str, ...] = field(default=())  # per-item reasons for skipping


def ingest_feeds(
    urls: Sequence[str],
    seeds_dir: Path,
    *,
    client: httpx.Client | None = None,
    max_bytes: int = MAX_BYTES,
    deadline: float = DEADLINE_SECONDS,
    proxy: str | None = None,
    allow_private: bool = False,
    known: dict[str, Path] | None = None,
    progress: Reporter | None = None,
) -> list[FeedReport]:
    """Fetch each feed and write its new or changed items into `seeds_dir`; one report each.

    Each feed gets `deadline` seconds to arrive; whatever one feed does, the next is fetched.
    `proxy` (http(s)://, socks5://, socks5h://) carries the fetches (or the standard proxy
    variables do); a `client` given brings its own, and `proxy` should then name it. Fetches
    and their redirects connect to public addresses and the proxy only, unless
    `allow_private` (fetch.Reach). `known` (canonical URL → seed file; updated with what is
    written): the articles already there, as the index knows them
    (IndexKeeper.known_articles); None: read from the seed files' headers. `progress` is
    told of each feed done."""
    seeds_dir = Path(seeds_dir)
    if known is None:
        known = known_articles(seeds_dir)
    http = client if client is not None else make_client(proxy=proxy)
    reach = Reach.of(proxy, allow_private)
    reports = []
    try:
        with task(progress, "fetching feeds", len(urls), "feeds") as advance:
            for url in urls:
                reports.append(_ingest_one(http, url, seeds_dir, known, max_bytes, deadline, reach))
                advance(1)
        return reports
    finally:
        if client is None:
            http.close()


def _ingest_one(
    client: httpx.Client,
    url: str,
    seeds_dir: Path,
    known: dict[str, Path],
    max_bytes: int,
    deadline: float,
    reach: Reach,
) -> FeedReport:
    try:
        fetched = fetch_feed(client, url, max_bytes=max_bytes, deadline=deadline, reach=reach)
        parsed = parse_feed(fetched.body, fetched.url, content_type=fetched.content_type)
        stored = store_items(parsed.items, seeds_dir, known, feed=url)
    except FeedError as exc:
        # The report is the caller's to show (the CLI prints it, the bot logs it): one line.
        logger.debug("%s failed: %s", url, exc)
        return FeedReport(url, error=str(exc))
    except Exception as exc:  # a bug or a case nobody foresaw: this feed fails, not the rest
        logger.exception("%s failed", url)
        reason = " ".join(f"unexpected {type(exc).__name__}: {exc}".split())
        return FeedReport(url, error=reason[:200])
    return FeedReport(
        url,
        new=stored.new,
        updated=stored.updated,
        skipped=stored.skipped + len(parsed.rejected),
        error=stored.error,
        undated=stored.undated,
        notes=parsed.rejected + stored.notes,
    )


def format_report(report: FeedReport) -> str:
    """One line: `<url>: 3 new, 1 updated, 10 skipped` or `<url>: failed: <reason>`."""
    if report.error:
        return f"{report.url}: failed: {report.error}"
    line = f"{report.url}: {report.new} new, {report.updated} updated, {report.skipped} skipped"
    if report.undated:
        line += f" ({report.undated} undated, given the feed's date or the fetch time)"
    return line
