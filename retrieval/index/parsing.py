"""Seed files into `ParsedFile`s: each parsed, analysed and its terms numbered, in worker
processes when there are many. What `build` makes segments of.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from retrieval.articles import passages_of, read_article
from retrieval.index.store import encode_article
from retrieval.models import Article, Passage
from retrieval.progress import Advance, Reporter, task
from retrieval.question.analysis import (
    BIGRAM_CODES,
    Analyzer,
    TextTerms,
    bigram_code,
    bigram_strings,
)
from retrieval.question.cues import passage_cues
from retrieval.seedfile import SeedFormatError

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


_NO_ROWS = Rows(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.uint16))


@dataclass(frozen=True)
class ParsedFile:
    """One seed file, parsed and analysed, as compact arrays (cheap to send between processes).

    Term ids are local to a batch until `Vocabulary.renumbered` maps them."""

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
# captions once, and its passages (docs/retrieval.md, "Ranking").
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
    seeds_dir: str,
    paths: list[str],
    analyzer: Analyzer | None = None,
    advance: Advance | None = None,
) -> tuple[LocalTerms, list[ParsedFile]]:
    """Parse and analyse some files; term ids are local to the returned terms. `advance` (in
    this process only) is told of each file parsed."""
    analyzer = analyzer or _worker_analyzer
    assert analyzer is not None
    vocab = _BatchIds()
    files = []
    for rel in paths:
        files.append(_parse_file(seeds_dir, rel, analyzer, vocab))
        if advance is not None:
            advance(1)
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
    """How files are parsed: in `count` worker processes once there are `from_files` of them,
    telling `progress` how far it has got (None: nobody).

    `start_method` is multiprocessing's (None: the platform's default: fork on Linux up to
    Python 3.13, forkserver from 3.14, spawn on macOS and Windows). The reporter travels in
    here because every build is handed its Workers (IndexKeeper.open takes them too)."""

    count: int = 1
    from_files: int = PARALLEL_FROM_FILES
    start_method: str | None = None
    progress: Reporter | None = None


def parse_files(
    seeds_dir: Path, paths: list[str], analyzer: Analyzer, vocab: Vocabulary, workers: Workers
) -> list[ParsedFile]:
    """Parse files (in worker processes when there are many); term ids become `vocab`'s."""
    if not paths:
        return []
    with task(workers.progress, "indexing seed files", len(paths), "files") as advance:
        return _parse_files(seeds_dir, paths, analyzer, vocab, workers, advance)


def _parse_files(
    seeds_dir: Path,
    paths: list[str],
    analyzer: Analyzer,
    vocab: Vocabulary,
    workers: Workers,
    advance: Advance,
) -> list[ParsedFile]:
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
            parsed = []
            # map's results come in order, each chunk as it is done
            for local, files in pool.map(_parse_chunk, [str(seeds_dir)] * len(chunks), chunks):
                parsed += vocab.renumbered(local, files)
                advance(len(files))
            return parsed
    local, files = _parse_chunk(str(seeds_dir), paths, analyzer, advance)
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
