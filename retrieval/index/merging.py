"""Merging segments: a tiered policy, and a merge that never holds up the writers for long.

Every update adds a small segment, so segments pile up, and with them the work of a query
(one pass per segment) and the deleted passages they still hold. The policy (`plan`): sizes
fall into tiers a factor MERGE_FACTOR apart, the smallest tier anything under
FLOOR_PASSAGES live passages; MERGE_FACTOR segments of one tier merge into one of the next;
a segment with a RECLAIM_SHARE of its passages deleted is rewritten without them; and there
are never more than MAX_SEGMENTS. A big segment is thus rewritten only when enough has
accumulated beside it to double its tier, or when it is largely deleted.

A merge (`run`) reads its segments' live articles and writes the merged segment outside the
write lock, so refreshes go on meanwhile; it takes the lock only to commit, carrying over
the deletions made in the meantime.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from retrieval.index import build, store, vectors

log = logging.getLogger(__name__)

MERGE_FACTOR = 4
FLOOR_PASSAGES = 10_000
MAX_SEGMENTS = 10
RECLAIM_SHARE = 0.3


def tier(live_passages: int) -> int:
    if live_passages < FLOOR_PASSAGES:
        return 0
    return 1 + int(math.log(live_passages / FLOOR_PASSAGES, MERGE_FACTOR))


def plan(
    segments: tuple[store.Segment, ...], passages_at_most: int | None = None
) -> list[str] | None:
    """The names of the segments to merge next, smallest first, or None when none should be.
    With `passages_at_most`, only merges of at most that many live passages together."""
    sizes = {s.name: int(s.live_passages.sum()) for s in segments}
    by_size = sorted(segments, key=lambda s: (sizes[s.name], s.name))
    tiers: dict[int, list[str]] = {}
    for segment in by_size:
        tiers.setdefault(tier(sizes[segment.name]), []).append(segment.name)
    proposals = [
        names[:MERGE_FACTOR] for _, names in sorted(tiers.items()) if len(names) >= MERGE_FACTOR
    ]
    if len(segments) > MAX_SEGMENTS:
        proposals.append([s.name for s in by_size[: len(segments) - MAX_SEGMENTS + 1]])
    for segment in by_size:
        if segment.n_passages and 1 - sizes[segment.name] / segment.n_passages >= RECLAIM_SHARE:
            proposals.append([segment.name])
    for names in proposals:
        if passages_at_most is None or sum(sizes[n] for n in names) <= passages_at_most:
            return names
    return None


def run(index_dir: Path, lock_wait_seconds: float, passages_at_most: int | None = None) -> int:
    """Merge as the policy asks until it asks no more; the number of merges made."""
    done = 0
    while True:
        with store.writer_lock(index_dir, lock_wait_seconds):
            state = store.load(index_dir)
        names = plan(state.segments, passages_at_most) if state else None
        if state is None or names is None:
            return done
        if not _merge(index_dir, state, names, lock_wait_seconds):
            return done
        done += 1


def _merge(index_dir: Path, state: store.State, names: list[str], lock_wait: float) -> bool:
    """Merge the named segments of `state`; False if the index moved on so that it cannot."""
    chosen = {s.name: s for s in state.segments if s.name in names}
    sources = [(chosen[n], np.flatnonzero(chosen[n].live_articles)) for n in names]
    name = store.new_segment_name()
    # written aside, under a name the writers' clean-up leaves alone while this process lives
    folder = index_dir / f"merging-{os.getpid()}-{name}"
    log.info("merging %d segments (%s)", len(names), ", ".join(names))
    try:
        merged = store.save_segment(index_dir, name, build.merged(sources), folder)
        vectors.carry_over(index_dir, [(s.name, _passages_of(s, n)) for s, n in sources], folder)
        with store.writer_lock(index_dir, lock_wait):
            now = store.load(index_dir, state.segments)
            if now is None or now.fingerprint != state.fingerprint:
                return False
            present = {s.name: s for s in now.segments}
            if any(n not in present for n in names):
                return False
            # where each source article went, and what was deleted while merging
            moved: dict[str, np.ndarray] = {}
            deleted_since: list[int] = []
            start = 0
            for source, numbers in sources:
                where = np.full(source.n_articles, -1, np.int64)
                where[numbers] = np.arange(start, start + numbers.size)
                moved[source.name] = where
                gone = present[source.name].deleted[numbers]
                deleted_since += (np.flatnonzero(gone) + start).tolist()
                start += numbers.size
            folder.rename(index_dir / f"seg-{name}")
            if deleted_since:
                merged = merged.with_deleted(deleted_since)
            files = {path: _moved(record, name, moved) for path, record in now.files.items()}
            segments = (*(s for s in now.segments if s.name not in moved), merged)
            state = store.State(now.fingerprint, now.generation + 1, segments, files)
            store.commit(index_dir, store.without_empty(state))
            return True
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def _moved(record: store.FileRecord, name: str, moved: dict[str, np.ndarray]) -> store.FileRecord:
    if record.segment not in moved:
        return record
    number = int(moved[record.segment][record.article_number or 0])
    return replace(record, segment=name, article_number=number)


def _passages_of(segment: store.Segment, articles: np.ndarray) -> np.ndarray:
    """The passage numbers of these articles of a segment, in order (as build.merged keeps
    them)."""
    start = segment.arrays["article_passage_start"]
    return np.concatenate(
        [np.empty(0, np.int64), *(np.arange(start[a], start[a + 1]) for a in articles.tolist())]
    )
