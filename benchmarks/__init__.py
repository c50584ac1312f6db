"""Benchmarks, run from the repository root as `python -m benchmarks.NAME`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from retrieval import progress

ROOT = Path(__file__).resolve().parent.parent


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
