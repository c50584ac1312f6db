"""Train's row in `python -m benchmarks.newsqa`: each question answered by models trained
without its article (benchmarks.crossed), and the folds' figures pooled."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from benchmarks.crossed import pooled
from retrieval.question import judgement, ranker
from tests.support import REPO
from tests.support.seeds import write_seeds

FIRST = (
    "R@1=0.5000 R@3=1.0000 MRR@10=0.7500 n=2 fu_R@1=1.0000 fu_R@3=1.0000 fu_n=1 "
    "declined=n/a un_n=0 answered=0.3333 answered_right=0.0000 xctx_R@1=0.5000 seconds=1.0"
)
SECOND = (
    "R@1=0.0000 R@3=0.0000 MRR@10=0.0000 n=1 fu_R@1=n/a fu_R@3=n/a fu_n=0 "
    "declined=1.0000 un_n=2 answered=1.0000 answered_right=1.0000 xctx_R@1=0.0000 seconds=1.0"
)


def test_the_folds_figures_are_pooled_over_their_own_questions() -> None:
    figures = dict(part.split("=") for part in pooled([FIRST, SECOND]).split())
    assert figures["R@1"] == "0.3333"  # one of three standalone questions
    assert figures["MRR@10"] == "0.5000"  # (0.75 × 2 + 0) / 3
    assert figures["fu_R@1"] == "1.0000"  # the second fold has no follow-up: not a zero
    assert figures["declined"] == "1.0000"  # the first has no unanswerable question
    assert figures["answered"] == "0.5000"  # 1 of 3 answerable, then 1 of 1
    assert figures["answered_right"] == "0.2500"
    assert pooled([FIRST]).startswith("R@1=0.5000 R@3=1.0000 MRR@10=0.7500")


def test_a_folds_models_answer_through_the_search_command(tmp_path: Path) -> None:
    seeds = write_seeds(tmp_path / "seeds")
    ranker_file = tmp_path / "ranker.json"
    ranker_file.write_text(ranker.shipped().to_json(), encoding="utf-8")

    def confident(model: judgement.Judgement) -> bool:
        judgement_file = tmp_path / "judgement.json"
        judgement_file.write_text(model.to_json(), encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "benchmarks.crossed", "run", str(ranker_file),
             str(judgement_file), "--", "search", "--seeds", str(seeds), "--index-dir",
             str(tmp_path / "index"), "-k", "1", "--json"],
            input="日本会增加防卫支出吗？\n", capture_output=True, text=True, cwd=REPO,
            check=True, timeout=300,
        )  # fmt: skip
        return json.loads(result.stdout)["confident"]

    shipped = judgement.shipped()
    assert confident(shipped)
    assert not confident(replace(shipped, threshold=1.01))  # the file's, not the package's
