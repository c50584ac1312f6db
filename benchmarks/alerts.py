"""Topic alerts' cost: 10,000 followed topics against a feed-sized refresh (20 articles).

For the VOA corpus (62k passages) and a corpus of --passages made by
../shared/bench/make_big_corpus.py (1,000,000 by default), in one process each:
  follow      Library.read_topic per topic (what /follow costs, once a topic)
  load        Topic.loads of the stored topics (what every refresh reads back)
  match       Library.match_topics(10,000 topics, the 20 new articles' ids): the inverted
              match, the judgement of the topics it finds, the best passage of each pair;
              median of 3
  pairs       (topic, article) pairs judged, and the passages that would be pushed
The topics are 6-14 characters cut from the corpus's own passages (as benchmarks.scale's
queries) and every people's question of ../shared/datasets/newsqa-voa; the 20 new articles are
copies of the same 20 VOA articles under new URLs, dated after everything (benchmarks.scale's
new_articles), added to each corpus by one refresh: the same work against archives of two
sizes. The meaning stage is left out (the new passages' vectors
are the background embedding's, whatever follows them): terms and characters rank the
passages.

usage: python -m benchmarks.alerts [--shared ../shared] [--topics 10000] [--passages 1000000]
       [--skip-big] [--big-dir DIR] [--keep-big DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from benchmarks import ROOT, build_index, reporter, workers
from benchmarks.scale import make_big_corpus, new_articles, sample_queries
from retrieval.progress import Reporter, task

NEW_ARTICLES = 20
RUNS = 3


def people_questions(shared: Path) -> list[str]:
    folder = shared / "datasets" / "newsqa-voa"
    return [
        json.loads(line)["q"]
        for name in ("dev.jsonl", "train.jsonl")
        for line in (folder / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def arrivals(voa: Path, work: Path) -> list[Path]:
    """The 20 new articles every corpus gets: copies of VOA articles under new URLs."""
    folder = work / "arrivals"
    folder.mkdir()
    for source in sorted(voa.glob("*.txt"))[:NEW_ARTICLES]:
        shutil.copy(source, folder / source.name)
    return new_articles(folder, NEW_ARTICLES, 0)


def measure(
    name: str, seeds: Path, work: Path, texts: list[str], new: list[Path], progress: Reporter
) -> str:
    """One corpus's row: build, follow the topics, add the new articles, match them."""
    from retrieval import IndexKeeper, Topic  # the engine loads once the corpus is there

    index = work / f"index-{seeds.name}"
    build_index(seeds, index)
    keeper = IndexKeeper.open(seeds, index_dir=index, workers=workers(progress))
    library = keeper.library
    passages = library.stats().passages
    started = time.perf_counter()
    with task(progress, f"{name}: following", len(texts), "topics") as advance:
        stored = []
        for text in texts:
            stored.append(library.read_topic(text).dumps())
            advance(1)
    follow = (time.perf_counter() - started) / len(texts)
    started = time.perf_counter()
    topics = [Topic.loads(line) for line in stored]
    load = time.perf_counter() - started
    known = {ref.id for ref in library.article_refs()}
    for path in new:
        shutil.copy(path, seeds / path.name)
    keeper.refresh()
    new_ids = [ref.id for ref in library.article_refs() if ref.id not in known]
    assert len(new_ids) == NEW_ARTICLES, len(new_ids)
    times = []
    with task(progress, f"{name}: matching", RUNS, "runs") as advance:
        for _ in range(RUNS):
            started = time.perf_counter()
            matches = library.match_topics(topics, new_ids)
            times.append(time.perf_counter() - started)
            advance(1)
    answered = len({m.topic for m in matches})
    keeper.close()
    return (
        f"| {name} | {passages:,} | {len(topics):,} | {follow * 1000:.1f} ms | {load:.2f} s "
        f"| {statistics.median(times):.2f} s ({min(times):.2f}–{max(times):.2f}) "
        f"| {len(matches):,} passages for {answered:,} topics |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--topics", type=int, default=10_000)
    parser.add_argument("--passages", type=int, default=1_000_000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--big-dir", type=Path, help="an existing big corpus to copy and reuse")
    parser.add_argument("--keep-big", type=Path, help="keep the big corpus made here, to reuse")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    progress = reporter(args.quiet)
    shared = args.shared.resolve()
    work = Path(tempfile.mkdtemp(prefix="alerts-"))
    try:
        with tarfile.open(shared / "corpus" / "voa-zh-2020.tar.xz") as tar:
            tar.extractall(work, filter="data")
        voa = work / "voa-zh-2020"
        people = people_questions(shared)
        texts = people + sample_queries(voa, max(args.topics - len(people), 0))
        corpora = [("VOA 2020 corpus", voa)]
        if not args.skip_big:
            big = work / "big"
            if args.big_dir is not None:  # copied: the 20 new articles are written into it
                shutil.copytree(args.big_dir, big)
            else:
                make_big_corpus(shared, big, args.passages)
                if args.keep_big is not None:
                    shutil.copytree(big, args.keep_big)
            corpora.append(("synthetic (make_big_corpus.py)", big))
        new = arrivals(voa, work)
        rows = [
            measure(name, seeds, work, texts[: args.topics], new, progress)
            for name, seeds in corpora
        ]
        print(f"{os.cpu_count()} cores, Python {sys.version.split()[0]}\n")
        print("| corpus | passages | topics | follow (each) | load | match 20 new | pushed |")
        print("|---|---|---|---|---|---|---|")
        for row in rows:
            print(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
