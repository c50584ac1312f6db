"""Benchmarks, run from the repository root as `python -m benchmarks.NAME`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
