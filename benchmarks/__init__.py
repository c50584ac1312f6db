"""Benchmarks, run from the repository root as `python -m benchmarks.NAME`."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from retrieval import progress

ROOT = Path(__file__).resolve().parent.parent
Collected = TypeVar("Collected")


def reporter(quiet: bool = False) -> progress.Reporter:
    """Progress on stderr while a benchmark runs (its table goes to stdout): a bar at a
    terminal, else a line every few seconds; nothing with `quiet`."""
    logging.basicConfig(format="%(message)s")
    progress.show(not quiet)
    return progress.Reporter()


def workers(reporter: progress.Reporter):  # -> Workers
    """Every core, as the keeper's default, telling `reporter` how a build goes."""
    from retrieval import Workers  # the engine loads only when a benchmark needs it

    return Workers(count=os.cpu_count() or 1, progress=reporter)


def build_index(seeds: Path, index: Path) -> None:
    """`python -m retrieval stats` on `seeds` into `index`, its progress on this stderr."""
    command = ["stats", "--seeds", str(seeds), "--index-dir", str(index)]
    subprocess.run(
        [sys.executable, "-m", "retrieval", *command],
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


def collected_for_training(
    doc: str, model_file: str, collect: Callable[[Path, Path], Collected]
) -> tuple[Collected, Path]:
    """A training command's questions as `collect(shared, work)` gathers them, and the file to
    write its model to, from its arguments: --shared (../shared), --work (a folder kept for
    the next run; else a temporary one, removed) and --out (the model inside the package)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--work", type=Path, help="keep the corpus and index here (reused)")
    parser.add_argument("--out", type=Path, default=ROOT / "retrieval" / "data" / model_file)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="training-"))
    try:
        return collect(args.shared.resolve(), work), args.out
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


def scorer_lines(shared: Path, script: str, *args: str) -> list[str]:
    """What one of ../shared/bench's scorers prints, line by line, run from the repository
    root; stops the benchmark with the scorer's output if it fails or prints nothing."""
    result = subprocess.run(
        [sys.executable, str(shared / "bench" / script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise SystemExit(f"{script} failed: {result.stdout[-500:]} {result.stderr[-500:]}")
    return lines
