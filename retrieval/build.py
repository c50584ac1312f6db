"""Building the index: which seed files changed, parsing them (in worker processes when there
are many), and segments: one of fresh files, or one merged from other segments' live articles.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path

import numpy as np

from retrieval import seedfile
from retrieval.analysis import (
    BIGRAM_CODES,
    Analyzer,
    TextTerms,
    bigram_code,
    bigram_strings,
)
from retrieval.articles import passages_of, read_article
from retrieval.cues import passage_cues
from retrieval.models import Article, Passage
from retrieval.seedfile import SeedFormatError, SeedStat
from retrieval.store import (
    FileRecord,
    Segment,
    SegmentDraft,
    State,
    encode_article,
    new_segment_name,
)

log = logging.getLogger(__name__)

PARALLEL_FROM_FILES = 400  # below this, worker start-up costs more than it saves


@dataclass(frozen=True)
class Rows:
    """Documents (passages, or articles) of one batch as rows of a docs x terms matrix in CSR
    form: document i holds nnz[i] consecutive entries of term_ids and tf."""

    nnz: np.ndarray  # int64
    term_ids: np.ndarray  # int32
    tf: np.ndarray  # uint16: a term's count in one passage or article never needs more

    @staticmethod
    def of(documents: np.ndarray, term_ids: np.ndarray, n_documents: int) -> Rows:
        """Rows from (document, term id) pairs, one an occurrence."""
        keys = (documents.astype(np.int64) << 32) | term_ids
        unique, counts = np.unique(keys, return_counts=True)
        return Rows(
            nnz=np.bincount(unique >> 32, minlength=n_documents).astype(np.int64),
            term_ids=(unique & 0xFFFFFFFF).astype(np.int32),
            tf=np.minimum(counts, TF_MAX).astype(np.uint16),
        )


TF_MAX = np.iinfo(np.uint16).max


def _joined(blocks: list[Rows]) -> Rows:
    return Rows(
        np.concatenate([b.nnz for b in blocks]),
        np.concatenate([b.term_ids for b in blocks]),
        np.concatenate([b.tf for b in blocks]),
    )


_NO_ROWS = Rows(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.uint16))


@dataclass(frozen=True)
class ParsedFile:
    """One seed file, parsed and analysed, as compact arrays (cheap to send between processes).

    Term ids are local to a batch until `_globalise` maps them."""

    path: str
    error: str | None = None
    url: str | None = None
    article_id: str = ""
    published_ms: int = 0
    article_json: bytes = b""
    passages: Rows = _NO_ROWS
    passage_len: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    passage_cues: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    # what the article as a whole adds to its passages' terms (title twice, captions), each
    # occurrence once; `_article_rows` makes the article's document of it when it is needed
    # (at a million passages, holding every article's row beside every passage's: 0.5 GB)
    about: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    names: dict[str, str] = field(default_factory=dict)

    @property
    def n_passages(self) -> int:
        return int(self.passage_len.shape[0])

    def with_terms(self, renumber: Callable[[np.ndarray], np.ndarray]) -> ParsedFile:
        return replace(
            self,
            passages=replace(self.passages, term_ids=renumber(self.passages.term_ids)),
            about=renumber(self.about),
        )


class _BatchIds(dict[str, int]):
    """term → id in a worker (a C-speed lookup for known terms): a term of two Chinese
    characters has its bigram code, a bigram's id, whether it came as a word or a bigram;
    other terms are numbered from BIGRAM_CODES on first sight."""

    def __missing__(self, term: str) -> int:
        code = bigram_code(term)
        self[term] = number = BIGRAM_CODES + len(self) if code is None else code
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


@dataclass(frozen=True)
class ArticleTerms:
    """An article analysed: the names it glosses, the normalised texts whose terms index it
    (see Analyzer.normalize): its passages', then what the article as a whole adds to them
    (its title TITLE_WEIGHT times, its captions), and those texts' terms."""

    names: dict[str, str]
    texts: list[str]
    n_passages: int
    terms: TextTerms

    def passage_terms(self) -> list[list[str]]:
        return [self.terms.of(i) for i in range(self.n_passages)]


def article_terms(article: Article, passages: list[Passage], analyzer: Analyzer) -> ArticleTerms:
    normalized = [analyzer.normalize(p.text) for p in passages]
    captions = analyzer.normalize("\n".join(article.captions))
    names = analyzer.glossed_names("\n".join([captions, *normalized]))
    texts = [*normalized, *[analyzer.normalize(article.title)] * TITLE_WEIGHT, captions]
    return ArticleTerms(names, texts, len(passages), analyzer.texts_terms(texts, names))


def _parse_file(seeds_dir: str, rel: str, analyzer: Analyzer, vocab: _BatchIds) -> ParsedFile:
    """One seed file, parsed and analysed; a file that cannot be is skipped with the reason,
    whatever went wrong, and never takes the rest of the build down with it."""
    try:
        return _analyse(read_article(Path(seeds_dir, rel), rel), analyzer, vocab)
    except SeedFormatError as exc:
        return ParsedFile(rel, error=str(exc))
    except Exception as exc:  # a parser bug on one odd file: log it, keep the rest
        log.exception("could not parse seed file %s", rel)
        return ParsedFile(rel, error=f"could not be parsed ({type(exc).__name__})")


def _analyse(article: Article, analyzer: Analyzer, vocab: _BatchIds) -> ParsedFile:
    """The article's terms as ids (`_BatchIds`'s), until `_parse_chunk` numbers them
    densely."""
    passages = passages_of(article)
    analysed = article_terms(article, passages, analyzer)
    terms, n = analysed.terms, analysed.n_passages
    word_ids = np.fromiter(map(vocab.__getitem__, terms.words), np.int64, len(terms.words))
    ids = np.concatenate([word_ids, terms.bigram_codes])
    texts = np.concatenate(
        [np.repeat(np.arange(len(terms.word_counts)), terms.word_counts), terms.bigram_texts]
    )
    of_passage = texts < n
    return ParsedFile(
        article.source,
        url=article.url,
        article_id=article.id,
        published_ms=int(article.published.timestamp() * 1000),
        article_json=encode_article(article, passages),
        passages=Rows.of(texts[of_passage], ids[of_passage], n),
        passage_len=np.bincount(texts[of_passage], minlength=n).astype(np.int64),
        passage_cues=np.fromiter(map(passage_cues, analysed.texts[:n]), np.uint64, n),
        about=ids[~of_passage].astype(np.int32),
        names=analysed.names,
    )


@dataclass(frozen=True)
class LocalTerms:
    """The terms of a batch of parsed files: local id i is the bigram `codes[i]`, or the word
    `words[i - len(codes)]`."""

    codes: np.ndarray  # sorted
    words: list[str]


def _parse_chunk(
    seeds_dir: str, paths: list[str], analyzer: Analyzer | None = None
) -> tuple[LocalTerms, list[ParsedFile]]:
    """Parse and analyse some files; term ids are local to the returned terms."""
    analyzer = analyzer or _worker_analyzer
    assert analyzer is not None
    vocab = _BatchIds()
    files = [_parse_file(seeds_dir, rel, analyzer, vocab) for rel in paths]
    parsed = [f for f in files if f.error is None]
    ids = [part for f in parsed for part in (f.passages.term_ids, f.about)]
    used = np.unique(np.concatenate([np.empty(0, np.int32), *ids]))
    words = {number: term for term, number in vocab.items() if number >= BIGRAM_CODES}
    bigrams = used < BIGRAM_CODES  # the first ones: `used` is sorted
    local = LocalTerms(used[bigrams].astype(np.int64), [words[i] for i in used[~bigrams].tolist()])

    def renumber(ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(used, ids).astype(np.int32)

    return local, [f.with_terms(renumber) if f.error is None else f for f in files]


@dataclass(frozen=True)
class Workers:
    """How files are parsed: in `count` worker processes once there are `from_files` of them.

    `start_method` is multiprocessing's (None: the platform's default: fork on Linux up to
    Python 3.13, forkserver from 3.14, spawn on macOS and Windows)."""

    count: int = 1
    from_files: int = PARALLEL_FROM_FILES
    start_method: str | None = None


def parse_files(
    seeds_dir: Path, paths: list[str], analyzer: Analyzer, vocab: Vocabulary, workers: Workers
) -> list[ParsedFile]:
    """Parse files (in worker processes when there are many); term ids become `vocab`'s."""
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
            return [f for local, files in results for f in vocab.renumbered(local, files)]
    local, files = _parse_chunk(str(seeds_dir), paths, analyzer)
    return vocab.renumbered(local, files)


class Vocabulary:
    """A new segment's terms, numbered as batches of parsed files arrive: words by their
    string, bigrams by their code in sorted arrays (a million passages bring millions of
    bigrams: hashing a string for each in this one process would cost more than a worker's
    share of the parsing)."""

    def __init__(self) -> None:
        self._words: dict[str, int] = {}
        self._codes = np.empty(0, np.int64)  # sorted
        self._code_ids = np.empty(0, np.int64)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def renumbered(self, local: LocalTerms, files: list[ParsedFile]) -> list[ParsedFile]:
        """A batch's files with their terms' ids in this vocabulary (new terms numbered)."""
        ids = np.concatenate([self._code_ids_of(local.codes), self._word_ids_of(local.words)])
        mapping = ids.astype(np.int32)
        return [f.with_terms(mapping.__getitem__) if f.error is None else f for f in files]

    def _code_ids_of(self, codes: np.ndarray) -> np.ndarray:
        at = np.searchsorted(self._codes, codes)
        inside = at < self._codes.shape[0]
        known = np.zeros(codes.shape[0], bool)
        known[inside] = self._codes[at[inside]] == codes[inside]
        ids = np.empty(codes.shape[0], np.int64)
        ids[known] = self._code_ids[at[known]]
        new = np.flatnonzero(~known)
        ids[new] = np.arange(self._size, self._size + new.shape[0])
        self._size += new.shape[0]
        # codes arrive sorted, so the new ones go in, in order, where the search put them
        self._codes = np.insert(self._codes, at[new], codes[new])
        self._code_ids = np.insert(self._code_ids, at[new], ids[new])
        return ids

    def _word_ids_of(self, words: list[str]) -> np.ndarray:
        new = [w for w in words if w not in self._words]
        self._words.update(zip(new, range(self._size, self._size + len(new)), strict=True))
        self._size += len(new)
        return np.fromiter(map(self._words.__getitem__, words), np.int64, len(words))

    def terms(self) -> list[str]:
        """Every term, by its id."""
        out = np.empty(self._size, object)
        out[self._code_ids] = bigram_strings(self._codes)
        out[list(self._words.values())] = list(self._words)
        return out.tolist()


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
    seeds_dir: Path, analyzer: Analyzer, old: State | None, workers: Workers = Workers()
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
