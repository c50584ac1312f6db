"""Feed items → seed files in the seeds directory: new ones written, changed ones replaced.

Items are matched by canonical URL against every seed file already there, whatever its header
variant. Files feed ingest wrote (named `yyyymmdd-HHMMSS_<hex16>.txt`) are replaced in place
when an item's text changes; any other file (the seed, archive copies) is read for its URL but
never rewritten. Files are written to a hidden temporary file, then renamed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

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


def render_item(item: FeedItem) -> str:
    """The seed-file text of an item."""
    return seedfile.render(item.title, item.link, item.published_ms, item.html)


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


def store_items(items: Sequence[FeedItem], seeds_dir: Path, known: dict[str, Path]) -> StoreCounts:
    """Write new items, replace changed ones in files ingest owns, count the rest as skipped.

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
                write_atomic(path, render_item(item))
                known[key] = path
                new += 1
                undated += not item.dated
                continue
            if not seedfile.is_ingest_file(existing):
                skipped += 1  # the seed or an archive copy: never rewritten
                continue
            old = existing.read_bytes()
            if not item.dated:  # keep the date it was first given
                first_ms = _comment_ms(old)
                if first_ms is not None:
                    item = replace(item, published_ms=first_ms)
            text = render_item(item)
            if old == text.encode("utf-8"):
                skipped += 1
                continue
            write_atomic(existing, text)
            updated += 1
            undated += not item.dated
        except OSError as exc:
            return counts(f"cannot write: {exc}")
    return counts()


def _comment_ms(seed_bytes: bytes) -> int | None:
    try:
        return seedfile.split_header(seedfile.decode(seed_bytes[: seedfile.HEAD_BYTES])).comment_ms
    except seedfile.SeedFormatError:
        return None
