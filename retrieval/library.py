"""The Library: a seeds directory, its persistent index, and search over it."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache, partial
from pathlib import Path

import numpy as np

from retrieval import build, merging, parsing, ranking, store
from retrieval.analysis import Analyzer
from retrieval.index import Index, Ranked
from retrieval.meaning import Meaning
from retrieval.models import (
    Article,
    ArticleRef,
    Hit,
    LibraryStats,
    Passage,
    SearchResult,
    SkippedFile,
)
from retrieval.usage import counted

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


def _read_for_meaning(article: Article, passage: Passage) -> str:
    """A passage as the model reads it: with its article's title, which says what it is about."""
    return f"{article.title}。{passage.text}"


@dataclass(frozen=True)
class _Found:
    """A ranked passage, decoded."""

    ranked: Ranked
    place: tuple[int, int]  # (segment, article number)
    article: Article
    passage: Passage


def _ranked_again(
    scored: list[tuple[_Found, float]],
    depth: int,
    reorder: Callable[[list[float], list[_Found]], list[tuple[int, float]]],
) -> list[tuple[_Found, float]]:
    """`scored` with its first `depth` reordered and rescored by `reorder` (scores and passages
    in, (position, score) best first out: ranking.with_characters, ranking.with_meaning)."""
    first = scored[:depth]
    if not first:
        return scored
    reordered = reorder([score for _, score in first], [f for f, _ in first])
    return [(first[i][0], score) for i, score in reordered] + scored[depth:]


class _Snapshot:
    """A state with what queries need precomputed. Never changed once made."""

    def __init__(self, state: store.State, normalize: Callable[[str], str]) -> None:
        self.state = state
        self.index = Index(state)
        self._normalize = normalize
        # decoded articles and their passages: replies often show several of one article
        self.cut = lru_cache(maxsize=1024)(self._cut)
        # an answer's article as judged (see ranking.judge): its pages and follow-ups ask again
        self.normalized_text = lru_cache(maxsize=1024)(self._normalized_text)

    def _cut(self, segment: int, number: int) -> tuple[Article, list[Passage]]:
        return self.index.segments[segment].article(number)

    def _normalized_text(self, segment: int, number: int) -> str:
        article = self.cut(segment, number)[0]
        return self._normalize(
            "\n".join([article.title, *article.captions, *(p.text for p in article.paragraphs)])
        )

    def decode(self, ranked: Ranked) -> _Found:
        """A ranked passage with its article, decoded."""
        a = self.index.segments[ranked.segment].arrays
        place = (ranked.segment, int(a["passage_article"][ranked.passage]))
        article, passages = self.cut(*place)
        return _Found(ranked, place, article, passages[int(a["passage_ordinal"][ranked.passage])])

    @cached_property
    def newest_first(self) -> list[ArticleRef]:
        """Every article, newest first; ties by id, so the order never depends on how the
        index was built. Worked out when first asked for (a search never needs it)."""
        found = []
        for aid, (segment, number) in self.where.items():
            record = self._records[segment][number]
            found.append((-record.published_ms, aid, record.url or ""))
        found.sort()
        return [
            ArticleRef(aid, url, datetime.fromtimestamp(-ms / 1000, tz=UTC))
            for ms, aid, url in found
        ]

    @cached_property
    def _records(self) -> list[dict[int, store.FileRecord]]:
        """Per segment, article number → the record of the file it came from."""
        position = {s.name: i for i, s in enumerate(self.state.segments)}
        records: list[dict[int, store.FileRecord]] = [{} for _ in self.state.segments]
        for record in self.state.files.values():
            if record.segment is not None:
                records[position[record.segment]][record.article_number or 0] = record
        return records

    @cached_property
    def where(self) -> dict[str, tuple[int, int]]:
        """Article id → (segment, article number); the id is the one stored with the article
        (no URL to canonicalise and hash again)."""
        where = {}
        for i, segment in enumerate(self.state.segments):
            keys = segment.arrays["article_key"].tolist()
            for number in self._records[i]:
                where[f"{keys[number]:016x}"] = (i, number)
        return where


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
        workers: parsing.Workers | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
        meaning: Meaning | None = None,
    ) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        self.analyzer = analyzer
        self.meaning = meaning  # None: rank by terms and characters alone
        self.workers = workers or parsing.Workers(count=os.cpu_count() or 1)
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
        workers: parsing.Workers | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
        meaning: Meaning | None = None,
    ) -> Library:
        """Open the library of a seeds directory: load its saved index, bring it up to date.

        Raises OSError for a missing or unreadable seeds directory, AliasesFileError for an
        unusable aliases file, store.IndexDirUnusable for an index directory that is a file or
        holds other things (each with a one-line message)."""
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
        store.check_index_dir(index)
        library = cls(seeds, index, analyzer, workers, lock_wait_seconds, meaning)
        library.refresh()
        if meaning is not None:
            meaning.restore(index / store.MEANING_FILE)
        return library

    # --- keeping up with the seeds directory --------------------------------------------------

    def refresh(self) -> bool:
        """Pick up added, changed and deleted seed files, and what another process saved.
        True if anything changed."""
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
            except (OSError, store.IndexBusy, store.IndexDirUnusable) as exc:
                # a read-only or full cache, a writer that never lets go, or other files put
                # into the directory since it opened: still answer
                log.warning(
                    "cannot write the index in %s (%s): serving it unsaved", self.index_dir, exc
                )
                return self._update(save=False)

    def _update(self, *, save: bool) -> bool:
        """Bring the snapshot up to date with the seeds directory. Starts from the saved state
        when another process saved a newer one since (the bot, a merge, the CLI)."""
        current = self._snapshot.state if self._snapshot else None
        old = current
        if current is None or current.name != store.current_state(self.index_dir):
            old = self._load_saved(current) or current
        change = build.update(self.seeds_dir, self.analyzer, old, self.workers)
        if change is None:
            if old is None or old is current:
                return False
            self._snapshot = _Snapshot(old, self.analyzer.normalize)
            return current is not None
        state = self._apply(old, change, save)
        self._snapshot = _Snapshot(state, self.analyzer.normalize)
        n_passages = self._current.index.n_passages
        log.info(
            "index: %s, %s", counted(self.n_articles, "article"), counted(n_passages, "passage")
        )
        return True

    def _apply(self, old: store.State | None, change: build.Change, save: bool) -> store.State:
        """The state after a change; saved (its new segment, deletions, the state) if `save`."""
        segments = []
        if old is not None and old.fingerprint == self.analyzer.fingerprint:
            for segment in old.segments:
                deleted = change.deleted.get(segment.name)
                segments.append(segment.with_deleted(deleted) if deleted else segment)
        if change.segment is not None:
            name, draft = change.segment
            fresh = None
            if save:
                try:
                    fresh = store.save_segment(self.index_dir, name, draft)
                except OSError as exc:
                    log.warning("could not save the index in %s: %s", self.index_dir, exc)
                    save = False
            segments.append(fresh or store.Segment.in_memory(name, draft))
        generation = old.generation + 1 if old is not None else 1
        state = store.State(self.analyzer.fingerprint, generation, tuple(segments), change.files)
        # segments with no live article left are dropped (their files are all gone or replaced)
        state = store.without_empty(state)
        if save:
            try:
                return store.commit(self.index_dir, state)
            except OSError as exc:
                log.warning("could not save the index in %s: %s", self.index_dir, exc)
        return state

    def _load_saved(self, current: store.State | None) -> store.State | None:
        try:
            return store.load(self.index_dir, current.segments if current else ())
        except store.IndexCorrupt as exc:
            log.warning("index in %s is unusable (%s): rebuilding", self.index_dir, exc)
            return None

    def merge(self, *, passages_at_most: int | None = None) -> int:
        """Merge segments as the merge policy asks (retrieval.merging); at most segments of
        `passages_at_most` live passages together when given. Returns how many merges ran."""
        done = merging.run(self.index_dir, self.lock_wait_seconds, passages_at_most)
        if done:
            with self._refresh_lock:
                self._update_from_disk()
        return done

    def merge_wanted(self) -> bool:
        """Whether the merge policy would merge segments now."""
        return merging.plan(self._current.state.segments) is not None

    def _update_from_disk(self) -> None:
        current = self._current.state
        saved = self._load_saved(current)
        if saved is not None and saved.name != current.name:
            self._snapshot = _Snapshot(saved, self.analyzer.normalize)

    @property
    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        assert snapshot is not None, "Library.refresh() has not run"
        return snapshot

    # --- questions ----------------------------------------------------------------------------

    def rank(self, query: str, k: int = 5, *, context: Sequence[str] = ()) -> list[Ranked]:
        """The k best passages for the query by their terms alone, best first: search's first
        stage, before anything is decoded (and so before the characters count)."""
        snap = self._current
        return snap.index.rank(self._read(snap, query, context), k)

    def query_terms(self, query: str) -> list[str]:
        """The index terms a query is scored on (names the articles gloss included)."""
        index = self._current.index
        return self.analyzer.query_terms(query, index.names, index.glosses)

    def _read(self, snap: _Snapshot, query: str, context: Sequence[str]) -> ranking.Question:
        index = snap.index

        def query_terms(text: str) -> list[str]:
            return self.analyzer.query_terms(text, index.names, index.glosses)

        return ranking.read_question(self.analyzer, query, context, query_terms, index.vocab)

    def search(self, query: str, k: int = 5, *, context: Sequence[str] = ()) -> SearchResult:
        """The k passages that best answer the query, best first, and whether they do.

        `context`: the earlier questions of a conversation, oldest first; used only when the
        query leans on them (a follow-up such as 那以色列有回应吗)."""
        with self.meaning.searching() if self.meaning is not None else nullcontext():
            return self._search(query, k, context)

    def _search(self, query: str, k: int, context: Sequence[str]) -> SearchResult:
        snap = self._current
        question = self._read(snap, query, context)
        depth = ranking.MEANING_DEPTH if self.meaning is not None else ranking.CHARACTER_DEPTH
        found = snap.index.rank(question, max(k, depth))
        scored = [(f, f.ranked.score) for f in map(snap.decode, found)]
        scored = _ranked_again(
            scored,
            ranking.CHARACTER_DEPTH,
            lambda scores, first: ranking.with_characters(
                scores,
                question.characters,
                [self.analyzer.normalize(f.passage.text) for f in first],
            ),
        )
        if self.meaning is not None:
            meaning = self.meaning
            scored = _ranked_again(
                scored,
                ranking.MEANING_DEPTH,
                lambda scores, first: ranking.with_meaning(
                    scores,
                    meaning.question(query),
                    meaning.passages([_read_for_meaning(f.article, f.passage) for f in first]),
                ),
            )
        hits = tuple(
            Hit(
                score,
                f.passage,
                f.article,
                self.analyzer.highlight_spans(question.terms, f.passage.text),
            )
            for f, score in scored[:k]
        )
        confident, missing = ranking.judge(
            self.analyzer,
            query,
            question.read_with,
            snap.normalized_text(*scored[0][0].place) if hits else None,
            partial(self._idf_of_word, snap.index),
        )
        read_with = question.read_with[-1] if question.read_with else None
        return SearchResult(hits, confident, tuple(missing), read_with)

    def warm_meaning(self, articles: int) -> int:
        """Embed the passages of the newest `articles` articles ahead of their first question,
        so it pays only for its own embedding. How many passages that was (0 without a model);
        passages embedded before cost nothing."""
        if self.meaning is None:
            return 0
        snap = self._current
        texts = []
        for ref in snap.newest_first[: max(articles, 0)]:
            article, passages = snap.cut(*snap.where[ref.id])
            texts += [_read_for_meaning(article, p) for p in passages]
        self.meaning.passages(texts, background=True)
        self.save_meaning()
        return len(texts)

    def save_meaning(self) -> int:
        """Save the passages' vectors beside the index, so that after a restart no question
        waits for them to be embedded again; how many (0 when none was new, without a model,
        or when the directory cannot be written: that is logged, and costs only time)."""
        if self.meaning is None:
            return 0
        try:
            return self.meaning.save(self.index_dir / store.MEANING_FILE)
        except OSError as exc:
            log.warning("cannot save the passages' vectors in %s (%s)", self.index_dir, exc)
            return 0

    def _idf_of_word(self, index: Index, word: str) -> float:
        """How rare a word is among passages: its rarest index term's idf."""
        idfs = [index.passage_idf(t) for t in self.analyzer.terms(word)]
        return max((i for i in idfs if i is not None), default=index.max_idf)

    def latest(self, n: int = 5) -> list[Article]:
        """The n newest articles, newest first."""
        snap = self._current
        return [snap.cut(*snap.where[ref.id])[0] for ref in snap.newest_first[: max(n, 0)]]

    def article_refs(self) -> list[ArticleRef]:
        """Every article's id, URL and date, newest first; cheap (nothing is decoded)."""
        return list(self._current.newest_first)

    def article(self, aid: str) -> Article | None:
        """The article with this id, if the library has it."""
        snap = self._current
        where = snap.where.get(aid)
        return None if where is None else snap.cut(*where)[0]

    def indexed_terms(self) -> Iterator[list[str]]:
        """Every live passage's index terms, segment by segment, in passage order: what the
        BM25Okapi part of the score sees (for checks against rank_bm25)."""
        snap = self._current
        for i, segment in enumerate(snap.index.segments):
            live = segment.live_articles
            for number in np.flatnonzero(live).tolist():
                article, passages = snap.cut(i, number)
                yield from parsing.article_terms(article, passages, self.analyzer).passage_terms()

    def passage_position(self, ranked: Ranked) -> int:
        """Where a ranked passage comes in `indexed_terms`."""
        segments = self._current.index.segments
        before = sum(int(s.live_passages.sum()) for s in segments[: ranked.segment])
        return before + int(segments[ranked.segment].live_passages[: ranked.passage].sum())

    @property
    def n_articles(self) -> int:
        return self._current.index.n_articles

    @property
    def n_segments(self) -> int:
        return len(self._current.index.segments)

    def stats(self) -> LibraryStats:
        """How many articles and passages, the newest date, and the files that were skipped."""
        snap = self._current
        newest = snap.newest_first[0].published if snap.newest_first else None
        skipped = tuple(
            SkippedFile(p, r.error) for p, r in sorted(snap.state.files.items()) if r.error
        )
        return LibraryStats(
            articles=snap.index.n_articles,
            passages=snap.index.n_passages,
            newest=newest,
            skipped=skipped,
        )
