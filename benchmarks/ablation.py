"""Ablation: what each retrieval change adds, on people's questions and on CMRC.

Each row takes one change away from the engine as shipped (or, for the first rows, shows
the engine with only the earlier changes), by patching the running code in a wrapper around
`python -m retrieval` (index-time changes get their own index), and scores it on:
  people's questions, dev and held-out (benchmarks.newsqa's sets, with --context)
  CMRC 2018 dev among the VOA corpus, simplified and traditional (benchmarks.quality's)

usage: python -m benchmarks.ablation [--shared ../shared] [--only NAME ...]
       python -m benchmarks.ablation run NAME -- <python -m retrieval arguments>
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmarks import ROOT, newsqa, quality, reporter
from retrieval.progress import task


def _no_question_words() -> None:
    from retrieval import analysis

    analysis.QUESTION_WORD = re.compile(r"(?!)")  # matches nothing


def _no_cues() -> None:
    from retrieval import cues

    cues.GAIN.update(dict.fromkeys(cues.GAIN, 0.0))
    cues.UNIT_GAIN = 0.0


def _no_unit_cue() -> None:
    from retrieval import cues

    cues.UNIT_GAIN = 0.0


def _no_context() -> None:
    from retrieval import ranking

    ranking.LEANS_ON_CONTEXT = re.compile(r"(?!)")


def _context_always() -> None:
    from retrieval import ranking

    ranking.LEANS_ON_CONTEXT = re.compile(r"")


def _no_judgement() -> None:
    from retrieval import ranking

    ranking.CONFIDENT_COVERAGE = 0.0
    ranking.NUMBER_OF_TWO_DIGITS = re.compile(r"(?!)")


def _title_in_passages() -> None:
    """The ranking before article evidence: each passage indexed with its article's title
    terms twice, and no article score."""
    from retrieval import parsing, ranking

    terms_of = parsing.article_terms

    def with_title(article, passages, analyzer):  # type: ignore[no-untyped-def]
        analysed = terms_of(article, passages, analyzer)
        # "\n" ends a run of characters: a passage's terms, then the title's, twice
        title = "\n".join([analyzer.normalize(article.title)] * parsing.TITLE_WEIGHT)
        n = analysed.n_passages
        texts = [f"{text}\n{title}" for text in analysed.texts[:n]] + analysed.texts[n:]
        return replace(analysed, terms=analyzer.texts_terms(texts, analysed.names))

    parsing.article_terms = with_title
    ranking.ARTICLE_WEIGHT = 0.0


def _article_weight(weight: float) -> Callable[[], None]:
    def patch() -> None:
        from retrieval import ranking

        ranking.ARTICLE_WEIGHT = weight

    return patch


def _character_weight(weight: float) -> Callable[[], None]:
    def patch() -> None:
        from retrieval import ranking

        ranking.CHARACTER_WEIGHT = weight

    return patch


_no_characters = _character_weight(0.0)


def _no_meaning() -> None:
    from retrieval import meaning

    meaning.Meaning.load = staticmethod(lambda: None)  # type: ignore[method-assign]


def _meaning(weight: float, depth: int) -> Callable[[], None]:
    def patch() -> None:
        from retrieval import ranking

        ranking.MEANING_WEIGHT = weight
        ranking.MEANING_DEPTH = depth

    return patch


def _all(*patches: Callable[[], None]) -> Callable[[], None]:
    def patch() -> None:
        for p in patches:
            p()

    return patch


# name → (what the row is, patch, whether it changes the index)
def _without_meaning(what: str, patch: Callable[[], None]) -> tuple[str, Callable[[], None], bool]:
    """A row measured on the engine before meaning: `patch` with the model left out."""
    return f"without meaning, {what}", _all(_no_meaning, patch), False


ABLATIONS: dict[str, tuple[str, Callable[[], None], bool]] = {
    "passages-only": (
        "readable passages only: title ×2 in each passage, no article score, question "
        "words, cues, context, judgement, characters or meaning",
        _all(
            _title_in_passages,
            _no_question_words,
            _no_cues,
            _no_context,
            _no_judgement,
            _no_characters,
            _no_meaning,
        ),
        True,
    ),
    "+article": (
        "+ article evidence instead of the title in each passage",
        _all(_no_question_words, _no_cues, _no_context, _no_judgement, _no_characters, _no_meaning),
        True,
    ),
    "+question-words": (
        "+ question words dropped",
        _all(_no_cues, _no_context, _no_judgement, _no_characters, _no_meaning),
        False,
    ),
    "+cues": (
        "+ answer-type cues",
        _all(_no_context, _no_judgement, _no_characters, _no_meaning),
        False,
    ),
    "+context": (
        "+ follow-ups read with their context",
        _all(_no_judgement, _no_characters, _no_meaning),
        False,
    ),
    "+judgement": ("+ judgement (confident, missing)", _all(_no_characters, _no_meaning), False),
    "+characters": (
        "+ the question's characters among the first 10 passages",
        _no_meaning,
        False,
    ),
    "shipped": ("+ meaning among the first 20 passages: as shipped", lambda: None, False),
    "-unit-cue": _without_meaning("− the asked-unit cue", _no_unit_cue),
    "context-always": _without_meaning("context used even when not leaned on", _context_always),
    "article-0.5": _without_meaning("article weight 0.5", _article_weight(0.5)),
    "article-2": _without_meaning("article weight 2", _article_weight(2.0)),
    "characters-0.5": _without_meaning("character weight 0.5", _character_weight(0.5)),
    "characters-2": _without_meaning("character weight 2", _character_weight(2.0)),
    "meaning-1": ("shipped, meaning weight 1", _meaning(1.0, 20), False),
    "meaning-2": ("shipped, meaning weight 2", _meaning(2.0, 20), False),
    "meaning-depth-10": ("shipped, meaning among the first 10", _meaning(1.5, 10), False),
}
COLUMNS = ("dev R@1", "dev R@3", "dev fu_R@1", "dev xctx", "dev declined", "dev answered")
COLUMNS += ("held-out R@1", "held-out R@3", "held-out fu_R@1", "held-out declined")
COLUMNS += ("held-out answered", "CMRC R@1", "CMRC trad. R@1")


def run(name: str, argv: list[str]) -> int:
    """`python -m retrieval` with one ablation applied."""
    ABLATIONS[name][1]()
    from retrieval.cli import main

    return main(argv)


def measure(shared: Path, work: Path, name: str, voa: Path, cmrc: tuple[Path, dict]) -> str:
    index_time = ABLATIONS[name][2]
    tag = name if index_time else "shipped"
    wrapper = f"{sys.executable} -m benchmarks.ablation run {name} -- search -k 10 --json"
    values: dict[str, str] = {}
    sets = newsqa.question_sets(shared).values()
    for label, questions in zip(("dev", "held-out"), sets, strict=True):
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
    return f"| {ABLATIONS[name][0]} | " + " | ".join(cells) + " |"


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
