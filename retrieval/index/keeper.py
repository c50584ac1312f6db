"""The keeper of an index directory: its one writer, and the only code that changes it.

Lucene splits an index's upkeep from its searches (IndexWriter beside SearcherManager); so
does this. The keeper brings the index up to date with the seeds directory (`refresh`), runs
the merge policy and its merges (`merge`, or `merge_aside` in a child process), embeds every
passage ahead of questions (`embed_ahead`; the rows are kept beside the index by
retrieval.index.vectors), and stops all of that (`close`). After each change it hands the new
state to its Library (retrieval.library), which serves snapshots and searches them, nothing
else. Reads no environment: every setting is an argument.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from retrieval import seedfile
from retrieval.index import build, merging, parsing, store, vectors
from retrieval.index.segments import Ranked
from retrieval.library import Library, read_for_meaning, stats_of
from retrieval.models import LibraryStats
from retrieval.progress import Reporter, task
from retrieval.question.analysis import Analyzer
from retrieval.question.meaning import Meaning
from retrieval.question.ranking import SHIPPED, RankingSettings
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


def saved_index_exists(index_dir: Path) -> bool:
    """Whether an index was saved in `index_dir` (opening it may still find it unusable, and
    rebuild it); cheap. Raises store.IndexDirUnusable."""
    store.check_index_dir(index_dir)
    try:
        return store.current_state(index_dir) is not None
    except store.IndexCorrupt:
        return False


def saved_stats(index_dir: Path) -> LibraryStats | None:
    """What the index saved in `index_dir` holds (None: no index yet), read without building,
    writing or locking anything: for health checks beside a running bot. Raises
    store.IndexDirUnusable or store.IndexCorrupt (the bot rebuilds such an index)."""
    store.check_index_dir(index_dir)
    state = store.load(index_dir)
    return None if state is None else stats_of(state)


class IndexKeeper:
    """A seeds directory's index: kept up to date, merged, its vectors kept; served by
    `library`. Thread-safe: changes are serialised, and searches never wait for them."""

    def __init__(
        self,
        seeds_dir: Path,
        index_dir: Path,
        library: Library,
        workers: parsing.Workers | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.seeds_dir = seeds_dir
        self.index_dir = index_dir
        self.library = library
        self.workers = workers or parsing.Workers(count=os.cpu_count() or 1)
        self.lock_wait_seconds = lock_wait_seconds
        self._state: store.State | None = None  # what the library serves
        self._changing = threading.Lock()
        self._merger: subprocess.Popen[bytes] | None = None  # a merge_aside under way
        self._closed = False
        self._merger_lock = threading.Lock()  # not _changing: a stop never waits for a refresh

    @classmethod
    def open(
        cls,
        seeds_dir: str | os.PathLike[str],
        index_dir: str | os.PathLike[str] | None = None,
        *,
        aliases_file: str | os.PathLike[str] | None = None,
        workers: parsing.Workers | None = None,
        lock_wait_seconds: float = LOCK_WAIT_SECONDS,
        meaning: Meaning | None = None,
        ranking: RankingSettings = SHIPPED,
    ) -> IndexKeeper:
        """Open the index of a seeds directory: load what was saved and bring it up to date.
        With a model of meaning, the passages' vectors kept beside it are used too.

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
        passage_vectors = None if meaning is None else vectors.Vectors(meaning, index)
        library = Library(analyzer, passage_vectors, ranking)
        keeper = cls(seeds, index, library, workers, lock_wait_seconds)
        keeper.refresh()
        return keeper

    @property
    def analyzer(self) -> Analyzer:
        return self.library.analyzer

    # --- keeping up with the seeds directory --------------------------------------------------

    def refresh(self) -> bool:
        """Pick up added, changed and deleted seed files, and what another process saved.
        True if anything changed."""
        with self._changing:
            if self._state is not None and not self.seeds_dir.is_dir():
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
        """Bring the state up to date with the seeds directory. Starts from the saved state
        when another process saved a newer one since (the bot, a merge, the CLI)."""
        current = self._state
        old = current
        if current is None or current.name != store.current_state(self.index_dir):
            old = self._load_saved(current) or current
        change = build.update(self.seeds_dir, self.analyzer, old, self.workers)
        if change is None:
            if old is None or old is current:
                return False
            self._serve(old)
            return current is not None
        self._serve(self._apply(old, change, save))
        state = self._current
        log.info(
            "index: %s, %s",
            counted(state.n_articles, "article"),
            counted(state.n_passages, "passage"),
        )
        return True

    def _serve(self, state: store.State) -> None:
        self._state = state
        self.library.serve(state)

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

    def known_articles(self) -> dict[str, Path]:
        """Canonical URL → seed file, for every article the index holds: what a feed ingest
        must not write again (retrieval.feeds), read from the index, not from the files."""
        known: dict[str, Path] = {}
        for path, record in sorted(self._current.files.items()):
            if record.url is not None and record.segment is not None:
                known[seedfile.canonical_url(record.url)] = self.seeds_dir / path
        return known

    # --- merges -------------------------------------------------------------------------------

    def merge_wanted(self) -> bool:
        """Whether the merge policy would merge segments now."""
        return merging.plan(self._current.segments) is not None

    def merge(self, *, passages_at_most: int | None = None) -> int:
        """Merge segments in this process as the merge policy asks (retrieval.index.merging);
        at most segments of `passages_at_most` live passages together when given. Returns how
        many merges ran."""
        done = merging.run(self.index_dir, self.lock_wait_seconds, passages_at_most)
        if done:
            self._serve_saved()
        return done

    def merge_aside(self) -> bool:
        """Merge as the policy asks in a child process (a search never waits for it, nor for
        the GIL), then serve the merged index; blocks until then. False if the merge failed or
        `close` stopped it: a merge killed midway leaves the index as it was."""
        command = [sys.executable, "-m", "retrieval", "merge"]
        command += ["--seeds", str(self.seeds_dir), "--index-dir", str(self.index_dir)]
        with self._merger_lock:
            if self._merger is not None or self._closed:
                return False  # one at a time, and none once closed
            self._merger = merger = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        try:
            _, errors = merger.communicate()
        finally:
            with self._merger_lock:
                if self._merger is merger:
                    self._merger = None
        if self._closed:
            return False
        if merger.returncode:
            last = (errors.decode(errors="replace").strip().splitlines() or ["?"])[-1]
            log.warning("merging the index's segments failed: %s", last)
            return False
        self._serve_saved()
        log.info("index segments merged: %d now", len(self._current.segments))
        return True

    def _serve_saved(self) -> None:
        with self._changing:
            saved = self._load_saved(self._current)
            if saved is not None and saved.name != self._current.name:
                self._serve(saved)

    # --- the passages' vectors ----------------------------------------------------------------

    def embed_ahead(
        self, stop: threading.Event | None = None, progress: Reporter | None = None
    ) -> int:
        """Embed every live passage that has no vector yet, newest articles first, each after
        any search under way, so that a question pays only for its own embedding; until all
        are, or `stop` is set. A change of the index meanwhile (a refresh, a merge) is taken up
        at once, its new articles first. `progress` is told how far it is. Returns how many
        passages were embedded (0 without a model)."""
        passage_vectors = self.library.vectors
        stop = stop or threading.Event()
        if passage_vectors is None:
            return 0
        done = 0
        while not stop.is_set():
            state = self._current
            plan = _pending_articles(state, passage_vectors)
            if not plan:
                break
            total = sum(len(rows) for _, _, rows in plan)
            with task(progress, "embedding passages ahead", total, "passages") as advance:
                for segment, number, rows in plan:
                    if stop.is_set() or self._state is not state:
                        break  # stopped, or the index changed: plan again
                    article, passages = segment.article(number)
                    start = int(segment.arrays["article_passage_start"][number])
                    wanted = [
                        (segment.name, segment.n_passages, row, read_for_meaning(article, p))
                        for row, p in ((r, passages[r - start]) for r in rows.tolist())
                    ]
                    passage_vectors.rows(wanted, background=True)
                    done += len(wanted)
                    advance(len(wanted))
            passage_vectors.flush()
            if self._state is state:
                break  # once over an unchanged index (rows that cannot be kept stay pending)
        if not stop.is_set():
            # all embedded: the nearest-by-meaning search reads its copy of the rows now,
            # and English questions their dictionary, not in the first question after
            passage_vectors.prepare(self._current.segments)
            self.library.prepare_across()
        return done

    def passages_to_embed(self) -> int:
        """How many live passages have no vector yet (0 without a model)."""
        passage_vectors = self.library.vectors
        if passage_vectors is None:
            return 0
        return sum(len(rows) for _, _, rows in _pending_articles(self._current, passage_vectors))

    def close(self) -> None:
        """Stop a merge under way (the index stays as it was before it) and write out the
        passages' vectors."""
        with self._merger_lock:
            merger, self._merger, self._closed = self._merger, None, True
        if merger is not None and merger.poll() is None:
            merger.kill()
            merger.wait()
        if self.library.vectors is not None:
            self.library.vectors.flush()

    # --- for checks against rank_bm25 ---------------------------------------------------------

    def indexed_terms(self) -> Iterator[list[str]]:
        """Every live passage's index terms, segment by segment, in passage order: what the
        BM25Okapi part of the score sees."""
        for segment in self._current.segments:
            for number in np.flatnonzero(segment.live_articles).tolist():
                article, passages = segment.article(number)
                yield from parsing.article_terms(article, passages, self.analyzer).passage_terms()

    def passage_position(self, ranked: Ranked) -> int:
        """Where a ranked passage comes in `indexed_terms`."""
        segments = self._current.segments
        before = sum(int(s.live_passages.sum()) for s in segments[: ranked.segment])
        return before + int(segments[ranked.segment].live_passages[: ranked.passage].sum())

    @property
    def _current(self) -> store.State:
        state = self._state
        assert state is not None, "IndexKeeper.refresh() has not run"
        return state


def _pending_articles(
    state: store.State, passage_vectors: vectors.Vectors
) -> list[tuple[store.Segment, int, np.ndarray]]:
    """(segment, article number, its passages without a vector) for every live article that
    has any, newest first (ties by article id, as the index orders them)."""
    found = []
    for segment in state.segments:
        start = segment.arrays["article_passage_start"]
        everything = np.arange(segment.n_passages)
        pending = passage_vectors.pending(segment.name, segment.n_passages, everything)
        pending &= segment.live_passages
        for number in np.unique(segment.arrays["passage_article"][pending]).tolist():
            rows = np.flatnonzero(pending[start[number] : start[number + 1]]) + start[number]
            published = int(segment.arrays["article_published_ms"][number])
            key = int(segment.arrays["article_key"][number])
            found.append((-published, key, segment, number, rows))
    found.sort(key=lambda item: item[:2])
    return [(segment, number, rows) for _, _, segment, number, rows in found]
