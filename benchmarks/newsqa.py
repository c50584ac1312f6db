"""People's questions: short, in their own words, follow-ups, and questions with no answer.

Scores `python -m retrieval search` with ../shared/bench/newsqa_eval.py (follow-ups sent with
their context, standalone questions also sent with an unrelated earlier question) on two sets
of the same kinds, each among the seed and all 4,216 VOA articles:
  train     ../shared/datasets/newsqa-voa/train.jsonl (736 questions about 160 other
            articles): what the ranker and the judgement learn from; each question answered
            by models trained without its article (benchmarks.crossed: five folds)
  dev       ../shared/datasets/newsqa-voa/dev.jsonl (233 questions about 50 articles): for
            measuring and for finding out why a question fails
  held-out  benchmarks/data/newsqa-heldout.jsonl (153 questions about 31 other articles,
            written for this project): decides whether a change helped; never tuned on
  english   benchmarks/data/newsqa-english.jsonl (46 of train's questions as an English
            reader asks them, written for this project): questions across scripts
  english-dev  benchmarks/data/newsqa-english-dev.jsonl (dev's 153 standalone questions as an
            English reader asks them, written for this project): for choosing how they are read

usage: python -m benchmarks.newsqa [--shared ../shared] [--work DIR] [--show-misses N]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

from benchmarks import ROOT, build_index, reporter, scorer_lines
from retrieval.progress import task

HELDOUT = ROOT / "benchmarks" / "data" / "newsqa-heldout.jsonl"
ENGLISH = ROOT / "benchmarks" / "data" / "newsqa-english.jsonl"
ENGLISH_DEV = ROOT / "benchmarks" / "data" / "newsqa-english-dev.jsonl"
COLUMNS = ("R@1", "R@3", "MRR@10", "fu_R@1", "xctx_R@1", "declined", "answered", "answered_right")


def evaluate(shared: Path, questions: Path, cmd: str, show_misses: int) -> str:
    lines = scorer_lines(
        shared, "newsqa_eval.py", str(questions), "--context", "--show-misses", str(show_misses),
        "--cmd", cmd,
    )  # fmt: skip
    for line in lines[:-1]:
        print(line, file=sys.stderr)
    return lines[-1]


def row(name: str, line: str) -> str:
    values = dict(re.findall(r"(\S+)=(\S+)", line))
    return f"| {name} | " + " | ".join(values.get(k, "n/a") for k in COLUMNS) + " |"


# each set's name, as the table shows it
LABELS = {
    "train": "train (160 other articles; five folds by article)",
    "dev": "dev (50 articles)",
    "held-out": "held-out (31 other articles)",
    "english": "English (30 of train's articles)",
    "english-dev": "English, dev's (50 articles)",
}


def question_sets(shared: Path) -> dict[str, Path]:
    """The question files by set: train, dev, held-out, and English of train's and dev's."""
    return {
        "train": shared / "datasets" / "newsqa-voa" / "train.jsonl",
        "dev": shared / "datasets" / "newsqa-voa" / "dev.jsonl",
        "held-out": HELDOUT,
        "english": ENGLISH,
        "english-dev": ENGLISH_DEV,
    }


def questions(path: Path) -> list[dict]:
    """A question set's questions, one JSON object a line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def context_of(question: dict) -> list[str]:
    """The earlier questions a question is asked after: a follow-up's history, else none."""
    return question.get("history", []) if question["kind"] == "followup" else []


def holds_answer(text: str, gold_any: list[str]) -> bool:
    """Whether a passage holds one of the question's gold snippets, as the scorer decides
    (../shared/bench/newsqa_eval.py: whitespace ignored)."""
    squashed = "".join(text.split())
    return any("".join(g.split()) in squashed for g in gold_any if g.strip())


def prepare(shared: Path, work: Path) -> Path:
    """The library the questions are about: the seed and the VOA corpus (kept in `work`)."""
    library = work / "voa-zh-2020"
    if not library.is_dir():
        with tarfile.open(shared / "corpus" / "voa-zh-2020.tar.xz") as tar:
            tar.extractall(work, filter="data")
        for seed in (shared / "seeds").glob("*.txt"):
            shutil.copy(seed, library / seed.name)
    return library


def engine(shared: Path, work: Path):  # -> Library
    """The library the questions are about, built in `work` and opened here with the model of
    meaning, for benchmarks that ask it in process."""
    from retrieval import IndexKeeper, Meaning  # the engine loads only when a benchmark needs it

    library = prepare(shared, work)
    build_index(library, work / "index")  # in a process of its own, its progress shown
    return IndexKeeper.open(library, work / "index", meaning=Meaning.load()).library


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--work", type=Path, help="keep the corpus and index here (reused)")
    parser.add_argument("--show-misses", type=int, default=0, help="print N misses per set")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    progress = reporter(args.quiet)
    shared = args.shared.resolve()
    work = args.work or Path(tempfile.mkdtemp(prefix="newsqa-"))
    try:
        from benchmarks import crossed  # (it trains with benchmarks.ranker, which imports this)

        library = prepare(shared, work)
        search = f"--seeds {library} --index-dir {work / 'index'} -k 10 --json"
        cmd = f"{sys.executable} -m retrieval search {search}"
        build_index(library, work / "index")  # here, where its progress shows
        print("| set | " + " | ".join(COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        sets = question_sets(shared)
        with task(progress, "scoring", len(sets), "question sets") as advance:
            for name, path in sets.items():
                if name == "train":  # answered by models trained without its article
                    line = crossed.train_line(shared, work, search, progress)
                else:
                    line = evaluate(shared, path, cmd, args.show_misses)
                print(row(LABELS[name], line), flush=True)
                advance(1)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
