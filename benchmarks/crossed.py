"""Train's questions answered as questions about other articles: each one by a ranker and a
judgement trained without its article.

The shipped models learned from train.jsonl, so train's questions answered by them measure
what they remember. Here train's questions are split into five folds grouped by article (an
unanswerable question is its own subject: benchmarks.judgement.folds_of), and for each fold
the ranker is trained on the other four (benchmarks.ranker.train: its penalty chosen on their
own folds), then the judgement, on the other four's questions answered with that ranker
(benchmarks.judgement.train: its strength and threshold chosen so). The fold's questions are
then scored by ../shared/bench/newsqa_eval.py through `python -m retrieval search` with
those two models, and the folds' figures pooled, each over its own questions.
`python -m benchmarks.newsqa` prints the result as train's row; about six minutes once the
index is built. The ranker without a model of meaning is the shipped one: the library here
has the model, so it is never used.

usage: python -m benchmarks.crossed run RANKER JUDGEMENT -- <python -m retrieval arguments>
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks import judgement, ranker
from benchmarks.newsqa import engine, evaluate, question_sets, questions
from retrieval.progress import Reporter, task
from retrieval.question.judgement import Judgement
from retrieval.question.ranker import Ranker
from retrieval.question.ranking import SHIPPED

# each figure the scorer prints, with the count it is a share of
SHARE_OF = {
    "R@1": "n",
    "R@3": "n",
    "MRR@10": "n",
    "xctx_R@1": "n",
    "fu_R@1": "fu_n",
    "fu_R@3": "fu_n",
    "declined": "un_n",
    "answered": "answerable",
    "answered_right": "answerable",
}


def pooled(lines: list[str]) -> str:
    """The scorer's last lines for several question files as one line for all their
    questions: each figure weighed by how many questions it is a share of."""
    folds = [dict(re.findall(r"(\S+)=(\S+)", line)) for line in lines]
    for fold in folds:
        fold["answerable"] = str(int(fold["n"]) + int(fold["fu_n"]))
    parts = []
    for figure, count in SHARE_OF.items():
        counted = [(float(f[figure]), int(f[count])) for f in folds if f[figure] != "n/a"]
        total = sum(n for _, n in counted)
        share = sum(v * n for v, n in counted) / total if total else None
        parts.append(f"{figure}={'n/a' if share is None else f'{share:.4f}'}")
    return " ".join(parts)


def train_line(shared: Path, work: Path, search: str, progress: Reporter) -> str:
    """Train's questions scored fold by fold (`search`: the `python -m retrieval` arguments
    that search the library, after `search`), as one scorer line."""
    library = engine(shared, work)
    asked = questions(question_sets(shared)["train"])
    folds = judgement.folds_of([judgement.subject_of(q) for q in asked])
    with task(progress, "asking train's", len(asked), "questions") as advance:
        candidates = {}
        for i, q in enumerate(asked):
            if q["kind"] != "unanswerable":
                candidates[i] = ranker.example(library, q)
            advance(1)
    lines = []
    for fold in range(judgement.FOLDS):
        rest = [i for i in range(len(asked)) if folds[i] != fold]
        examples = [e for i in rest if (e := candidates.get(i)) is not None]
        with_meaning, _ = ranker.train(examples, [])
        fold_ranker = Ranker(with_meaning, SHIPPED.ranker.by_words)
        library.ranking = replace(SHIPPED, ranker=fold_ranker)
        with task(progress, f"fold {fold + 1}: judging", len(rest), "questions") as advance:
            judged = []
            for i in rest:
                judged.append(judgement.example(library, asked[i]))
                advance(1)
        fold_judgement, _ = judgement.train(judged)
        folder = work / "crossed" / str(fold)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ranker.json").write_text(fold_ranker.to_json(), encoding="utf-8")
        (folder / "judgement.json").write_text(fold_judgement.to_json(), encoding="utf-8")
        held = folder / "questions.jsonl"
        lines_of_fold = [
            json.dumps(q, ensure_ascii=False) for i, q in enumerate(asked) if folds[i] == fold
        ]
        held.write_text("\n".join(lines_of_fold) + "\n", encoding="utf-8")
        command = (
            f"{sys.executable} -m benchmarks.crossed run {folder / 'ranker.json'} "
            f"{folder / 'judgement.json'} -- search {search}"
        )
        lines.append(evaluate(shared, held, command, 0))
    return pooled(lines)


def run(ranker_file: Path, judgement_file: Path, argv: list[str]) -> int:
    """`python -m retrieval` with a fold's ranker and judgement."""
    from retrieval.cli import main

    settings = replace(
        SHIPPED,
        ranker=Ranker.from_json(ranker_file.read_text(encoding="utf-8")),
        judgement=Judgement.from_json(judgement_file.read_text(encoding="utf-8")),
    )
    return main(argv, ranking=settings)


def main() -> int:
    if len(sys.argv) > 4 and sys.argv[1] == "run" and sys.argv[4] == "--":
        return run(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[5:])
    print(__doc__.strip().splitlines()[-1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
