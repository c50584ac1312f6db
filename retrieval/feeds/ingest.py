"""Feeds → seed files: fetch each feed, parse it, write its new and changed items."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from retrieval.feeds.fetch import MAX_BYTES, fetch_feed, make_client
from retrieval.feeds.parse import FeedError, parse_feed
from retrieval.feeds.write import known_articles, store_items

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
    proxy: str | None = None,
) -> list[FeedReport]:
    """Fetch each feed and write its new or changed items into `seeds_dir`; one report each.
    `proxy` (http(s)://, socks5://, socks5h://) carries the fetches; without it, the standard
    proxy variables do."""
    seeds_dir = Path(seeds_dir)
    known = known_articles(seeds_dir)
    http = client if client is not None else make_client(proxy=proxy)
    reports: list[FeedReport] = []
    try:
        for url in urls:
            try:
                fetched = fetch_feed(http, url, max_bytes=max_bytes)
                parsed = parse_feed(fetched.body, fetched.url, content_type=fetched.content_type)
            except FeedError as exc:
                logger.info("%s failed: %s", url, exc)
                reports.append(FeedReport(url, error=str(exc)))
                continue
            stored = store_items(parsed.items, seeds_dir, known)
            reports.append(
                FeedReport(
                    url,
                    new=stored.new,
                    updated=stored.updated,
                    skipped=stored.skipped + len(parsed.rejected),
                    error=stored.error,
                    undated=stored.undated,
                    notes=parsed.rejected + stored.notes,
                )
            )
    finally:
        if client is None:
            http.close()
    return reports


def format_report(report: FeedReport) -> str:
    """One line: `<url>: 3 new, 1 updated, 10 skipped` or `<url>: failed: <reason>`."""
    if report.error:
        return f"{report.url}: failed: {report.error}"
    line = f"{report.url}: {report.new} new, {report.updated} updated, {report.skipped} skipped"
    if report.undated:
        line += f" ({report.undated} undated, given the feed's date or the fetch time)"
    return line
