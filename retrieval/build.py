"""Building the index: seed files scanned, parsed and analysed (in worker processes when there
are many), then assembled into an IndexDraft, reusing the previous index for unchanged files.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy import sparse

from retrieval import seedfile
from retrieval.analysis import Analyzer
from retrieval.articles import passages_of, read_article
from retrieval.cues import passage_cues
from retrieval.models import Article, Passage
from retrieval.seedfile import SeedFormatError, SeedStat
from retrieval.store import FileRecord, Index, IndexDraft, encode_article

log = logging.getLogger(__name__)

PARALLEL_FROM_FILES = 400  # below this, worker start-up costs more than it saves


@dataclass(frozen=True)
class Rows:
    """Documents (passages, or articles) of one batch as rows of a docs x terms matrix in CSR
    form: document i holds nnz[i] consecutive entries of term_ids and tf."""

    nnz: np.ndarray  # int64
    term_ids: np.ndarray  # int32
    tf: np.ndarray  # uint32

    @staticmethod
    def of(term_ids: list[int], lengths: list[int], tf: list[int] | None = None) -> Rows:
        """Rows from each document's term ids end to end (`lengths` of them each), with the
        tf of each occurrence (1 when not given); each (document, term) pair counted once."""
        sizes = np.asarray(lengths, np.int64)
        keys = np.repeat(np.arange(sizes.shape[0], dtype=np.int64), sizes) << 32
        keys |= np.asarray(term_ids, np.int64)
        unique, inverse = np.unique(keys, return_inverse=True)
        counts = np.bincount(inverse, weights=tf, minlength=unique.shape[0])
        return Rows(
            nnz=np.bincount(unique >> 32, minlength=sizes.shape[0]).astype(np.int64),
            term_ids=(unique & 0xFFFFFFFF).astype(np.int32),
            tf=counts.astype(np.uint32),
        )


_NO_ROWS = Rows(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.uint32))


@dataclass(frozen=True)
class ParsedFile:
    """One seed file, parsed and analysed, as compact arrays (cheap to send between processes).

    Term ids are local to a batch until `_globalise` maps them."""

    path: str
    error: str | None = None
    url: str | None = None
    published_ms: int = 0
    article_json: bytes = b""
    passages: Rows = _NO_ROWS
    passage_len: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    passage_cues: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    article: Rows = _NO_ROWS  # one row: the article as a whole (see article_terms)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def n_passages(self) -> int:
        return int(self.passage_len.shape[0])

    def with_terms(self, mapping: np.ndarray) -> ParsedFile:
        return replace(
            self,
            passages=replace(self.passages, term_ids=mapping[self.passages.term_ids]),
            article=replace(self.article, term_ids=mapping[self.article.term_ids]),
        )


class _Vocabulary(dict[str, int]):
    """term → id, numbering new terms on first sight (a C-speed lookup for known ones)."""

    def __missing__(self, term: str) -> int:
        self[term] = number = len(self)
        return number


_worker_analyzer: Analyzer | None = None


def _init_worker(analyzer: Analyzer, pool_pid: int) -> None:
    """A worker's set-up: its own Analyzer (which arrives as data and builds its segmenter
    and converter here), and a watchdog that ends the worker once the pool's process is
    gone: a process killed with SIGKILL cannot stop its pool."""
    global _worker_analyzer
    _worker_analyzer = analyzer
    # Under fork and spawn the worker is re-parented when the pool's process dies. Under
    # forkserver its parent is the fork server, which outlives the pool's process as long as
    # workers hold its pipe, so the pool's process itself is watched too.
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and _alive(pool_pid):
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # signal 0 would terminate it on Windows
    try:
        os.kill(pid, 0)
    except OSError:  # gone, or the pid now belongs to another user's process
        return False
    return True


# The article as one document, for article evidence: its title counts twice, its photo
# captions once, and its passages (README, "Ranking").
TITLE_WEIGHT = 2


def article_terms(
    article: Article, passages: list[Passage], analyzer: Analyzer
) -> tuple[dict[str, str], list[list[str]], list[str]]:
    """The names an article glosses, the index terms of each passage, and the terms that
    the article as a whole adds to its passages' (its title, twice, and its captions)."""
    names = analyzer.glossed_names(
        "\n".join([*article.captions, *(p.text for p in article.paragraphs)])
    )
    passage_terms = [analyzer.terms(p.text, names) for p in passages]
    about = analyzer.terms(article.title, names) * TITLE_WEIGHT
    about += analyzer.terms("\n".join(article.captions), names)
    return names, passage_terms, about


def _parse_file(seeds_dir: str, rel: str, analyzer: Analyzer, vocab: _Vocabulary) -> ParsedFile:
    """One seed file, parsed and analysed; a file that cannot be is skipped with the reason,
    whatever went wrong, and never takes the rest of the build down with it."""
    try:
        return _analyse(read_article(Path(seeds_dir, rel), rel), analyzer, vocab)
    except SeedFormatError as exc:
        return ParsedFile(rel, error=str(exc))
    except Exception as exc:  # a parser bug on one odd file: log it, keep the rest
        log.exception("could not parse seed file %s", rel)
        return ParsedFile(rel, error=f"could not be parsed ({type(exc).__name__})")


def _analyse(article: Article, analyzer: Analyzer, vocab: _Vocabulary) -> ParsedFile:
    passages = passages_of(article)
    names, passage_terms, about = article_terms(article, passages, analyzer)
    ids: list[int] = []
    lengths = []
    for terms in passage_terms:
        ids += map(vocab.__getitem__, terms)
        lengths.append(len(terms))
    rows = Rows.of(ids, lengths)
    # the article as one document: its passages' terms, then its title's and captions'
    whole = [*rows.term_ids.tolist(), *map(vocab.__getitem__, about)]
    counts = [*rows.tf.tolist(), *[1] * len(about)]
    return ParsedFile(
        article.source,
        url=article.url,
        published_ms=int(article.published.timestamp() * 1000),
        article_json=encode_article(article, passages),
        passages=rows,
        passage_len=np.asarray(lengths, np.int64),
        passage_cues=np.fromiter(
            (passage_cues(analyzer.normalize(p.text)) for p in passages), np.uint64, len(passages)
        ),
        article=Rows.of(whole, [len(whole)], counts),
        names=names,
    )


def _parse_chunk(
    seeds_dir: str, paths: list[str], analyzer: Analyzer | None = None
) -> tuple[list[str], list[ParsedFile]]:
    """Parse and analyse some files; term ids are local to the returned vocabulary."""
    analyzer = analyzer or _worker_analyzer
    assert analyzer is not None
    vocab = _Vocabulary()
    files = [_parse_file(seeds_dir, rel, analyzer, vocab) for rel in paths]
    return list(vocab), files


@dataclass(frozen=True)
class Workers:
    """How files are parsed: in `count` worker processes once there are `from_files` of them.

    `start_method` is multiprocessing's (None: the platform's default: fork on Linux up to
    Python 3.13, forkserver from 3.14, spawn on macOS and Windows)."""

    count: int = 1
    from_files: int = PARALLEL_FROM_FILES
    start_method: str | None = None


def parse_files(
    seeds_dir: Path, paths: list[str], analyzer: Analyzer, vocab: dict[str, int], workers: Workers
) -> list[ParsedFile]:
    """Parse files (in worker processes when there are many); term ids become global ids."""
    if not paths:
        return []
    if workers.count > 1 and len(paths) >= workers.from_files:
        size = max(50, len(paths) // (workers.count * 8))
        chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
        context = multiprocessing.get_context(workers.start_method)
        with ProcessPoolExecutor(
            workers.count,
            mp_context=context,
            initializer=_init_worker,
            initargs=(analyzer, os.getpid()),
        ) as pool:
            results = pool.map(_parse_chunk, [str(seeds_dir)] * len(chunks), chunks)
            return [f for local, files in results for f in _globalise(local, files, vocab)]
    local, files = _parse_chunk(str(seeds_dir), paths, analyzer)
    return _globalise(local, files, vocab)


def _globalise(
    local: list[str], files: list[ParsedFile], vocab: dict[str, int]
) -> list[ParsedFile]:
    mapping = np.fromiter((vocab.setdefault(t, len(vocab)) for t in local), np.int32, len(local))
    return [f.with_terms(mapping) if f.error is None else f for f in files]


# --- building a generation ---------------------------------------------------------------------


def update(
    seeds_dir: Path, analyzer: Analyzer, old: Index | None, workers: Workers = Workers()
) -> IndexDraft | None:
    """The index for the seeds directory as it is now, reusing `old` for unchanged files.

    Returns None when nothing changed since `old`. Only new and changed files are parsed.
    """
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

    vocab = dict(old.vocab) if old else {}
    parsed = {f.path: f for f in parse_files(seeds_dir, changed, analyzer, vocab, workers)}
    for f in parsed.values():
        if f.error:
            log.warning("skipped seed file %s: %s", f.path, f.error)

    def record(path: str) -> FileRecord:
        if path in parsed:
            f = parsed[path]
            st = current[path]
            return FileRecord(st.size, st.mtime_ns, f.url, f.published_ms, f.error)
        return old_files[path]

    records = {p: record(p) for p in sorted(current)}
    winners = _newest_per_url(records)
    revived = sorted(p for p in winners if p not in parsed and records[p].article_number is None)
    for f in parse_files(seeds_dir, revived, analyzer, vocab, workers):
        parsed[f.path] = f

    kept = sorted(
        (p for p in winners if p not in parsed), key=lambda p: records[p].article_number or 0
    )
    # popped, so that _assemble holds the only reference and can release each file it copies
    fresh = [parsed.pop(p) for p in sorted(winners) if p in parsed]
    return _assemble(analyzer.fingerprint, old, records, kept, fresh, vocab)


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


def _assemble(
    fingerprint: str,
    old: Index | None,
    records: Mapping[str, FileRecord],
    kept: list[str],
    fresh: list[ParsedFile],
    vocab: dict[str, int],
) -> IndexDraft:
    """A new generation: the kept files' articles taken from `old`, then the fresh files'.

    Memory matters at a million passages: postings go straight into their term-major arrays
    (no doc-major copy beside them), and each fresh file is released once it is copied.
    """
    n_terms = len(vocab)
    names = dict(old.names) if old else {}
    numbers = np.array([records[p].article_number for p in kept], dtype=np.int64)
    if old is not None and kept:
        oa = old.arrays
        starts = oa["article_passage_start"][numbers]
        ends = oa["article_passage_start"][numbers + 1]
        rows = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends, strict=True)])
        kept_passages = _rows_of(oa, "passage", old.n_passages, n_terms, rows)
        kept_articles = _rows_of(oa, "article", old.n_articles, n_terms, numbers)
        kept_json = _gather_bytes(oa["article_json"], oa["article_json_offsets"], numbers)
        kept_json_lengths = np.diff(oa["article_json_offsets"])[numbers]
        kept_published = oa["article_published_ms"][numbers]
        kept_counts = ends - starts
        per_passage = {k: [oa[k][rows]] for k in ("passage_len", "passage_ordinal", "passage_cues")}
        kept_article_len = oa["article_len"][numbers]
    else:
        kept_passages, kept_articles = [], []
        kept_json = np.empty(0, np.uint8)
        kept_json_lengths = kept_published = kept_counts = np.empty(0, np.int64)
        per_passage = {"passage_len": [], "passage_ordinal": [], "passage_cues": []}
        kept_article_len = np.empty(0)

    # a passage's tf fits 16 bits (a hundred million postings at a million passages)
    passages = _TermMajor([*kept_passages, *(f.passages for f in fresh)], n_terms, np.uint16)
    articles = _TermMajor([*kept_articles, *(f.article for f in fresh)], n_terms, np.uint32)
    for block in kept_passages:
        passages.add(block)
    for block in kept_articles:
        articles.add(block)
    del kept_passages, kept_articles

    n_articles = len(kept) + len(fresh)
    json_bytes = kept_json.shape[0] + sum(len(f.article_json) for f in fresh)
    article_json = np.empty(json_bytes, np.uint8)
    article_json[: kept_json.shape[0]] = kept_json
    json_lengths = np.concatenate([kept_json_lengths, np.zeros(len(fresh), np.int64)])
    published = np.concatenate([kept_published, np.zeros(len(fresh), np.int64)])
    passage_counts = np.concatenate([kept_counts, np.zeros(len(fresh), np.int64)])
    article_len = np.concatenate([kept_article_len, np.zeros(len(fresh))])
    byte, article, fresh_paths = kept_json.shape[0], len(kept), []
    for i in range(len(fresh)):
        f = fresh[i]
        fresh[i] = None  # type: ignore[call-overload]  # release it once copied
        passages.add(f.passages)
        articles.add(f.article)
        size = len(f.article_json)
        article_json[byte : byte + size] = np.frombuffer(f.article_json, np.uint8)
        json_lengths[article], published[article] = size, f.published_ms
        passage_counts[article] = f.n_passages
        article_len[article] = int(f.article.tf.sum())
        per_passage["passage_len"].append(f.passage_len)
        per_passage["passage_ordinal"].append(np.arange(f.n_passages, dtype=np.int32))
        per_passage["passage_cues"].append(f.passage_cues)
        names.update(f.names)
        fresh_paths.append(f.path)
        byte, article = byte + size, article + 1

    assert passages.complete() and articles.complete(), "every block's postings were placed"
    new_records = {p: replace(r, article_number=None) for p, r in records.items()}
    for number, path in enumerate([*kept, *fresh_paths]):
        new_records[path] = replace(records[path], article_number=number)
    terms = [""] * n_terms
    for term, i in vocab.items():
        terms[i] = term

    def joined(key: str, dtype: type) -> np.ndarray:
        parts = per_passage[key]
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype)

    arrays = {
        "passage_indptr": passages.indptr,
        "passage_indices": passages.indices,
        "passage_tf": passages.tf,
        "passage_len": joined("passage_len", np.float64),
        "passage_article": np.repeat(np.arange(n_articles, dtype=np.int32), passage_counts),
        "passage_ordinal": joined("passage_ordinal", np.int32),
        "passage_cues": joined("passage_cues", np.uint64),
        "article_indptr": articles.indptr,
        "article_indices": articles.indices,
        "article_tf": articles.tf,
        "article_len": article_len.astype(np.float64),
        "article_json": article_json,
        "article_json_offsets": _offsets(json_lengths),
        "article_passage_start": _offsets(passage_counts),
        "article_published_ms": published,
    }
    return IndexDraft(fingerprint, new_records, arrays, terms, names)


def _rows_of(
    arrays: Mapping[str, np.ndarray], field: str, n_docs: int, n_terms: int, docs: np.ndarray
) -> list[Rows]:
    """Some documents of a term-major field of a saved index, back in doc-major blocks."""
    old_terms = arrays[f"{field}_indptr"].shape[0] - 1
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

    def __init__(self, blocks: list[Rows], n_terms: int, tf_dtype: type) -> None:
        df = np.zeros(n_terms, np.int64)
        for block in blocks:
            unique, counts = np.unique(block.term_ids, return_counts=True)
            df[unique] += counts
        self.indptr = _offsets(df)
        nnz = int(self.indptr[-1])
        self.indices = np.empty(nnz, np.int32)
        self.tf = np.empty(nnz, tf_dtype)
        self._tf_max = np.iinfo(tf_dtype).max
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
        order = np.argsort(block.term_ids, kind="stable")  # stable: docs stay ascending
        terms = block.term_ids[order]
        first = np.flatnonzero(np.r_[True, terms[1:] != terms[:-1]])
        sizes = np.diff(np.r_[first, terms.shape[0]])
        rank = np.arange(terms.shape[0]) - np.repeat(first, sizes)
        where = self._cursor[terms] + rank
        self.indices[where] = docs[order]
        self.tf[where] = np.minimum(block.tf[order], self._tf_max)
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
