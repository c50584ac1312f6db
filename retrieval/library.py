"""The Library: a seeds directory, its persistent index, and search over it."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from retrieval import build, store
from retrieval.analysis import Analyzer
from retrieval.articles import passages_of
from retrieval.models import Article, ArticleRef, Hit, LibraryStats, Passage, SkippedFile
from retrieval.scoring import okapi_idf, score_terms, top_k
from retrieval.seedfile import article_id

log = logging.getLogger(__name__)

# How long a refresh waits for another process (the bot, a CLI run) that is writing the same
# index directory before it serves what it built without saving it.
LOCK_WAIT_SECONDS = 300.0


class AliasesFileError(ValueError):
    """The operator's alias file cannot be read or has a malformed line (the message says)."""


def default_index_dir(seeds_dir: Path) -> Path:
    """$XDG_CACHE_HOME/news-qa-bot/<seeds path hash>, else ~/.cache/news-qa-bot/<hash>."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha1(str(seeds_dir.resolve()).encode()).hexdigest()[:12]
    return cache / "news-qa-bot" / f"{seeds_dir.resolve().name}-{key}"


@dataclass(frozen=True)
class RankedPassage:
    """A passage's place in the index and its score: a search before anything is decoded."""

    doc: int
    score: float


@dataclass(frozen=True)
class _Snapshot:
    """An index with what queries need precomputed. Never mutated."""

    index: store.Index
    idf: np.ndarray
    tiebreak: np.ndarray  # rank of each passage in (newest article first, then article order)
    newest_first: np.ndarray  # article numbers, newest first
    refs: tuple[ArticleRef, ...]  # by article number
    article_numbers: dict[str, int]  # article id → article number
    glosses: dict[str, str]  # English gloss → the Chinese name it glosses
    # decoded articles and their passages: replies often show several passages of one article
    cut: Callable[[int], tuple[Article, list[Passage]]]

    @classmethod
    def of(cls, index: store.Index) -> _Snapshot:
        a = index.arrays
        df = np.diff(a["indptr"])
        published = a["article_published_ms"]
        doc_published = published[a["doc_article"]] if index.n_docs else published[:0]
        order = np.lexsort((np.arange(index.n_docs), -doc_published))
        tiebreak = np.empty(index.n_docs, np.int64)
        tiebreak[order] = np.arange(index.n_docs)
        # from the file records: no article has to be decoded for them
        refs: list[ArticleRef | None] = [None] * index.n_articles
        for record in index.files.values():
            if record.article_number is not None and record.url is not None:
                refs[record.article_number] = ArticleRef(
                    id=article_id(record.url),
                    url=record.url,
                    published=datetime.fromtimestamp(record.published_ms / 1000, tz=UTC),
                )
        if any(ref is None for ref in refs):
            raise store.IndexCorrupt("an article without its file record")
        return cls(
            index=index,
            idf=okapi_idf(df.astype(np.float64), index.n_docs),
            tiebreak=tiebreak,
            newest_first=np.lexsort((np.arange(published.shape[0]), -published)),
            refs=tuple(r for r in refs if r is not None),
            article_numbers={ref.id: number for number, ref in enumerate(refs) if ref},
            glosses={gloss: name for name, gloss in index.names.items()},
            cut=lru_cache(maxsize=1024)(lambda n: (a := index.article(n), passages_of(a))),
        )


class Library:
    """Articles from a seeds directory, searchable by BM25 over their passages.

    Thread-safe: `search` reads an immutable snapshot; `refresh` builds the next one aside
    and swaps it in, so answering never waits for a reload. Reads no environment: every
    setting is an argument (the bot's Settings and the CLI's flags supply them).
    """

    def __init__(
        self,
        seeds_dir: Path,
        index_dir: Path,
        analyzer: Analyzer,
        workers: build.Workers | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        self.analyzer = analyzer
        self.workers = workers or build.Workers(count=os.cpu_count() or 1)
        self.lock_wait_seconds = lock_wait_seconds
        self._snapshot: _Snapshot | None = None
        self._refresh_lock = threading.Lock()

    @classmethod
    def from_dir(
        cls,
        seeds_dir: str | os.PathLike[str],
        index_dir: str | os.PathLike[str] | None = None,
        *,
        aliases_file: str | os.PathLike[str] | None = None,
        workers: build.Workers | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    ) -> Library:
        """Open the library of a seeds directory: load its saved index, bring it up to date.

        Raises OSError for a missing or unreadable seeds directory, AliasesFileError for an
        unusable aliases file (both with a one-line message)."""
        seeds = Path(seeds_dir)
        if not seeds.exists():
            raise FileNotFoundError(f"seeds directory {seeds} does not exist")
        if not seeds.is_dir():
            raise NotADirectoryError(f"seeds directory {seeds} is not a directory")
        if not os.access(seeds, os.R_OK | os.X_OK):
            raise PermissionError(f"seeds directory {seeds} is not readable")
        try:
            analyzer = Analyzer.default(aliases_file)
        except (OSError, ValueError) as exc:
            raise AliasesFileError(f"{aliases_file}: {exc}") from exc
        index = Path(index_dir) if index_dir else default_index_dir(seeds)
        library = cls(seeds, index, analyzer, workers, lock_wait_seconds)
        library.refresh()
        return library

    # --- keeping up with the seeds directory --------------------------------------------------

    def refresh(self) -> bool:
        """Pick up added, changed and deleted seed files. True if anything changed."""
        with self._refresh_lock:
            if self._snapshot is not None and not self.seeds_dir.is_dir():
                # unmounted or moved away: keep answering from what we have, don't empty it
                log.warning(
                    "seeds directory %s is gone; keeping the index as it is", self.seeds_dir
                )
                return False
            try:
                with store.writer_lock(self.index_dir, self.lock_wait_seconds):
                    return self._update(save=True)
            except (OSError, store.IndexBusy) as exc:
                # a read-only or full cache, or a writer that never lets go: still answer
                log.warning(
                    "cannot write the index in %s (%s): serving it unsaved", self.index_dir, exc
                )
                return self._update(save=False)

    def _update(self, *, save: bool) -> bool:
        """Bring the snapshot up to date with the seeds directory. Starts from the saved index
        when another process saved a newer one since (the bot and the CLI share a cache)."""
        current = self._snapshot.index if self._snapshot else None
        old = current
        if current is None or current.generation != store.current_generation(self.index_dir):
            old = self._load_saved() or current
        draft = build.update(self.seeds_dir, self.analyzer, old, self.workers)
        if draft is None:
            if old is None or old is current:
                return False
            self._snapshot = _Snapshot.of(old)
            return current is not None
        index = None
        if save:
            try:
                store.save(self.index_dir, draft)
                index = store.load(self.index_dir)  # serve the memory-mapped copy
            except (OSError, store.IndexCorrupt) as exc:
                log.warning("could not save the index in %s: %s", self.index_dir, exc)
        index = index or store.Index.in_memory(draft)
        self._snapshot = _Snapshot.of(index)
        log.info("index: %d articles, %d passages", index.n_articles, index.n_docs)
        return True

    def _load_saved(self) -> store.Index | None:
        try:
            return store.load(self.index_dir)
        except store.IndexCorrupt as exc:
            log.warning("index in %s is unusable (%s): rebuilding", self.index_dir, exc)
            return None

    @property
    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        assert snapshot is not None, "Library.refresh() has not run"
        return snapshot

    # --- questions ----------------------------------------------------------------------------

    def rank(self, query: str, k: int = 5) -> list[RankedPassage]:
        """The k best passages for the query, best first, before anything is decoded."""
        return self._rank(self._current, query, k)[1]

    def query_terms(self, query: str) -> list[str]:
        """The index terms a query is scored on (names the articles gloss included)."""
        snap = self._current
        return self.analyzer.query_terms(query, snap.index.names, snap.glosses)

    def _rank(self, snap: _Snapshot, query: str, k: int) -> tuple[list[str], list[RankedPassage]]:
        index = snap.index
        terms = self.analyzer.query_terms(query, index.names, snap.glosses)
        term_ids = [index.vocab[t] for t in terms if t in index.vocab]
        docs, scores = score_terms(index.postings, snap.idf, term_ids)
        return terms, [RankedPassage(d, s) for d, s in top_k(docs, scores, k, snap.tiebreak)]

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k passages that best answer the query, best first; [] when nothing matches."""
        snap = self._current
        terms, ranked = self._rank(snap, query, k)
        a = snap.index.arrays
        hits = []
        for r in ranked:
            article, passages = snap.cut(int(a["doc_article"][r.doc]))
            passage = passages[int(a["doc_ordinal"][r.doc])]
            hits.append(
                Hit(
                    score=r.score,
                    passage=passage,
                    article=article,
                    spans=self.analyzer.highlight_spans(terms, passage.text),
                )
            )
        return hits

    def latest(self, n: int = 5) -> list[Article]:
        """The n newest articles, newest first."""
        snap = self._current
        return [snap.cut(int(a))[0] for a in snap.newest_first[: max(n, 0)]]

    def article_refs(self) -> list[ArticleRef]:
        """Every article's id, URL and date, newest first; cheap (nothing is decoded)."""
        snap = self._current
        return [snap.refs[int(n)] for n in snap.newest_first]

    def article(self, aid: str) -> Article | None:
        """The article with this id, if the library has it."""
        snap = self._current
        number = snap.article_numbers.get(aid)
        return None if number is None else snap.cut(number)[0]

    def indexed_terms(self) -> Iterator[list[str]]:
        """Every passage's index terms, in passage order: what BM25 scores (for references)."""
        snap = self._current
        for number in range(snap.index.n_articles):
            article, passages = snap.cut(number)
            yield from build.article_terms(article, passages, self.analyzer)[1]

    @property
    def n_articles(self) -> int:
        return self._current.index.n_articles

    def stats(self) -> LibraryStats:
        """How many articles and passages, the newest date, and the files that were skipped."""
        index = self._current.index
        newest = self.latest(1)
        skipped = tuple(SkippedFile(p, r.error) for p, r in sorted(index.files.items()) if r.error)
        return LibraryStats(
            articles=index.n_articles,
            passages=index.n_docs,
            newest=newest[0].published if newest else None,
            skipped=skipped,
        )
