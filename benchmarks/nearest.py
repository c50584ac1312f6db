"""The nearest passages by meaning over a whole embedded archive: what `Vectors.nearest` costs a
question, and the memory its float32 copy of the rows takes, at growing sizes.

The rows are random unit vectors of the shipped model's width, sealed and stored as the keeper
stores them (one segment file of float16 rows); the question is another random unit vector.
The first search reads every row into the float32 copy (reported apart); the others are timed,
median of --repeat. Exact search scores every row, so its cost grows with the archive: this
says by how much.

usage: python -m benchmarks.nearest [--sizes 61986,250000,1000000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from retrieval.index import vectors
from retrieval.question.meaning import Meaning
from retrieval.question.ranking import SHIPPED

WIDTH = 384  # the shipped model's (multilingual-e5-small)


@dataclass(frozen=True)
class _Segment:
    """A segment as the vectors see it (vectors.SegmentPassages)."""

    name: str
    n_passages: int
    live_passages: np.ndarray


class _Unused:
    """The model is never asked: every row is stored already."""

    def query(self, texts: str | list[str]) -> np.ndarray:
        raise AssertionError("not asked")

    passage = query


def stored_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random unit rows, float16 and sealed as `vectors.seal` seals them."""
    rows = rng.standard_normal((n, WIDTH), dtype=np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    numbers = rows.astype(np.float16)
    crcs = np.fromiter((zlib.crc32(r.tobytes()) for r in numbers), np.uint32, n)
    halves = np.stack([crcs & 0xFFFF, crcs >> 16], axis=1).astype(np.uint16).view(np.float16)
    return np.concatenate([numbers, halves], axis=1)


def measure(n: int, repeat: int, folder: Path) -> tuple[float, float, float]:
    """(first search s, median later search s, float32 copy MB) over n stored rows."""
    rng = np.random.default_rng(n)
    meaning = Meaning(_Unused(), "benchmark")
    passage_vectors = vectors.Vectors(meaning, folder)
    name = f"n{n}"
    path = passage_vectors.path(name)
    path.parent.mkdir(parents=True)
    np.save(path, stored_rows(n, rng), allow_pickle=False)
    segments = [_Segment(name, n, np.ones(n, bool))]
    k = SHIPPED.dense_candidates
    question = rng.standard_normal(WIDTH).astype(np.float32)
    question /= np.linalg.norm(question)
    started = time.perf_counter()
    assert len(passage_vectors.nearest(question, k, segments)) >= k
    first = time.perf_counter() - started
    seconds = []
    for _ in range(repeat):
        question = rng.standard_normal(WIDTH).astype(np.float32)
        question /= np.linalg.norm(question)
        started = time.perf_counter()
        passage_vectors.nearest(question, k, segments)
        seconds.append(time.perf_counter() - started)
    copy_mb = n * WIDTH * 4 / 2**20
    return first, statistics.median(seconds), copy_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="61986,250000,1000000", help="passages, comma-separated")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"the nearest {SHIPPED.dense_candidates} of n passages, {WIDTH} numbers each\n")
    print("| passages | first search (reads the rows) | a search, median | float32 copy |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="nearest-") as work:
        for n in sizes:
            first, median, copy_mb = measure(n, args.repeat, Path(work) / f"n{n}")
            print(
                f"| {n:,} | {first * 1000:,.0f} ms | {median * 1000:,.1f} ms | {copy_mb:,.0f} MB |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
