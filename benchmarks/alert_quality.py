"""Topic alerts' precision: people's questions followed as topics, every VOA article new.

Each question of ../shared/datasets/newsqa-voa (dev.jsonl and train.jsonl: the standalone
ones, and the unanswerable ones, which no article answers) is followed as a topic; then the
whole archive (the seed and the 4,216 VOA articles) arrives as new, and every passage the
engine would push is scored with ../shared/bench/newsqa_eval.py's rule: a push is right when
its passage holds one of the question's gold snippets (whitespace ignored). The gold comes
from the question's own article, so a push from another article counts as wrong unless it
repeats the gold word for word: the same person in another story is exactly what must not be
pushed.

  precision   right pushes / pushes: the share of pushes whose passage answers the topic
  own         topics whose own article was pushed, with the right passage (recall)
  others      pushes from other articles, per topic
  one word    pushes of a topic of two words or more from an article holding one of them

usage: python -m benchmarks.alert_quality [--shared ../shared] [--work DIR]
                                         [--coverage 0.45/0,0.75/0.6] [--show N]
(--coverage: topic_coverage/topic_passage_coverage pairs to compare; default: the shipped)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import ROOT, build_index, reporter
from benchmarks.newsqa import holds_answer, prepare, questions
from retrieval.progress import task


@dataclass
class Tally:
    topics: int = 0
    pushes: int = 0
    right: int = 0
    own_right: int = 0
    others: int = 0
    one_word: int = 0

    def row(self, name: str, coverage: tuple[float, float]) -> str:
        precision = self.right / self.pushes if self.pushes else float("nan")
        return (
            f"| {name} | {coverage[0]:.2f} / {coverage[1]:.2f} | {self.topics} | {self.pushes} "
            f"| {precision:.3f} | "
            f"{self.own_right / self.topics:.3f} | {self.others / self.topics:.2f} | "
            f"{self.one_word} |"
        )


def topics_of(shared: Path) -> dict[str, list[dict]]:
    """The questions followed as topics, by set and kind."""
    sets: dict[str, list[dict]] = {}
    for name in ("dev", "train"):
        path = shared / "datasets" / "newsqa-voa" / f"{name}.jsonl"
        lines = questions(path)
        for kind in ("standalone", "unanswerable"):
            sets[f"{name} {kind}"] = [q for q in lines if q["kind"] == kind]
    return sets


def measure(library, questions: list[dict], new_ids: list[str], show: int) -> Tally:
    """Follow each question, match the new articles, score the pushes."""
    tally = Tally(topics=len(questions))
    topics = [library.read_topic(q["q"]) for q in questions]
    shown = 0
    for match in library.match_topics(topics, new_ids):
        q = questions[match.topic]
        right = holds_answer(match.hit.passage.text, q.get("gold_any", []))
        own = Path(match.hit.article.source).name == q.get("article")
        tally.pushes += 1
        tally.right += right
        tally.own_right += own and right
        tally.others += not own
        article = match.hit.article
        read = library.analyzer.normalize(
            "\n".join([article.title, *article.captions, *(p.text for p in article.paragraphs)])
        )
        words = {m for m, _ in topics[match.topic].weighed_words}
        tally.one_word += len(words) >= 2 and sum(w in read for w in words) == 1
        if not right and shown < show:
            shown += 1
            print(f"  wrong: {q['q']} → {match.hit.article.title}", file=sys.stderr)
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--work", type=Path, help="keep the corpus and index here (reused)")
    parser.add_argument(
        "--coverage",
        default="",
        help="topic_coverage/topic_passage_coverage pairs to compare (default: shipped)",
    )
    parser.add_argument("--show", type=int, default=0, help="print N wrong pushes per set")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    progress = reporter(args.quiet)
    shared = args.shared.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="alert-quality-"))
    try:
        seeds = prepare(shared, work)
        build_index(seeds, work / "index")  # here, where its progress shows
        from retrieval import IndexKeeper  # the engine loads once the corpus is there

        library = IndexKeeper.open(seeds, index_dir=work / "index").library
        new_ids = [ref.id for ref in library.article_refs()]  # the whole archive is new
        shipped = library.ranking
        values = [
            (float(a), float(p)) for a, p in (v.split("/") for v in args.coverage.split(",") if v)
        ] or [(shipped.topic_coverage, shipped.topic_passage_coverage)]
        sets = topics_of(shared)
        print(
            "| topics | coverage (article / passage) | n | pushes | precision | own | others ",
            end="",
        )
        print("| one word |")
        print("|---|---|---|---|---|---|---|---|")
        with task(progress, "matching", len(values) * len(sets), "question sets") as advance:
            for coverage in values:
                library.ranking = replace(
                    shipped, topic_coverage=coverage[0], topic_passage_coverage=coverage[1]
                )
                for name, questions in sets.items():
                    started = time.perf_counter()
                    tally = measure(library, questions, new_ids, args.show)
                    print(tally.row(name, coverage), flush=True)
                    print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
                    advance(1)
        print(f"\n{len(new_ids)} articles new; pushes: every (topic, article) judged to answer")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
