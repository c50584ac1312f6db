"""Building the index: which seed files changed, and segments: one of fresh files (parsed by
`parsing`), or one merged from other segments' live articles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import chain
from pathlib import Path

import numpy as np

from retrieval import seedfile
from retrieval.index.parsing import (
    TF_MAX,
    ParsedFile,
    Rows,
    Vocabulary,
    Workers,
    parse_files,
)
from retrieval.index.store import (
    FileRecord,
    Segment,
    SegmentDraft,
    State,
    new_segment_name,
)
from retrieval.question.analysis import Analyzer
from retrieval.seedfile import SeedStat

log = logging.getLogger(__name__)


# --- what changed, and a segment for it -------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """What the seeds directory's changes do to the index: a new segment for new and changed
    files (None: none to index), the articles of existing segments no longer live, and every
    seed file's record afterwards."""

    files: dict[str, FileRecord]
    segment: tuple[str, SegmentDraft] | None  # (its name, the segment)
    deleted: dict[str, list[int]]  # segment name → its articles to delete


def update(
    seeds_dir: Path, analyzer: Analyzer, old: State | None, workers: Workers
) -> Change | None:
    """What it takes to bring `old` (None: nothing yet) up to date with the seeds directory.

    Returns None when nothing changed. Only new and changed files are parsed; a file whose
    article is replaced (its text changed, a newer copy of its URL arrived) or gone becomes a
    deletion, and an older copy whose newer one went away is parsed again."""
    current = seedfile.scan(seeds_dir)
    if old is not None and old.fingerprint != analyzer.fingerprint:
        log.info("analyzer changed: rebuilding the index")
        old = None
    old_files = old.files if old else {}
    changed = sorted(
        p
        for p, st in current.items()
        if p not in old_files or SeedStat(old_files[p].size, old_files[p].mtime_ns) != st
    )
    removed = [p for p in old_files if p not in current]
    if old is not None and not changed and not removed:
        return None

    vocab = Vocabulary()  # the new segment's own
    parsed = {f.path: f for f in parse_files(seeds_dir, changed, analyzer, vocab, workers)}
    for f in parsed.values():
        if f.error:
            log.warning("skipped seed file %s: %s", f.path, f.error)

    def record(path: str) -> FileRecord:
        if path in parsed:
            f, st = parsed[path], current[path]
            return FileRecord(st.size, st.mtime_ns, f.url, f.published_ms, f.error)
        return old_files[path]

    records = {p: record(p) for p in sorted(current)}
    winners = _newest_per_url(records)
    revived = sorted(p for p in winners if p not in parsed and records[p].segment is None)
    for f in parse_files(seeds_dir, revived, analyzer, vocab, workers):
        parsed[f.path] = f

    deleted: dict[str, list[int]] = {}
    for path, rec in old_files.items():
        if rec.segment is not None and (path not in winners or path in parsed):
            deleted.setdefault(rec.segment, []).append(rec.article_number or 0)
    files = {
        p: r if p in winners and p not in parsed else replace(r, segment=None, article_number=None)
        for p, r in records.items()
    }
    # popped, so that the segment holds the only reference and can release each file it copies
    fresh = [parsed.pop(p) for p in sorted(winners) if p in parsed]
    if not fresh:
        return Change(files, None, deleted)
    name = new_segment_name()
    for number, f in enumerate(fresh):
        files[f.path] = replace(files[f.path], segment=name, article_number=number)
    return Change(files, (name, segment_of(fresh, vocab.terms())), deleted)


def _newest_per_url(records: Mapping[str, FileRecord]) -> set[str]:
    """The files to index: of the files holding one article (one canonical URL), the newest."""
    best: dict[str, str] = {}
    for path, rec in records.items():
        if rec.url is None:
            continue
        url = seedfile.canonical_url(rec.url)
        other = best.get(url)
        if other is None or (rec.published_ms, path) > (records[other].published_ms, other):
            if other is not None:
                log.info("%s and %s hold the same article; indexing the newer", path, other)
            best[url] = path
    return set(best.values())


def segment_of(fresh: list[ParsedFile], terms: list[str]) -> SegmentDraft:
    """A segment of freshly parsed files, in their order (each released once copied)."""
    return _assemble([], fresh, terms)


def merged(sources: list[tuple[Segment, np.ndarray]]) -> SegmentDraft:
    """One segment of the given articles of several segments, in that order: the live ones,
    so that deleted passages and the terms only they held are gone from it."""
    vocab: dict[str, int] = {}
    kept = []
    for segment, numbers in sources:
        kept.append(_Kept.of(segment, np.asarray(numbers, np.int64), vocab))
    terms = [""] * len(vocab)
    for term, i in vocab.items():
        terms[i] = term
    return _assemble(kept, [], terms)


@dataclass(frozen=True)
class _Kept:
    """Articles of an existing segment, back in doc-major blocks in a new vocabulary."""

    segment: Segment
    numbers: np.ndarray  # its article numbers, in the order they are kept
    passages: list[Rows]
    articles: list[Rows]
    passage_rows: np.ndarray  # its passage numbers, in order

    @classmethod
    def of(cls, segment: Segment, numbers: np.ndarray, vocab: dict[str, int]) -> _Kept:
        a = segment.arrays
        starts = a["article_passage_start"][numbers]
        ends = a["article_passage_start"][numbers + 1]
        rows = np.concatenate(
            [np.empty(0, np.int64), *(np.arange(s, e) for s, e in zip(starts, ends, strict=True))]
        )
        passages = _rows_of(a, "passage", segment.n_passages, len(segment.draft.terms), rows)
        articles = _rows_of(a, "article", segment.n_articles, len(segment.draft.terms), numbers)
        # the terms these articles use, renumbered in the new vocabulary
        used = np.unique(np.concatenate([np.empty(0, np.int32), *(b.term_ids for b in articles)]))
        remap = np.full(len(segment.draft.terms), -1, np.int32)
        terms = segment.draft.terms
        remap[used] = [vocab.setdefault(terms[t], len(vocab)) for t in used.tolist()]
        return cls(
            segment,
            numbers,
            [replace(b, term_ids=remap[b.term_ids]) for b in passages],
            [replace(b, term_ids=remap[b.term_ids]) for b in articles],
            rows,
        )


def _joined(blocks: list[Rows]) -> Rows:
    return Rows(
        np.concatenate([b.nnz for b in blocks]),
        np.concatenate([b.term_ids for b in blocks]),
        np.concatenate([b.tf for b in blocks]),
    )


def _article_rows(files: list[ParsedFile]) -> Rows:
    """Each file's article as one document: its passages' terms and what `about` adds."""
    ids = [part for f in files for part in (f.passages.term_ids, f.about)]
    tf = [part for f in files for part in (f.passages.tf, np.ones(f.about.shape[0], np.uint16))]
    sizes = [f.passages.term_ids.shape[0] + f.about.shape[0] for f in files]
    # (article, term, tf) packed in one int64 (8 + 31 + 16 bits at _BATCH files) and sorted:
    # equal (article, term) keys end up side by side, and a sort is cheaper than an argsort
    keys = np.repeat(np.arange(len(files), dtype=np.int64), sizes) << (31 + 16)
    keys |= np.concatenate([np.empty(0, np.int32), *ids]).astype(np.int64) << 16
    keys |= np.concatenate([np.empty(0, np.uint16), *tf])
    keys.sort()
    pairs = keys >> 16
    first = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]])
    counts = np.add.reduceat(keys & 0xFFFF, first) if first.size else first
    pairs = pairs[first]
    return Rows(
        np.bincount(pairs >> 31, minlength=len(files)).astype(np.int64),
        (pairs & 0x7FFFFFFF).astype(np.int32),
        np.minimum(counts, TF_MAX).astype(np.uint16),
    )


_BATCH = 256  # fresh files placed at a time (numpy's per-call costs), at most 2**8


def _assemble(kept: list[_Kept], fresh: list[ParsedFile], terms: list[str]) -> SegmentDraft:
    """A segment: the kept articles, then the fresh files' articles.

    Memory matters at a million passages: postings go straight into their term-major arrays
    (no doc-major copy beside them), and each fresh file is released once it is copied.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="assemble-articles") as beside:
        return _assemble_beside(beside, kept, fresh, terms)


def _assemble_beside(
    beside: ThreadPoolExecutor, kept: list[_Kept], fresh: list[ParsedFile], terms: list[str]
) -> SegmentDraft:
    n_terms = len(terms)
    kept_passages = [b for k in kept for b in k.passages]
    kept_articles = [b for k in kept for b in k.articles]
    batches = [(lo, lo + _BATCH) for lo in range(0, len(fresh), _BATCH)]
    # The two fields are independent, and numpy releases the GIL in their sorts and copies:
    # the articles' postings are placed in a second thread (a third of a cold build's tail).
    articles_placed = beside.submit(
        _TermMajor,
        chain(kept_articles, (_article_rows(fresh[a:b]) for a, b in batches)),
        n_terms,
    )
    passages = _TermMajor(
        chain(kept_passages, (_joined([f.passages for f in fresh[a:b]]) for a, b in batches)),
        n_terms,
    )
    for block in kept_passages:
        passages.add(block)
    articles = articles_placed.result()
    for block in kept_articles:
        articles.add(block)
    del kept_passages, kept_articles

    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("passage_len", "passage_ordinal", "passage_cues", "json_lengths")
    }
    per_article: dict[str, list[np.ndarray]] = {
        k: [] for k in ("passage_counts", "article_len", "article_published_ms", "article_key")
    }
    kept_blobs = [
        _gather_bytes(
            k.segment.arrays["article_json"], k.segment.arrays["article_json_offsets"], k.numbers
        )
        for k in kept
    ]
    # one array for every article's text, filled as each fresh file is released
    article_json = np.empty(
        sum(b.shape[0] for b in kept_blobs) + sum(len(f.article_json) for f in fresh), np.uint8
    )
    byte = 0
    names_of: list[list[tuple[str, str]]] = []  # per article
    for k, blob in zip(kept, kept_blobs, strict=True):
        a = k.segment.arrays
        for key in ("passage_len", "passage_ordinal", "passage_cues"):
            parts[key].append(a[key][k.passage_rows])
        article_json[byte : byte + blob.shape[0]] = blob
        byte += blob.shape[0]
        parts["json_lengths"].append(np.diff(a["article_json_offsets"])[k.numbers])
        per_article["passage_counts"].append(np.diff(a["article_passage_start"])[k.numbers])
        for key in ("article_len", "article_published_ms", "article_key"):
            per_article[key].append(a[key][k.numbers])
        names_of += _names_of_articles(k.segment.draft, k.numbers)
    for lo, hi in batches:
        batch = fresh[lo:hi]
        fresh[lo:hi] = [None] * len(batch)  # type: ignore[list-item]  # released once copied
        articles_placed = beside.submit(lambda batch=batch: articles.add(_article_rows(batch)))
        passages.add(_joined([f.passages for f in batch]))
        for f in batch:
            parts["passage_len"].append(f.passage_len)
            parts["passage_ordinal"].append(np.arange(f.n_passages, dtype=np.int32))
            parts["passage_cues"].append(f.passage_cues)
            size = len(f.article_json)
            article_json[byte : byte + size] = np.frombuffer(f.article_json, np.uint8)
            byte += size
            parts["json_lengths"].append(np.array([size]))
            per_article["passage_counts"].append(np.array([f.n_passages]))
            per_article["article_published_ms"].append(np.array([f.published_ms]))
            per_article["article_key"].append(np.array([int(f.article_id, 16)], np.uint64))
            names_of.append(sorted(f.names.items()))
            per_article["article_len"].append(np.array([f.passage_len.sum() + f.about.shape[0]]))
        articles_placed.result()
    assert passages.complete() and articles.complete(), "every block's postings were placed"

    def joined(values: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(values).astype(dtype) if values else np.empty(0, dtype)

    counts = joined(per_article["passage_counts"], np.int64)
    arrays = {
        "passage_indptr": passages.indptr,
        "passage_indices": passages.indices,
        "passage_tf": passages.tf,
        "passage_len": joined(parts["passage_len"], np.float64),
        "passage_article": np.repeat(np.arange(counts.shape[0], dtype=np.int32), counts),
        "passage_ordinal": joined(parts["passage_ordinal"], np.int32),
        "passage_cues": joined(parts["passage_cues"], np.uint64),
        "article_indptr": articles.indptr,
        "article_indices": articles.indices,
        "article_tf": articles.tf,
        "article_len": joined(per_article["article_len"], np.float64),
        "article_json": article_json,
        "article_json_offsets": _offsets(joined(parts["json_lengths"], np.int64)),
        "article_passage_start": _offsets(counts),
        "article_published_ms": joined(per_article["article_published_ms"], np.int64),
        "article_key": joined(per_article["article_key"], np.uint64),
    }
    pairs, arrays["name_indptr"], arrays["name_articles"] = _names_index(names_of)
    return SegmentDraft(arrays, terms, pairs)


def _names_of_articles(draft: SegmentDraft, numbers: np.ndarray) -> list[list[tuple[str, str]]]:
    """The glossed names of some articles of a segment, each article's list."""
    a = draft.arrays
    position = np.full(draft.n_articles, -1, np.int64)
    position[numbers] = np.arange(numbers.shape[0])
    out: list[list[tuple[str, str]]] = [[] for _ in range(numbers.shape[0])]
    for i, (name, gloss) in enumerate(draft.names):
        for article in a["name_articles"][a["name_indptr"][i] : a["name_indptr"][i + 1]]:
            if position[article] >= 0:
                out[position[article]].append((name, gloss))
    return out


def _names_index(
    names_of: list[list[tuple[str, str]]],
) -> tuple[list[list[str]], np.ndarray, np.ndarray]:
    """Per-article names → the distinct pairs, and for each the articles that gloss it."""
    holders: dict[tuple[str, str], list[int]] = {}
    for article, pairs in enumerate(names_of):
        for pair in pairs:
            holders.setdefault(pair, []).append(article)
    pairs = sorted(holders)
    counts = np.array([len(holders[p]) for p in pairs], np.int64)
    articles = [a for p in pairs for a in holders[p]]
    return (
        [list(p) for p in pairs],
        _offsets(counts),
        np.array(articles, np.int32),
    )


def _rows_of(
    arrays: Mapping[str, np.ndarray], field: str, n_docs: int, n_terms: int, docs: np.ndarray
) -> list[Rows]:
    """Some documents of a term-major field of a saved index, back in doc-major blocks."""
    old_terms = arrays[f"{field}_indptr"].shape[0] - 1
    from scipy import sparse  # only merges need it; a search should not wait for the import

    by_term = sparse.csc_matrix(
        (arrays[f"{field}_tf"], arrays[f"{field}_indices"], arrays[f"{field}_indptr"]),
        shape=(n_docs, old_terms),
    )
    by_doc = by_term.tocsr()
    del by_term
    blocks = []
    for lo in range(0, docs.shape[0], 50_000):  # bounded temporaries for the scatter
        part = by_doc[docs[lo : lo + 50_000]]
        blocks.append(Rows(np.diff(part.indptr), part.indices.astype(np.int32), part.data))
    assert old_terms <= n_terms, "the vocabulary only grows"
    return blocks


class _TermMajor:
    """Scatters doc-major blocks, added in doc order, into term-major (CSC) arrays.

    The constructor sizes every term's slice from all the blocks' document frequencies;
    `add` then places one block's postings, so the output is the only full-size copy.
    """

    def __init__(self, blocks: Iterable[Rows], n_terms: int) -> None:
        df = np.zeros(n_terms, np.int64)
        for block in blocks:  # a document holds a term once: its postings count its df
            df += np.bincount(block.term_ids, minlength=n_terms)
        self.indptr = _offsets(df)
        nnz = int(self.indptr[-1])
        self.indices = np.empty(nnz, np.int32)
        self.tf = np.empty(nnz, np.uint16)
        self._cursor = self.indptr[:-1].copy()
        self._next_doc = 0

    def complete(self) -> bool:
        return bool(np.array_equal(self._cursor, self.indptr[1:]))

    def add(self, block: Rows) -> None:
        n_docs = block.nnz.shape[0]
        docs = np.repeat(
            np.arange(self._next_doc, self._next_doc + n_docs, dtype=np.int32), block.nnz
        )
        self._next_doc += n_docs
        if not block.term_ids.size:
            return
        # postings by term, and within a term in the order they came (ascending docs): a
        # sort of (term, position) keys, which numpy does many times faster than an argsort
        keys = np.sort((block.term_ids.astype(np.int64) << 32) | np.arange(block.term_ids.size))
        order = keys & 0xFFFFFFFF
        terms = (keys >> 32).astype(np.int32)
        first = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
        sizes = np.diff(np.r_[first, terms.shape[0]])
        rank = np.arange(terms.shape[0]) - np.repeat(first, sizes)
        where = self._cursor[terms] + rank
        self.indices[where] = docs[order]
        self.tf[where] = block.tf[order]
        self._cursor[terms[first]] += sizes


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(lengths.shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _gather_bytes(blob: np.ndarray, offsets: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The byte ranges of the given rows of a blob, end to end."""
    if rows.size == 0:
        return np.empty(0, np.uint8)
    starts, ends = offsets[rows], offsets[rows + 1]
    # contiguous runs are the common case (whole articles kept in order): copy them in one go
    breaks = np.flatnonzero(starts[1:] != ends[:-1]) + 1
    run_starts = np.concatenate([[0], breaks])
    run_ends = np.concatenate([breaks, [rows.size]])
    return np.concatenate(
        [blob[starts[a] : ends[b - 1]] for a, b in zip(run_starts, run_ends, strict=True)]
    )
