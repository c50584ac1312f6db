"""The passages' vectors beside the index, one file per segment and model: the one module that
names these files, writes them and reads them back.

`seg-<name>/vectors-<model>.npy` holds a float16 row per passage of the segment, NaN until it
is embedded, each sealed by the CRC-32 of its numbers in two more columns. The keeper embeds
every passage ahead of questions (newest articles first; a restart goes on where it stopped),
a search that meets a passage not embedded yet embeds it and writes its row, and a merge
carries the rows of its sources over. A row is used only when its seal matches and it is a
unit vector: anything else (a torn write, a flipped bit, a planted row) is embedded again, and
a file that cannot be read is made anew, with one warning. It is a cache: losing it costs
time, never an answer.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from retrieval.question.meaning import Meaning

# seg-<name>/vectors-<model key>.npy, and what a process creating one writes first
FILE = re.compile(r"vectors-([0-9a-f]{12})\.npy\Z")
TEMPORARY = re.compile(r"vectors-[0-9a-f]{12}\.npy\.(\d+)\.tmp\Z")
# What versions before these files wrote at the top of the index directory: removed.
OLD_CACHE = re.compile(r"meaning(?:\.npz|-\d+\.tmp)\Z")
# how far a float32 matrix product's cosine can be from the exact one, and then some
NEAR_TOLERANCE = 1e-4
UNIT_TOLERANCE = 0.02  # |norm - 1| of a usable row (float16 rounding is about 0.001)

log = logging.getLogger(__name__)


class SegmentPassages(Protocol):
    """What the vectors need of a served segment (store.Segment)."""

    @property
    def name(self) -> str: ...
    @property
    def n_passages(self) -> int: ...
    @property
    def live_passages(self) -> np.ndarray: ...


def model_key(model_name: str) -> str:
    return hashlib.sha1(model_name.encode()).hexdigest()[:12]


SEAL = 2  # the columns after a row's numbers: its CRC-32, as two 16-bit halves


def seal(row: np.ndarray) -> np.ndarray:
    """A row as stored: float16 numbers, then their CRC-32."""
    numbers = np.asarray(row, dtype=np.float16)
    crc = zlib.crc32(numbers.tobytes())
    halves = np.array([crc & 0xFFFF, crc >> 16], dtype=np.uint16).view(np.float16)
    return np.concatenate([numbers, halves])


def usable(stored: np.ndarray) -> np.ndarray:
    """Which stored rows hold an embedded vector: sealed, finite, unit (a pending row is NaN)."""
    stored = np.asarray(stored, dtype=np.float16).reshape(len(stored), -1)
    numbers = stored[:, :-SEAL]
    halves = stored[:, -SEAL:].view(np.uint16).astype(np.uint32)
    sealed = np.fromiter(
        (zlib.crc32(row.tobytes()) for row in numbers), np.uint32, len(numbers)
    ) == (halves[:, 0] | (halves[:, 1] << 16))
    as_float = numbers.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        norms = np.sqrt((as_float * as_float).sum(axis=1))
    return sealed & np.isfinite(norms) & (np.abs(norms - 1.0) <= UNIT_TOLERANCE)


class Vectors:
    """Every segment's passage vectors for one model of meaning: read, filled in, created.
    Thread-safe; segments without a folder (an index that could not be saved) are embedded
    on demand and kept only in the model's own cache."""

    def __init__(self, meaning: Meaning, index_dir: Path) -> None:
        self.meaning = meaning
        self.index_dir = index_dir
        self.key = model_key(meaning.name)
        self._files: dict[str, np.memmap | None] = {}  # segment name → its rows (None: none)
        # segment name → which of its rows are usable, and (once every live passage of the
        # archive is) its rows as float32: what `nearest` reads, kept up to date by writes
        self._usable: dict[str, np.ndarray] = {}
        self._float_rows: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def path(self, segment: str) -> Path:
        return self.index_dir / f"seg-{segment}" / f"vectors-{self.key}.npy"

    def rows(
        self,
        wanted: Sequence[tuple[str, int, int, str]],
        *,
        background: bool = False,
    ) -> np.ndarray:
        """The rows of (segment name, its passage count, passage number, text as the model
        reads it), in order, as float32; the ones not embedded yet are embedded now (in the
        `background`, after any search under way) and written to their segment's file."""
        out: list[np.ndarray | None] = []
        missing: list[int] = []
        for i, (segment, n_passages, passage, _) in enumerate(wanted):
            stored = self._file(segment, n_passages)
            row = None if stored is None else np.array(stored[passage])
            if row is None or not usable(row[None, :])[0]:
                missing.append(i)
                out.append(None)
            else:
                out.append(row[:-SEAL].astype(np.float32))
        if missing:
            texts = [wanted[i][3] for i in missing]
            fresh = self.meaning.passages(texts, background=background)
            for i, row in zip(missing, fresh, strict=True):
                out[i] = row
                segment, n_passages, passage, _ = wanted[i]
                self._write(segment, n_passages, passage, row)
        return np.array(out, dtype=np.float32).reshape(len(wanted), -1)

    def pending(self, segment: str, n_passages: int, passages: np.ndarray) -> np.ndarray:
        """Which of these passages of a segment have no usable row yet."""
        stored = self._file(segment, n_passages)
        if stored is None or not passages.size:
            return np.ones(passages.shape[0], bool)
        return ~usable(stored[passages])

    def keep_only(self, segments: Sequence[str]) -> None:
        """Close the files of segments no longer served (merged away, or emptied)."""
        with self._lock:
            for name in set(self._files) - set(segments):
                del self._files[name]
                self._usable.pop(name, None)
                self._float_rows.pop(name, None)

    def nearest(
        self, question: np.ndarray, k: int, segments: Sequence[SegmentPassages]
    ) -> list[tuple[float, int, int]]:
        """The k live passages whose vectors are nearest `question` (a unit vector), as
        (cosine, position in `segments`, passage number), nearest first, and any tied with the
        k-th, over the live passages of every segment; exact. None
        until every live passage is embedded, so that a ranking never depends on how far
        embedding has got (or on a damaged file)."""
        if k <= 0 or not self.complete(segments):
            return []
        near: list[tuple[float, int, int]] = []
        for i, served in enumerate(segments):
            segment, n_passages, live = served.name, served.n_passages, served.live_passages
            if not n_passages:
                continue
            # numpy's own loop, not BLAS: OpenBLAS's threads, spinning idle after each product,
            # took the cores from the model's engine (the bot answered a third fewer questions
            # a second under load); one core scans 62k rows in about 9 ms all the same
            by_passage = np.einsum("ij,j->i", self._rows_as_float(segment, n_passages), question)
            by_passage[~live] = -np.inf
            k_th = by_passage[np.argpartition(-by_passage, min(k, n_passages) - 1)[:k]].min()
            if not np.isfinite(k_th):  # fewer than k live: all of them (if any)
                finite = by_passage[np.isfinite(by_passage)]
                if not finite.size:
                    continue
                k_th = finite.min()
            # A product's last bits depend on how the rows are laid out (a merge moves them):
            # those near the k-th are scored again exactly, so that a merge never changes a
            # ranking
            close = np.flatnonzero(by_passage >= k_th - NEAR_TOLERANCE)
            near += [(float(by_passage[p]), i, int(p)) for p in close if np.isfinite(by_passage[p])]
        if not near:
            return []
        k_th = sorted(score for score, _, _ in near)[-min(k, len(near))]
        exact = [
            (self._cosine(segments[i].name, p, question), i, p)
            for score, i, p in near
            if score >= k_th - NEAR_TOLERANCE
        ]
        exact.sort(key=lambda item: -item[0])
        cut = exact[min(k, len(exact)) - 1][0]
        return [item for item in exact if item[0] >= cut]

    def _cosine(self, segment: str, passage: int, question: np.ndarray) -> float:
        row = self._float_rows[segment][passage].astype(np.float64)
        return math.fsum(row * question.astype(np.float64))  # products of float16s and
        # float32s are exact in float64, and fsum rounds once: the same wherever the row is

    def complete(self, segments: Sequence[SegmentPassages]) -> bool:
        """Whether every live passage of these segments has a usable row."""
        for served in segments:
            if not served.n_passages:
                continue
            ok = self._usable_rows(served.name, served.n_passages)
            if ok is None or np.any(served.live_passages & ~ok):
                return False
        return True

    def prepare(self, segments: Sequence[SegmentPassages]) -> None:
        """Read the rows `nearest` compares with, if every live passage is embedded."""
        if self.complete(segments):
            for served in segments:
                if served.n_passages:
                    self._rows_as_float(served.name, served.n_passages)

    def _usable_rows(self, segment: str, n_passages: int) -> np.ndarray | None:
        stored = self._file(segment, n_passages)
        if stored is None:
            return None
        with self._lock:
            if segment not in self._usable:
                self._usable[segment] = usable(stored)
            return self._usable[segment]

    def _rows_as_float(self, segment: str, n_passages: int) -> np.ndarray:
        stored = self._file(segment, n_passages)
        with self._lock:
            if segment not in self._float_rows:
                rows = np.asarray(stored[:, :-SEAL], dtype=np.float32)
                rows[~self._usable[segment]] = 0.0
                self._float_rows[segment] = rows
            return self._float_rows[segment]

    def flush(self) -> None:
        with self._lock:
            for stored in self._files.values():
                if stored is not None:
                    with contextlib.suppress(OSError, ValueError):
                        stored.flush()

    def _file(self, segment: str, n_passages: int) -> np.memmap | None:
        with self._lock:
            if segment not in self._files:
                self._files[segment] = self._open(segment, n_passages)
            return self._files[segment]

    def _open(self, segment: str, n_passages: int) -> np.memmap | None:
        path = self.path(segment)
        if not path.exists():
            return None
        try:
            stored = np.load(path, mmap_mode="r+", allow_pickle=False)
            if (
                stored.dtype != np.float16
                or stored.ndim != 2
                or stored.shape[0] != n_passages
                or stored.shape[1] <= SEAL
            ):
                raise ValueError(f"shape {stored.shape} {stored.dtype}")
            return stored
        except Exception as exc:  # a damaged header raises anything (ValueError, TokenError…)
            log.warning("passage vectors %s are unreadable (%s): embedding them again", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def _write(self, segment: str, n_passages: int, passage: int, row: np.ndarray) -> None:
        with self._lock:
            stored = self._files.get(segment)
            if stored is None:
                width = row.shape[0] + SEAL
                stored = self._files[segment] = self._create(segment, n_passages, width)
            if stored is not None and stored.shape[1] == row.shape[0] + SEAL:
                stored[passage] = seal(row)
                if segment in self._usable:
                    self._usable[segment][passage] = True
                if segment in self._float_rows:
                    self._float_rows[segment][passage] = row.astype(np.float16)  # as stored

    def _create(self, segment: str, n_passages: int, width: int) -> np.memmap | None:
        """A file of NaN rows for the segment (None: its folder is gone or not writable)."""
        path = self.path(segment)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        try:
            made = np.lib.format.open_memmap(
                temporary, mode="w+", dtype=np.float16, shape=(n_passages, width)
            )
            made[:] = np.nan
            made.flush()
            del made
            os.replace(temporary, path)
            return np.load(path, mmap_mode="r+", allow_pickle=False)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            if path.parent.is_dir():
                log.warning("cannot keep passage vectors in %s (%s)", path.parent, exc)
            return None


def disk_bytes(index_dir: Path) -> int:
    """What the vectors of every model take on disk."""
    return sum(p.stat().st_size for p in index_dir.glob("seg-*/vectors-*.npy"))


def carry_over(index_dir: Path, sources: Sequence[tuple[str, np.ndarray]], folder: Path) -> None:
    """Write into a merged segment's `folder` the rows its sources hold, for every model:
    `sources` are (segment name, its passage numbers in the order the merge kept them)."""
    keys = {
        m.group(1)
        for name, _ in sources
        for p in (index_dir / f"seg-{name}").glob("vectors-*.npy")
        if (m := FILE.match(p.name))
    }
    total = sum(int(rows.size) for _, rows in sources)
    for key in sorted(keys):
        parts = []
        for name, rows in sources:
            path = index_dir / f"seg-{name}" / f"vectors-{key}.npy"
            try:
                stored = np.load(path, mmap_mode="r", allow_pickle=False)
                parts.append(np.asarray(stored[rows], dtype=np.float16))
            except Exception:  # missing or unreadable: those rows are embedded again
                parts.append(None)
        dim = next((p.shape[1] for p in parts if p is not None and p.ndim == 2), None)
        if dim is None:
            continue
        merged = np.full((total, dim), np.nan, dtype=np.float16)
        start = 0
        for part, (_, rows) in zip(parts, sources, strict=True):
            if part is not None and part.shape == (rows.size, dim):
                merged[start : start + rows.size] = part
            start += rows.size
        np.save(folder / f"vectors-{key}.npy", merged, allow_pickle=False)
