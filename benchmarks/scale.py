"""Retrieval at scale: build, warm start, queries and memory; a live archive's updates.

For the VOA corpus (65k paragraphs) and a 1,000,000-passage corpus made by
../shared/bench/make_big_corpus.py, it measures, each in a fresh process:
  cold build   `python -m retrieval stats` on an empty index directory, median of 3
  warm start   `python -m retrieval search` with the saved index, until its first answer
  queries      p50 / p99 of Library.search(k=10) over sampled queries, in-process
  peak RSS     of the largest process of the build, and of the query process
and, on the VOA corpus, rank_bm25.BM25Okapi.get_scores + top 10 on the same token lists,
as a ratio (checking that both rank the same passages first). Then the life of an archive
that feeds keep adding to, each step a `python -m retrieval` process on the saved index:
  20 new articles dropped in, then the same 20 deleted (`stats`): time, bytes written by
      the process (every write it makes), median of 3
  30 feed-sized updates (20 new articles each), each followed by `python -m retrieval
      merge` as the bot runs it: the segments left, the merges' time, bytes and peak memory
  queries with those segments against the single segment of the cold build, same queries
  new articles answering: in one process, from the end of the refresh that sees them to
      the first search that finds one

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
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT, reporter
from retrieval.progress import Reporter, task

# Runs the CLI in this process, then tells how many bytes the process wrote (all its write
# calls: index files, and the few lines it prints), from the kernel's own count.
CLI_WRITES = """
import atexit, re, sys
from pathlib import Path
def written():
    io = Path("/proc/self/io").read_text()
    print("WROTE", re.search(r"wchar: (\\d+)", io).group(1), file=sys.stderr)
atexit.register(written)
from retrieval import IndexKeeper
from retrieval.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run_measured(cmd: list[str]) -> tuple[float, float, str, int]:
    """Run a command; wall seconds, peak RSS in MB of its largest process, stdout, and the
    bytes it wrote (when it reports them as CLI_WRITES does; else 0)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=err)
        out = proc.stdout.read() if proc.stdout else b""
        # wait4's usage covers this child and the children it reaped (the build's workers);
        # ru_maxrss is then the largest of them, in KiB
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        errors = err.read().decode()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {errors[-800:]}")
    wrote = re.search(r"^WROTE (\d+)$", errors, re.M)
    return seconds, usage.ru_maxrss / 1024, out.decode(), int(wrote.group(1)) if wrote else 0


def cli(*args: str) -> list[str]:
    return [sys.executable, "-c", CLI_WRITES, *args]


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


def new_articles(seeds: Path, count: int, batch: int) -> list[Path]:
    """`count` new articles for the archive: copies of existing ones under new URLs, dated
    after everything in it (a feed's next items)."""
    sources = sorted(seeds.glob("*.txt"))[:count]
    made = []
    for i, source in enumerate(sources):
        text = source.read_text(encoding="utf-8")
        text = re.sub(r"\]\((\S+?)\)", rf"](\1?update={batch}-{i})", text, count=1)
        text = re.sub(r"^<!--\d+-->", f"<!--{1_900_000_000_000 + batch * 1000 + i}-->", text)
        path = seeds / f"zz-update-{batch:03d}-{i:02d}.txt"
        path.write_text(text, encoding="utf-8")
        made.append(path)
    return made


def child_queries(seeds: str, index: str, queries_file: str, mode: str) -> None:
    """In a fresh process: query latency; rank_bm25's beside ours (`reference`); or how soon
    new articles answer after the refresh that sees them (`fresh`); as JSON."""
    import numpy as np

    from retrieval import IndexKeeper

    queries = json.loads(Path(queries_file).read_text(encoding="utf-8"))
    keeper = IndexKeeper.open(seeds, index)
    library = keeper.library

    def engine(q: str) -> list[float]:
        """Analysis, scoring and top 10 alone: the part rank_bm25 does."""
        return [r.bm25 for r in library.rank(q, k=10)]

    def timed(fn, items) -> list[float]:
        fn(items[0])  # first touch of the memory-mapped arrays
        out = []
        for item in items:
            t = time.perf_counter()
            fn(item)
            out.append(1000 * (time.perf_counter() - t))
        return out

    if mode == "latency":
        search = timed(lambda q: library.search(q, k=10), queries)
        result = {
            "p50_ms": float(np.percentile(search, 50)),
            "p99_ms": float(np.percentile(search, 99)),
            "engine_p50_ms": float(np.percentile(timed(engine, queries), 50)),
            "segments": library.stats().segments,
        }
    elif mode == "fresh":
        made = new_articles(Path(seeds), 20, batch=999)
        try:
            started = time.perf_counter()
            keeper.refresh()
            refreshed = time.perf_counter()
            title = re.search(r"^\[(.*)\]\(", made[0].read_text(encoding="utf-8"), re.M)
            found = library.search(title.group(1) if title else "", k=50).hits
            answered = time.perf_counter()
            new = any("update=999-0" in h.article.url for h in found)
        finally:
            for path in made:
                path.unlink()
        keeper.refresh()
        result = {
            "refresh_s": refreshed - started,
            "answer_after_refresh_ms": 1000 * (answered - refreshed),
            "found_new": new,
        }
    else:
        from rank_bm25 import BM25Okapi

        bm25 = BM25Okapi(list(keeper.indexed_terms()))  # the same token lists the index holds
        sample = queries[:50]

        def reference_top(q: str) -> np.ndarray:
            scores = bm25.get_scores(library.query_terms(q))
            return np.sort(scores)[::-1][:10]

        def exact(q: str) -> bool:
            """Our ten passages' BM25Okapi parts are rank_bm25's scores of them."""
            scores = bm25.get_scores(library.query_terms(q))
            ranked = library.rank(q, k=10)
            return all(abs(r.bm25 - scores[keeper.passage_position(r)]) <= 1e-9 for r in ranked)

        ours = timed(engine, sample)
        theirs = timed(reference_top, sample)
        same = sum(exact(q) for q in sample)
        result = {
            "engine_p50_ms": float(np.median(ours)),
            "rank_bm25_p50_ms": float(np.median(theirs)),
            "same_scores": f"{same}/{len(sample)}",
        }
    print(json.dumps(result))


def query_child(seeds: Path, index: Path, queries_file: Path, mode: str) -> tuple[dict, float]:
    child = [sys.executable, "-m", "benchmarks.scale", "--child", str(seeds), str(index)]
    _, rss, out, _ = run_measured([*child, str(queries_file), mode])
    return json.loads(out.strip().splitlines()[-1]), rss


def measure(
    name: str, seeds: Path, work: Path, n_queries: int, reference: bool, progress: Reporter
) -> list[str]:
    """The rows of both tables for one corpus."""
    slug = re.sub(r"\W+", "-", name.lower())
    index = work / f"index-{slug}"
    library = ["--seeds", str(seeds), "--index-dir", str(index)]
    builds = []
    with task(progress, f"{name}: cold builds", 3, "builds") as advance:
        for _ in range(3):  # the median of 3 cold builds, each into an empty directory
            shutil.rmtree(index, ignore_errors=True)
            builds.append(run_measured(cli("stats", *library)))
            advance(1)
    build_s = statistics.median(b[0] for b in builds)
    build_rss = max(b[1] for b in builds)
    stats, build_written = builds[-1][2], builds[-1][3]
    passages = int(re.search(r"passages: (\d+)", stats).group(1))
    warm = [run_measured(cli("search", *library, "-k", "5", "美国 总统 选举"))[0] for _ in range(3)]
    queries_file = work / f"queries-{slug}.json"
    queries_file.write_text(json.dumps(sample_queries(seeds, n_queries)), encoding="utf-8")
    single, query_rss = query_child(seeds, index, queries_file, "latency")
    rows = [
        f"| {name} | {passages:,} | {build_s:.1f} s | {build_written / 1e6:,.0f} MB | "
        f"{statistics.median(warm):.2f} s | {single['p50_ms']:.2f} ms | "
        f"{single['p99_ms']:.2f} ms | {single['engine_p50_ms']:.2f} ms | "
        f"{build_rss:,.0f} MB | {query_rss:,.0f} MB |"
    ]

    # a live archive: 20 new articles, then the same 20 deleted (median of 3)
    added, deleted = [], []
    for round_ in range(3):
        made = new_articles(seeds, 20, batch=round_)
        added.append(run_measured(cli("stats", *library)))
        for path in made:
            path.unlink()
        deleted.append(run_measured(cli("stats", *library)))
    # a realistic history: 30 feed-sized updates, each followed by the bot's merge
    merges = []
    with task(progress, f"{name}: feed-sized updates", 30, "updates") as advance:
        for batch in range(100, 130):
            new_articles(seeds, 20, batch=batch)
            run_measured(cli("stats", *library))
            merges.append(run_measured(cli("merge", *library)))
            advance(1)
    after, history_rss = query_child(seeds, index, queries_file, "latency")
    warm_after = [
        run_measured(cli("search", *library, "-k", "5", "美国 总统 选举"))[0] for _ in range(3)
    ]
    fresh, _ = query_child(seeds, index, queries_file, "fresh")
    for path in seeds.glob("zz-update-*.txt"):
        path.unlink()
    run_measured(cli("stats", *library))

    def step(runs: list[tuple[float, float, str, int]]) -> str:
        seconds = statistics.median(r[0] for r in runs)
        written = statistics.median(r[3] for r in runs) / 1e6
        return f"{seconds:.2f} s, {written:,.1f} MB"

    slowest_merge = max(merges, key=lambda r: r[0])
    rows.append(
        f"| {name} | {step(added)} | {step(deleted)} | {after['segments']} | "
        f"{slowest_merge[0]:.1f} s, {slowest_merge[3] / 1e6:,.0f} MB, "
        f"{max(r[1] for r in merges):,.0f} MB RSS | "
        f"{after['p50_ms']:.2f} ms ({after['p50_ms'] / single['p50_ms']:.2f}x) | "
        f"{statistics.median(warm_after):.2f} s | {fresh['answer_after_refresh_ms']:.1f} ms |"
        + ("" if fresh["found_new"] else " (new article not found!)")
        + f" {history_rss:,.0f} MB |"
    )
    if reference:
        r, _ = query_child(seeds, index, queries_file, "reference")
        ratio = r["rank_bm25_p50_ms"] / r["engine_p50_ms"]
        rows.append(
            f"rank_bm25 on the same {passages:,} passages, same token lists, in one "
            f"process: p50 {r['rank_bm25_p50_ms']:.0f} ms a query against "
            f"{r['engine_p50_ms']:.2f} ms here (article evidence and cues included), "
            f"{ratio:,.0f}x; the BM25Okapi part of our top 10 equals rank_bm25's scores on "
            f"{r['same_scores']} queries"
        )
    return rows


def make_big_corpus(shared: Path, out: Path, passages: int) -> Path:
    """A corpus of about `passages` passages made from the VOA corpus's sentences by
    ../shared/bench/make_big_corpus.py, in `out`."""
    maker = shared / "bench" / "make_big_corpus.py"
    tarball = shared / "corpus" / "voa-zh-2020.tar.xz"
    command = [sys.executable, str(maker), str(tarball), str(out), "--passages", str(passages)]
    subprocess.run(command, check=True, capture_output=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--big-dir", type=Path, help="an existing big corpus to reuse")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    if args.child:
        child_queries(*args.child)
        return 0
    progress = reporter(args.quiet)
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    try:
        with tarfile.open(args.shared / "corpus" / "voa-zh-2020.tar.xz") as tar:
            tar.extractall(work, filter="data")
        corpora = [("VOA 2020 corpus", work / "voa-zh-2020", True)]
        if not args.skip_big:
            big = args.big_dir or make_big_corpus(args.shared, work / "big", args.passages)
            corpora.append(("synthetic (make_big_corpus.py)", big, False))
        results = [
            measure(name, seeds, work, args.queries, ref, progress) for name, seeds, ref in corpora
        ]
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
        print(
            "| corpus | passages | cold build | written | warm start | search p50 | search p99 "
            "| scoring p50 | peak RSS build | peak RSS queries |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for rows in results:
            print(rows[0])
        print(
            "\n| corpus | 20 new articles | the same 20 deleted | segments after 30 updates "
            "| slowest merge | search p50 then | warm start then | new articles answer "
            "| peak RSS queries then |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for rows in results:
            print(rows[1])
        for rows in results:
            for line in rows[2:]:
                print(f"\n{line}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
