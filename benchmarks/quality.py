"""Retrieval quality: CMRC 2018 dev questions, gold paragraphs hidden among the VOA corpus.

Follows the recipe in ../shared/DESIGN.md section 3 and scores `python -m retrieval search`
with ../shared/bench/qa_eval.py. Besides the questions as written (simplified), it asks the
same questions in Taiwan's traditional script and vocabulary (OpenCC s2twp) and with
full-width letters and digits, and runs the naive pipeline as the yardstick.

With --work DIR the pool and its index are kept there and reused: after
`python -m retrieval embed --seeds DIR/pool --index-dir DIR/index` a run measures the engine
with every passage embedded (the passages nearest by meaning join its rankings).

usage: python -m benchmarks.quality [--shared ../shared] [--limit N] [--no-baseline]
       [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import opencc

from benchmarks import ROOT, build_index, reporter, scorer_lines
from retrieval.progress import task

RETRIEVAL = [sys.executable, "-m", "retrieval"]


def full_width(text: str) -> str:
    """ASCII letters and digits as their full-width forms (what some IMEs type)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def evaluate(shared: Path, questions: Path, cmd: str) -> str:
    return scorer_lines(shared, "qa_eval.py", str(questions), "--cmd", cmd)[-1]


def row(name: str, line: str) -> str:
    values = dict(re.findall(r"(\S+)=(\S+)", line))
    cells = [values[k] for k in ("R@1", "R@3", "R@10", "MRR@10", "n", "seconds")]
    return f"| {name} | " + " | ".join(cells) + " |"


VARIANTS = ("simplified (as written)", "traditional, Taiwan wording (s2twp)", "full-width")


def prepare(shared: Path, work: Path, limit: int = 0) -> tuple[Path, dict[str, Path]]:
    """The CMRC dev paragraphs as articles among the VOA corpus (the pool), and the questions
    in each variant: (pool directory, variant name → questions file). A pool already in
    `work` is kept."""
    pool = work / "pool"
    if not pool.is_dir():
        _make_pool(shared, work)
    questions = [json.loads(line) for line in (work / "q.jsonl").open(encoding="utf-8")]
    if limit:
        questions = questions[:limit]
    to_tw = opencc.OpenCC("s2twp")
    convert = dict(zip(VARIANTS, (lambda q: q, to_tw.convert, full_width), strict=True))
    files = {}
    for i, name in enumerate(VARIANTS):
        files[name] = work / f"q{i}.jsonl"
        with files[name].open("w", encoding="utf-8") as out:
            for q in questions:
                out.write(json.dumps({**q, "q": convert[name](q["q"])}, ensure_ascii=False) + "\n")
    return pool, files


def _make_pool(shared: Path, work: Path) -> None:
    with tarfile.open(shared / "corpus" / "voa-zh-2020.tar.xz") as tar:
        tar.extractall(work, filter="data")
    subprocess.run(
        [
            sys.executable,
            str(shared / "bench" / "squad2seeds.py"),
            str(shared / "datasets" / "cmrc2018" / "cmrc2018_dev.json"),
            str(work / "cmrc"),
            str(work / "q.jsonl"),
            "--prefix",
            "cmrc",
        ],
        check=True,
        capture_output=True,
    )
    building = work / "pool.tmp"  # a pool is whole or absent
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    for path in [*(work / "voa-zh-2020").glob("*.txt"), *(work / "cmrc").glob("*.txt")]:
        shutil.copy(path, building / path.name)
    building.rename(work / "pool")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--limit", type=int, default=0, help="only the first N questions")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive pipeline")
    parser.add_argument("--work", type=Path, help="keep the pool and its index here (reused)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    progress = reporter(args.quiet)
    shared = args.shared.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="quality-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        pool, files = prepare(shared, work, args.limit)
        index = work / "index"
        started = time.perf_counter()
        build_index(pool, index)
        index_seconds = time.perf_counter() - started
        ours = (
            f"{sys.executable} -m retrieval search --seeds {pool} --index-dir {index} -k 10 --json"
        )
        naive = (
            f"{sys.executable} {shared / 'bench' / 'naive_search.py'} --seeds {pool} -k 10 --json"
        )

        n_passages = sum(1 for _ in pool.glob("*.txt"))
        print(
            f"CMRC 2018 dev among the VOA corpus ({n_passages} articles); "
            f"index built in {index_seconds:.1f} s\n"
        )
        print("| questions | R@1 | R@3 | R@10 | MRR@10 | n | seconds |")
        print("|---|---|---|---|---|---|---|")
        runs = [("this project", ours)] + ([] if args.no_baseline else [("naive pipeline", naive)])
        with task(progress, "scoring", len(runs) * len(files), "runs") as advance:
            for engine, cmd in runs:
                for name, path in files.items():
                    print(row(f"{engine}, {name}", evaluate(shared, path, cmd)), flush=True)
                    advance(1)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
