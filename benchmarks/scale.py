"""Retrieval at scale: build, warm start, query latency and memory, against rank_bm25.

For the VOA corpus (65k paragraphs) and a 1,000,000-passage corpus made by
../shared/bench/make_big_corpus.py, it measures, each in a fresh process:
  cold build   `python -m retrieval stats` on an empty index directory
  warm start   `python -m retrieval search` with the saved index, until its first answer
  queries      p50 / p99 of Library.search(k=10) over sampled queries, in-process
  peak RSS     of the largest process of the build, and of the query process
and, on the VOA corpus, rank_bm25.BM25Okapi.get_scores + top 10 on the same token lists,
as a ratio (checking that both rank the same passages first).

usage: python -m benchmarks.scale [--shared ../shared] [--passages 1000000] [--skip-big]
       [--big-dir DIR]  (reuse an existing big corpus directory)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_measured(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command; wall seconds, peak RSS in MB of its largest process, stdout."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read() if proc.stdout else b""
        # wait4's usage covers this child and the children it reaped (the build's workers);
        # ru_maxrss is then the largest of them, in KiB
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed: {err.read().decode()[-800:]}")
    return seconds, usage.ru_maxrss / 1024, out.decode()


def sample_queries(seeds: Path, n: int, seed: int = 1) -> list[str]:
    """Queries cut from the corpus's own sentences: 6-14 characters from a random passage."""
    rng = random.Random(seed)
    files = sorted(seeds.glob("*.txt"))
    queries = []
    while len(queries) < n:
        text = files[rng.randrange(len(files))].read_text(encoding="utf-8")
        paragraphs = re.findall(r"<p>([^<]{20,})</p>", text)
        if paragraphs:
            p = rng.choice(paragraphs)
            start = rng.randrange(0, len(p) - 14)
            queries.append(p[start : start + rng.randint(6, 14)])
    return queries


def child_queries(seeds: str, index: str, queries_file: str, reference: bool) -> None:
    """In a fresh process: query latency, or (reference) rank_bm25's beside ours, as JSON."""
    import numpy as np

    from retrieval import Library

    queries = json.loads(Path(queries_file).read_text(encoding="utf-8"))
    library = Library.from_dir(seeds, index)

    def engine(q: str) -> list[float]:
        """Analysis, scoring and top 10 alone: the part rank_bm25 does."""
        return [r.score for r in library.rank(q, k=10)]

    def timed(fn, items) -> list[float]:
        fn(items[0])  # first touch of the memory-mapped arrays
        out = []
        for item in items:
            t = time.perf_counter()
            fn(item)
            out.append(1000 * (time.perf_counter() - t))
        return out

    if not reference:
        search = timed(lambda q: library.search(q, k=10), queries)
        result = {
            "p50_ms": float(np.percentile(search, 50)),
            "p99_ms": float(np.percentile(search, 99)),
            "engine_p50_ms": float(np.percentile(timed(engine, queries), 50)),
        }
        print(json.dumps(result))
        return

    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi(list(library.indexed_terms()))  # the same token lists the index holds
    sample = queries[:50]

    def reference_top(q: str) -> np.ndarray:
        scores = bm25.get_scores(library.query_terms(q))
        return scores[np.argsort(-scores, kind="stable")[:10]]

    ours = timed(engine, sample)
    theirs = timed(reference_top, sample)
    same = sum(
        np.allclose(engine(q), reference_top(q)[: len(engine(q))], atol=1e-9) for q in sample
    )
    print(
        json.dumps(
            {
                "engine_p50_ms": float(np.median(ours)),
                "rank_bm25_p50_ms": float(np.median(theirs)),
                "same_scores": f"{same}/{len(sample)}",
            }
        )
    )


def measure(name: str, seeds: Path, work: Path, n_queries: int, reference: bool) -> str:
    slug = re.sub(r"\W+", "-", name.lower())
    index = work / f"index-{slug}"
    shutil.rmtree(index, ignore_errors=True)
    cli = [sys.executable, "-m", "retrieval"]
    build_s, build_rss, stats = run_measured(
        [*cli, "stats", "--seeds", str(seeds), "--index-dir", str(index)]
    )
    passages = re.search(r"passages: (\d+)", stats).group(1)
    warm = []
    for _ in range(3):
        seconds, _, _ = run_measured(
            [
                *cli,
                "search",
                "--seeds",
                str(seeds),
                "--index-dir",
                str(index),
                "-k",
                "5",
                "美国 总统 选举",
            ]
        )
        warm.append(seconds)
    queries_file = work / f"queries-{slug}.json"
    queries_file.write_text(json.dumps(sample_queries(seeds, n_queries)), encoding="utf-8")
    child = [sys.executable, __file__, "--child", str(seeds), str(index), str(queries_file)]
    _, query_rss, out = run_measured(child)
    q = json.loads(out.strip().splitlines()[-1])
    row = (
        f"| {name} | {int(passages):,} | {build_s:.1f} s | {sorted(warm)[1]:.2f} s | "
        f"{q['p50_ms']:.2f} ms | {q['p99_ms']:.2f} ms | {q['engine_p50_ms']:.2f} ms | "
        f"{build_rss:,.0f} MB | {query_rss:,.0f} MB |"
    )
    if reference:
        _, _, out = run_measured([*child, "--reference"])
        r = json.loads(out.strip().splitlines()[-1])
        ratio = r["rank_bm25_p50_ms"] / r["engine_p50_ms"]
        row += (
            f"\n\nrank_bm25 on the same {int(passages):,} passages, same token lists, in one "
            f"process: p50 {r['rank_bm25_p50_ms']:.0f} ms a query against "
            f"{r['engine_p50_ms']:.2f} ms here, {ratio:,.0f}x; top-10 scores equal on "
            f"{r['same_scores']} queries"
        )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--big-dir", type=Path, help="an existing big corpus to reuse")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_queries(*args.child, reference=args.reference)
        return 0
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    try:
        with tarfile.open(args.shared / "corpus" / "voa-zh-2020.tar.xz") as tar:
            tar.extractall(work, filter="data")
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
        print(
            "| corpus | passages | cold build | warm start | search p50 | search p99 "
            "| scoring p50 | peak RSS build | peak RSS queries |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        rows = [
            measure("VOA 2020 corpus", work / "voa-zh-2020", work, args.queries, reference=True)
        ]
        print(rows[0].split("\n")[0], flush=True)
        if not args.skip_big:
            big = args.big_dir
            if big is None:
                big = work / "big"
                subprocess.run(
                    [
                        sys.executable,
                        str(args.shared / "bench" / "make_big_corpus.py"),
                        str(args.shared / "corpus" / "voa-zh-2020.tar.xz"),
                        str(big),
                        "--passages",
                        str(args.passages),
                    ],
                    check=True,
                    capture_output=True,
                )
            rows.append(
                measure("synthetic (make_big_corpus.py)", big, work, args.queries, reference=False)
            )
            print(rows[1], flush=True)
        print(rows[0].split("\n", 1)[1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
