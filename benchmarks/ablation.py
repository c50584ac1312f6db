"""Ablation: what each retrieval change adds, on people's questions and on CMRC.

Each row runs `python -m retrieval search` with other ranking settings (a RankingSettings
value handed to the engine, nothing patched) or without the model of meaning, and scores it
on:
  people's questions, dev and held-out (benchmarks.newsqa's sets, with --context)
  CMRC 2018 dev among the VOA corpus, simplified and traditional (benchmarks.quality's)
Rows of the engine's history that needed another index (each passage indexed with its title,
question words kept) were measured before settings became data: docs/quality.md has them.

usage: python -m benchmarks.ablation [--shared ../shared] [--only NAME ...]
       python -m benchmarks.ablation run NAME -- <python -m retrieval arguments>
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from benchmarks import ROOT, newsqa, quality, reporter
from retrieval.progress import task
from retrieval.question.cues import CueGains
from retrieval.question.ranking import SHIPPED, RankingSettings


@dataclass(frozen=True)
class Row:
    """One engine to measure: its ranking settings, and whether it has the model of meaning."""

    what: str
    settings: RankingSettings
    meaning: bool = True


NO_CUES = CueGains(number=0.0, time=0.0, speech=0.0, unit=0.0)
# each earlier stage alone: article evidence with question words dropped, nothing after it
BARE = replace(
    SHIPPED,
    cues=NO_CUES,
    context="never",
    judgement=None,
    ranker=None,
)
WITH_CUES = replace(BARE, cues=SHIPPED.cues)
WITH_CONTEXT = replace(WITH_CUES, context=SHIPPED.context)
WITH_JUDGEMENT = replace(WITH_CONTEXT, judgement=SHIPPED.judgement)
assert SHIPPED.ranker is not None
RANKER = SHIPPED.ranker

ABLATIONS: dict[str, Row] = {
    "bare": Row("article evidence, question words dropped; no cues, context, judgement, "
                "ranker or meaning", BARE, meaning=False),
    "+cues": Row("+ answer-type cues", WITH_CUES, meaning=False),
    "+context": Row("+ follow-ups read with their context", WITH_CONTEXT, meaning=False),
    "+judgement": Row("+ judgement (confident, missing)", WITH_JUDGEMENT, meaning=False),
    "+ranker": Row("+ the learned ranker by words (score, characters) over the first 20",
                   SHIPPED, meaning=False),
    "shipped": Row("+ meaning: the ranker with cosines, the 5 nearest joining: as shipped",
                   SHIPPED),
    "-unit-cue": Row("without meaning, − the asked-unit cue",
                     replace(SHIPPED, cues=replace(SHIPPED.cues, unit=0.0)), meaning=False),
    "context-always": Row("without meaning, context used even when not leaned on",
                          replace(SHIPPED, context="always"), meaning=False),
    "article-0.5": Row("without meaning, article weight 0.5",
                       replace(SHIPPED, article_weight=0.5), meaning=False),
    "article-2": Row("without meaning, article weight 2", replace(SHIPPED, article_weight=2.0),
                     meaning=False),
    "no-ranker": Row("shipped, the terms' order (no ranker, so no meaning either)",
                     replace(SHIPPED, ranker=None)),
    "no-characters": Row("shipped, the ranker without the characters",
                         replace(SHIPPED, ranker=replace(RANKER, with_meaning=(
                             RANKER.with_meaning[0], 0.0, RANKER.with_meaning[2])))),
    "ranked-depth-10": Row("shipped, the ranker over the first 10",
                           replace(SHIPPED, ranked_depth=10)),
}  # fmt: skip
COLUMNS = ("dev R@1", "dev R@3", "dev fu_R@1", "dev xctx", "dev declined", "dev answered")
COLUMNS += ("held-out R@1", "held-out R@3", "held-out fu_R@1", "held-out declined")
COLUMNS += ("held-out answered", "CMRC R@1", "CMRC trad. R@1")


def run(name: str, argv: list[str]) -> int:
    """`python -m retrieval` with one row's engine."""
    from retrieval.cli import main

    row = ABLATIONS[name]
    return main(argv, ranking=row.settings, meaning=row.meaning)


def measure(shared: Path, work: Path, name: str, voa: Path, cmrc: tuple[Path, dict]) -> str:
    tag = "shipped"  # every row ranks the same index
    wrapper = f"{sys.executable} -m benchmarks.ablation run {name} -- search -k 10 --json"
    values: dict[str, str] = {}
    sets = newsqa.question_sets(shared)
    for label in ("dev", "held-out"):
        questions = sets[label]
        cmd = f"{wrapper} --seeds {voa} --index-dir {work / f'voa-index-{tag}'}"
        line = newsqa.evaluate(shared, questions, cmd, 0)
        found = dict(re.findall(r"(\S+)=(\S+)", line))
        for key, column in (
            ("R@1", "R@1"),
            ("R@3", "R@3"),
            ("fu_R@1", "fu_R@1"),
            ("xctx_R@1", "xctx"),
            ("declined", "declined"),
            ("answered", "answered"),
        ):
            values[f"{label} {column}"] = found.get(key, "")
    pool, files = cmrc
    cmd = f"{wrapper} --seeds {pool} --index-dir {work / f'cmrc-index-{tag}'}"
    for label, variant in (("CMRC R@1", 0), ("CMRC trad. R@1", 1)):
        line = quality.evaluate(shared, files[quality.VARIANTS[variant]], cmd)
        values[label] = dict(re.findall(r"(\S+)=(\S+)", line))["R@1"]
    cells = [values.get(c, "–") for c in COLUMNS]
    return f"| {ABLATIONS[name].what} | " + " | ".join(cells) + " |"


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "run":
        return run(sys.argv[2], sys.argv[sys.argv.index("--") + 1 :])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--only", nargs="*", choices=list(ABLATIONS), help="these rows only")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args()
    progress = reporter(args.quiet)
    shared = args.shared.resolve()
    work = Path(tempfile.mkdtemp(prefix="ablation-"))
    try:
        voa = newsqa.prepare(shared, work / "newsqa")
        cmrc = quality.prepare(shared, work / "cmrc")
        print("| engine | " + " | ".join(COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 1) + "|")
        names = args.only or list(ABLATIONS)
        with task(progress, "ablation", len(names), "rows") as advance:
            for name in names:
                print(measure(shared, work, name, voa, cmrc), flush=True)
                advance(1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
