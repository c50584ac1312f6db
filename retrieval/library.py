"""The Library: a seeds directory, its persistent index, and search over it."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache, partial
from pathlib import Path

import numpy as np

from retrieval import build, ranking, store
from retrieval.analysis import Analyzer
from retrieval.cues import boosts
from retrieval.models import (
    Article,
    ArticleRef,
    Hit,
    LibraryStats,
    Passage,
    SearchResult,
    SkippedFile,
)
from retrieval.scoring import okapi_idf, score, top_k
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
    """A passage's place in the index and its scores: a search before anything is decoded."""

    passage: int  # passage number in the index
    score: float  # what ranks (retrieval.ranking)
    bm25: float  # its BM25Okapi part: rank_bm25's score of the passage's own terms


@dataclass(frozen=True)
class _Snapshot:
    """An index with what queries need precomputed. Never mutated."""

    index: store.Index
    passage_idf: np.ndarray
    article_idf: np.ndarray
    max_idf: float  # of a word the archive never uses, for judging coverage
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
        published = a["article_published_ms"]
        passage_published = published[a["passage_article"]] if index.n_passages else published[:0]
        order = np.lexsort((np.arange(index.n_passages), -passage_published))
        tiebreak = np.empty(index.n_passages, np.int64)
        tiebreak[order] = np.arange(index.n_passages)
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
        passage_idf = okapi_idf(np.diff(a["passage_indptr"]).astype(np.float64), index.n_passages)
        return cls(
            index=index,
            passage_idf=passage_idf,
            article_idf=okapi_idf(
                np.diff(a["article_indptr"]).astype(np.float64), index.n_articles
            ),
            max_idf=float(passage_idf.max()) if passage_idf.size else 1.0,
            tiebreak=tiebreak,
            newest_first=np.lexsort((np.arange(published.shape[0]), -published)),
            refs=tuple(r for r in refs if r is not None),
            article_numbers={ref.id: number for number, ref in enumerate(refs) if ref},
            glosses={gloss: name for name, gloss in index.names.items()},
            cut=lru_cache(maxsize=1024)(index.article),
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
        log.info("index: %d articles, %d passages", index.n_articles, index.n_passages)
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

    def rank(self, query: str, k: int = 5, *, context: Sequence[str] = ()) -> list[RankedPassage]:
        """The k best passages for the query, best first, before anything is decoded."""
        snap = self._current
        return self._rank(snap, self._read(snap, query, context), k)

    def query_terms(self, query: str) -> list[str]:
        """The index terms a query is scored on (names the articles gloss included)."""
        snap = self._current
        return self.analyzer.query_terms(query, snap.index.names, snap.glosses)

    def _read(self, snap: _Snapshot, query: str, context: Sequence[str]) -> ranking.Question:
        def query_terms(text: str) -> list[str]:
            return self.analyzer.query_terms(text, snap.index.names, snap.glosses)

        return ranking.read_question(self.analyzer, query, context, query_terms, snap.index.vocab)

    def _rank(self, snap: _Snapshot, question: ranking.Question, k: int) -> list[RankedPassage]:
        index = snap.index
        passages, bm25 = score(
            index.postings("passage"), snap.passage_idf, question.passage_weights
        )
        if not passages.size:
            return []
        articles, article_bm25 = score(
            index.postings("article"), snap.article_idf, question.article_weights
        )
        by_article = np.zeros(index.n_articles)
        by_article[articles] = article_bm25
        a = index.arrays
        scores = ranking.combine(
            bm25,
            by_article[a["passage_article"][passages]],
            boosts(question.asked, a["passage_cues"][passages]),
        )
        chosen = top_k(passages, scores, k, snap.tiebreak)
        where = np.searchsorted(passages, [p for p, _ in chosen])  # passages are ascending
        return [
            RankedPassage(p, s, float(bm25[i])) for (p, s), i in zip(chosen, where, strict=True)
        ]

    def search(self, query: str, k: int = 5, *, context: Sequence[str] = ()) -> SearchResult:
        """The k passages that best answer the query, best first, and whether they do.

        `context`: the earlier questions of a conversation, oldest first; used only when the
        query leans on them (a follow-up such as 那以色列有回应吗)."""
        snap = self._current
        question = self._read(snap, query, context)
        a = snap.index.arrays
        hits = []
        for ranked in self._rank(snap, question, k):
            article, passages = snap.cut(int(a["passage_article"][ranked.passage]))
            passage = passages[int(a["passage_ordinal"][ranked.passage])]
            spans = self.analyzer.highlight_spans(question.terms, passage.text)
            hits.append(Hit(score=ranked.score, passage=passage, article=article, spans=spans))
        confident, missing = ranking.judge(
            self.analyzer,
            query,
            question.read_with,
            self.analyzer.normalize(_article_text(hits[0].article)) if hits else None,
            partial(self._idf_of_word, snap),
        )
        read_with = question.read_with[-1] if question.read_with else None
        return SearchResult(tuple(hits), confident, tuple(missing), read_with)

    def _idf_of_word(self, snap: _Snapshot, word: str) -> float:
        """How rare a word is among passages: its rarest index term's idf."""
        vocab = snap.index.vocab
        ids = [vocab[t] for t in self.analyzer.terms(word) if t in vocab]
        return max((float(snap.passage_idf[i]) for i in ids), default=snap.max_idf)

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
        """Every passage's index terms, in passage order: what its BM25Okapi part scores."""
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
            passages=index.n_passages,
            newest=newest[0].published if newest else None,
            skipped=skipped,
        )


def _article_text(article: Article) -> str:
    return "\n".join([article.title, *article.captions, *(p.text for p in article.paragraphs)])
