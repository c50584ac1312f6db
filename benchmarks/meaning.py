"""What the meaning stage costs a search, on the seed and the 4,216 VOA articles.

Times, in one process, the people's questions of the dev set (benchmarks.newsqa's) searched
three ways, one after the other for each question: by terms and characters alone; with
meaning, the first time it is asked (its passages are new unless an earlier question about
the same article brought them: about three questions an article); and with meaning, asked
again (all its passages cached). Also a question's embedding alone, and a passage's (new),
alone and in batches;
and the questions asked again while other passages are embedded in another thread, as the bot
does after a refresh: in the background (questions first), and as a search would.
With --embedded, the same questions on an index of the library whose every passage is
embedded, with and without the passages nearest by meaning over the whole archive joining
each search, and the same questions in English (benchmarks/data/newsqa-english-dev.jsonl,
read in the articles' words), in turn, each question's own embedding made before (so the
rows are the searches' own cost).
Asserts nothing about time. Starts without the vectors a previous run saved.

usage: python -m benchmarks.meaning [--shared ../shared] [--work DIR] [--embedded DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

from benchmarks import ROOT, newsqa, reporter, workers
from retrieval import IndexKeeper
from retrieval.index import vectors
from retrieval.progress import task
from retrieval.question.meaning import BATCH, Meaning
from retrieval.question.ranking import SHIPPED

BESIDE = 400  # passages embedded beside the questions: 200 each way, longer than the questions


def _ms(seconds: list[float]) -> str:
    return f"p50 {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--work", type=Path, help="keep the corpus and index here (reused)")
    parser.add_argument(
        "--embedded",
        type=Path,
        help="an index of the same library with every passage embedded (python -m retrieval "
        "embed --seeds WORK/voa-zh-2020 --index-dir DIR): the questions asked there too",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    progress = reporter(args.quiet)
    shared = args.shared.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="meaning-"))
    seeds = newsqa.prepare(shared, work)
    dev = newsqa.questions(newsqa.question_sets(shared)["dev"])
    questions = [q["q"] for q in dev if q["kind"] == "standalone"]
    by_terms = IndexKeeper.open(seeds, work / "index", workers=workers(progress)).library
    for path in (work / "index").glob("seg-*/*"):  # "the first time" is the first
        if vectors.FILE.match(path.name):
            path.unlink()
    meaning = Meaning.load()
    with_meaning = IndexKeeper.open(seeds, work / "index", meaning=meaning).library
    stats = by_terms.stats()
    print(f"library: {stats.articles} articles, {stats.passages} passages")
    print(f"{len(questions)} questions, k=3, meaning over the first {SHIPPED.ranked_depth}\n")

    timings: dict[str, list[float]] = {"terms": [], "first": [], "again": [], "question": []}
    with task(progress, "asking", len(questions), "questions") as advance:
        for question in questions:
            for name, library in (
                ("terms", by_terms),
                ("first", with_meaning),
                ("again", with_meaning),
            ):
                started = time.perf_counter()
                library.search(question, k=3)
                timings[name].append(time.perf_counter() - started)
            started = time.perf_counter()
            meaning.question(question)
            timings["question"].append(time.perf_counter() - started)
            advance(1)
    passages = [h.passage.text for h in by_terms.search(questions[0], k=20).hits]
    fresh = Meaning.load()
    passage_seconds = []
    for text in passages:
        started = time.perf_counter()
        fresh.passages([text])
        passage_seconds.append(time.perf_counter() - started)
    batched = Meaning.load()  # the same passages, BATCH at a time, as embedding ahead does
    batch_seconds = []
    for start in range(0, len(passages), BATCH):
        chunk = passages[start : start + BATCH]
        started = time.perf_counter()
        batched.passages(chunk)
        batch_seconds += [(time.perf_counter() - started) / len(chunk)] * len(chunk)

    # passages nobody asked about, embedded beside the questions asked again
    newest = with_meaning.latest(200)
    unasked = [f"{a.title}。{p.text}" for a in newest for p in a.paragraphs][:BESIDE]
    for background in (True, False):
        texts = unasked[: BESIDE // 2] if background else unasked[BESIDE // 2 :]
        beside = threading.Thread(
            target=meaning.passages, args=(texts,), kwargs={"background": background}
        )
        beside.start()
        key = "beside, background" if background else "beside, as a search"
        timings[key] = []
        for question in questions:
            started = time.perf_counter()
            with_meaning.search(question, k=3)
            timings[key].append(time.perf_counter() - started)
        beside.join()

    if args.embedded:
        whole = IndexKeeper.open(seeds, args.embedded, meaning=meaning)
        if whole.passages_to_embed():
            raise SystemExit(f"{args.embedded}: not every passage is embedded yet")
        whole.embed_ahead()  # embeds nothing: reads the rows the search compares with, as the bot
        without = IndexKeeper.open(
            seeds, args.embedded, meaning=meaning, ranking=replace(SHIPPED, dense_candidates=0)
        )
        # the same questions as an English reader asks them, in the same order
        english = [q["q"] for q in newsqa.questions(newsqa.question_sets(shared)["english-dev"])]
        # each question's embedding made once before: what is left is the searches' own cost
        vectors_of = {question: meaning.question(question) for question in questions + english}
        asked, meaning.question = meaning.question, vectors_of.__getitem__  # type: ignore[method-assign]
        whole.library.prepare_across()  # as the end of embedding does, in the bot
        timings["whole"], timings["whole, without"], timings["english"] = [], [], []
        for question, in_english in zip(questions, english, strict=True):
            # the engines and the languages in turn: the same noise for each
            for key, keeper, text in (
                ("whole", whole, question),
                ("whole, without", without, question),
                ("english", whole, in_english),
            ):
                started = time.perf_counter()
                keeper.library.search(text, k=3)
                timings[key].append(time.perf_counter() - started)
        meaning.question = asked  # type: ignore[method-assign]

    print("| search | time |")
    print("|---|---|")
    print(f"| terms and characters only | {_ms(timings['terms'])} |")
    print(f"| with meaning, asked the first time | {_ms(timings['first'])} |")
    print(f"| with meaning, asked again (its passages cached) | {_ms(timings['again'])} |")
    print(
        "| asked again, while other passages are embedded in the background "
        f"| {_ms(timings['beside, background'])} |"
    )
    print(
        "| asked again, while other passages are embedded as a search would "
        f"| {_ms(timings['beside, as a search'])} |"
    )
    if "whole" in timings:
        print(
            "| the whole archive embedded, the question's embedding aside: the nearest "
            f"{SHIPPED.dense_candidates} by meaning join | {_ms(timings['whole'])} |"
        )
        print(f"| the same, without them (dense_candidates=0) | {_ms(timings['whole, without'])} |")
        print(
            "| the same questions in English, read in the articles' words "
            f"| {_ms(timings['english'])} |"
        )
    print(f"| a question's embedding alone | {_ms(timings['question'])} |")
    print(f"| a passage's embedding alone | {_ms(passage_seconds)} |")
    print(f"| a passage's embedding, {BATCH} at a time (per passage) | {_ms(batch_seconds)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
