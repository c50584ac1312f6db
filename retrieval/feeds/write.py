"""Feed items → seed files in the seeds directory: new ones written, changed ones replaced.

Items are matched by canonical URL against every seed file already there, whatever its header
variant. Files feed ingest wrote (named `yyyymmdd-HHMMSS_<hex16>.txt`) are replaced in place
when an item's text changes; any other file (the seed, archive copies) is read for its URL but
never rewritten. Files are written to a hidden temporary file, then renamed.

An article belongs to the feed that first wrote it, which its file records (front matter
`feed:`): only feeds on that feed's host may rewrite it, so one feed cannot replace another's
articles by publishing their URLs. A file without the record (written before it was kept)
belongs to feeds on the article's own host.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from retrieval import seedfile
from retrieval.feeds.parse import FeedItem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreCounts:
    """What writing one feed's items did."""

    new: int = 0
    updated: int = 0
    skipped: int = 0
    undated: int = 0  # new or updated items dated by the feed or the fetch time
    notes: tuple[str, ...] = field(default=())  # per-item reasons for skipping
    error: str | None = None  # the write that failed, if one did (the rest were not tried)


def render_item(item: FeedItem, feed: str | None = None) -> str:
    """The seed-file text of an item; `feed` (the feed that owns it) is recorded when given."""
    return seedfile.render(item.title, item.link, item.published_ms, item.html, feed=feed)


def may_rewrite(feed: str, owner: str | None, article_url: str) -> bool:
    """Whether `feed` may rewrite an article that `owner` wrote (None: not recorded): only
    feeds on the owner's host may, or for an unrecorded owner, on the article's host."""
    host = _host(feed)
    return host is not None and host == _host(owner if owner is not None else article_url)


def _host(url: str) -> str | None:
    try:
        return urlsplit(url.strip()).hostname
    except ValueError:
        return None


def known_articles(seeds_dir: Path) -> dict[str, Path]:
    """Canonical URL → file, for every seed file the index reads, reading only file heads."""
    known: dict[str, Path] = {}
    for rel in sorted(seedfile.scan(seeds_dir)):
        path = seeds_dir / rel
        try:
            header = seedfile.read_header(path)
        except seedfile.SeedFormatError as exc:
            logger.debug("no seed header in %s: %s", rel, exc)
            continue
        known.setdefault(seedfile.canonical_url(header.url), path)
    return known


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename."""
    # Leading dot and .tmp suffix: readers scanning for *.txt never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp gives 0600
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_items(
    items: Sequence[FeedItem], seeds_dir: Path, known: dict[str, Path], feed: str
) -> StoreCounts:
    """Write `feed`'s new items, replace changed ones in files ingest wrote for a feed on the
    same host, count the rest as skipped.

    `known` (from known_articles) is updated with the files written."""
    new = updated = skipped = undated = 0
    notes: list[str] = []
    seen: set[str] = set()

    def counts(error: str | None = None) -> StoreCounts:
        return StoreCounts(new, updated, skipped, undated, tuple(notes), error)

    for item in items:
        key = seedfile.canonical_url(item.link)
        if key in seen:
            skipped += 1
            notes.append(f"skipped duplicate link in this feed: {item.link}")
            continue
        seen.add(key)
        existing = known.get(key)
        try:
            if existing is None:
                path = seeds_dir / seedfile.file_name(item.link, item.published_ms)
                if path.exists():  # a sha1 prefix clash or an unreadable header: leave it be
                    skipped += 1
                    notes.append(f"skipped {item.link}: {path.name} exists for another link")
                    continue
                write_atomic(path, render_item(item, feed))
                known[key] = path
                new += 1
                undated += not item.dated
                continue
            if not seedfile.is_ingest_file(existing):
                skipped += 1  # the seed or an archive copy: never rewritten
                continue
            old = seedfile.read_text(existing)
            header = seedfile.split_header(old)
            if not may_rewrite(feed, header.feed, header.url):
                skipped += 1
                owner = header.feed or "feeds on the article's host"
                notes.append(f"skipped {item.link}: the article belongs to {owner}")
                continue
            if not item.dated and header.comment_ms is not None:  # keep its first date
                item = replace(item, published_ms=header.comment_ms)
            # The owner stays the feed that first wrote it; an unrecorded one is not added
            # just to record it, so an unchanged item leaves an old file as it is.
            text = render_item(item, header.feed)
            if old == text:
                skipped += 1
                continue
            write_atomic(existing, render_item(item, header.feed or feed))
            updated += 1
            undated += not item.dated
        except seedfile.SeedFormatError as exc:  # replaced since it was scanned: leave it
            skipped += 1
            notes.append(f"skipped {item.link}: {existing.name}: {exc}")
        except OSError as exc:
            return counts(f"cannot write: {exc}")
    return counts()
