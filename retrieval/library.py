"""The Library: a seeds directory, its persistent index, and search over it."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from retrieval import index as idx
from retrieval.analysis import Analyzer
from retrieval.articles import article_id, passages_of
from retrieval.models import Article, Hit, LibraryStats, Passage, SkippedFile
from retrieval.scoring import okapi_idf, score_terms, top_k

log = logging.getLogger(__name__)


def default_index_dir(seeds_dir: Path) -> Path:
    """$XDG_CACHE_HOME/news-qa-bot/<seeds path hash>, else ~/.cache/news-qa-bot/<hash>."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha1(str(seeds_dir.resolve()).encode()).hexdigest()[:12]
    return cache / "news-qa-bot" / f"{seeds_dir.resolve().name}-{key}"


@dataclass(frozen=True)
class _Snapshot:
    """An index generation with what queries need precomputed. Never mutated."""

    data: idx.IndexData
    idf: np.ndarray
    tiebreak: np.ndarray  # rank of each passage in (newest article first, then article order)
    newest_first: np.ndarray  # article numbers, newest first
    article_numbers: dict[str, int]  # article id → article number
    glosses: dict[str, str]  # English gloss → the Chinese name it glosses
    # decoded articles and their passages: replies often show several passages of one article
    cut: Callable[[int], tuple[Article, list[Passage]]]

    @classmethod
    def of(cls, data: idx.IndexData) -> _Snapshot:
        df = np.diff(data.arrays["indptr"])
        published = data.arrays["article_published_ms"]
        doc_published = published[data.arrays["doc_article"]] if data.n_docs else published[:0]
        order = np.lexsort((np.arange(data.n_docs), -doc_published))
        tiebreak = np.empty(data.n_docs, np.int64)
        tiebreak[order] = np.arange(data.n_docs)
        return cls(
            data=data,
            idf=okapi_idf(df.astype(np.float64), data.n_docs),
            tiebreak=tiebreak,
            newest_first=np.lexsort((np.arange(published.shape[0]), -published)),
            glosses={gloss: name for name, gloss in data.names.items()},
            cut=lru_cache(maxsize=1024)(lambda n: (a := data.article(n), passages_of(a))),
            # from the file records: no article has to be decoded for it
            article_numbers={
                article_id(r.url): r.article
                for r in data.files.values()
                if r.article is not None and r.url is not None
            },
        )


class Library:
    """Articles from a seeds directory, searchable by BM25 over their passages.

    Thread-safe: `search` reads an immutable snapshot; `refresh` builds the next one aside
    and swaps it in, so answering never waits for a reload.
    """

    def __init__(
        self,
        seeds_dir: Path,
        index_dir: Path,
        analyzer: Analyzer,
        workers: int | None = None,
    ) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        self.analyzer = analyzer
        self.workers = workers or os.cpu_count() or 1
        self._snapshot: _Snapshot | None = None
        self._refresh_lock = threading.Lock()

    @classmethod
    def from_dir(
        cls,
        seeds_dir: str | os.PathLike[str],
        index_dir: str | os.PathLike[str] | None = None,
        analyzer: Analyzer | None = None,
        workers: int | None = None,
    ) -> Library:
        """Open the library of a seeds directory: load its saved index, bring it up to date.

        Raises OSError for a missing or unreadable seeds directory, ValueError for an
        unusable ALIASES_FILE (both with a one-line message)."""
        seeds = Path(seeds_dir)
        if not seeds.exists():
            raise FileNotFoundError(f"seeds directory {seeds} does not exist")
        if not seeds.is_dir():
            raise NotADirectoryError(f"seeds directory {seeds} is not a directory")
        if not os.access(seeds, os.R_OK | os.X_OK):
            raise PermissionError(f"seeds directory {seeds} is not readable")
        if analyzer is None:
            aliases = os.environ.get("ALIASES_FILE") or None
            try:
                analyzer = Analyzer.default(aliases)
            except (OSError, ValueError) as exc:
                raise ValueError(f"ALIASES_FILE {aliases}: {exc}") from exc
        library = cls(
            seeds, Path(index_dir) if index_dir else default_index_dir(seeds), analyzer, workers
        )
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
            old = self._snapshot.data if self._snapshot else self._load_saved()
            data = idx.update(self.seeds_dir, self.analyzer, old, self.workers)
            if data is None:
                if self._snapshot is None and old is not None:
                    self._snapshot = _Snapshot.of(old)
                return False
            try:
                idx.save(self.index_dir, data)
                saved = idx.load(self.index_dir)  # serve the memory-mapped copy
            except (OSError, idx.IndexCorrupt) as exc:
                # a read-only or full cache still leaves a working library
                log.warning("could not save the index in %s: %s", self.index_dir, exc)
                saved = None
            if saved is None or saved.fingerprint != data.fingerprint:
                saved = data.with_weights()
            self._snapshot = _Snapshot.of(saved)
            log.info("index: %d articles, %d passages", saved.n_articles, saved.n_docs)
            return True

    def _load_saved(self) -> idx.IndexData | None:
        try:
            return idx.load(self.index_dir)
        except idx.IndexCorrupt as exc:
            log.warning("index in %s is unusable (%s): rebuilding", self.index_dir, exc)
            return None

    @property
    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        assert snapshot is not None, "Library.refresh() has not run"
        return snapshot

    # --- questions ----------------------------------------------------------------------------

    def search(self, query: str, k: int = 5) -> list[Hit]:
        """The k passages that best answer the query, best first; [] when nothing matches."""
        snap = self._current
        data = snap.data
        terms = self.analyzer.query_terms(query, data.names, snap.glosses)
        term_ids = [data.vocab[t] for t in terms if t in data.vocab]
        docs, scores = score_terms(data.postings, snap.idf, term_ids)
        hits = []
        for doc, score in top_k(docs, scores, k, snap.tiebreak):
            article, passages = snap.cut(data.article_of(doc))
            passage = passages[int(data.arrays["doc_ordinal"][doc])]
            hits.append(
                Hit(
                    score=score,
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

    def article_ids(self) -> list[str]:
        """Every article's id, newest first; cheap (nothing is decoded)."""
        snap = self._current
        ids = [""] * snap.data.n_articles
        for aid, number in snap.article_numbers.items():
            ids[number] = aid
        return [ids[int(n)] for n in snap.newest_first]

    def article(self, aid: str) -> Article | None:
        """The article with this id, if the library has it."""
        snap = self._current
        number = snap.article_numbers.get(aid)
        return None if number is None else snap.cut(number)[0]

    def stats(self) -> LibraryStats:
        """How many articles and passages, the newest date, and the files that were skipped."""
        snap = self._current
        data = snap.data
        newest = self.latest(1)
        skipped = tuple(SkippedFile(p, r.error) for p, r in sorted(data.files.items()) if r.error)
        return LibraryStats(
            articles=data.n_articles,
            passages=data.n_docs,
            newest=newest[0].published if newest else None,
            skipped=skipped,
        )
