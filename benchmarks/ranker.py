"""Train the ranker that orders a question's first passages, from people's questions.

Asks every answerable question of ../shared/datasets/newsqa-voa/train.jsonl through the
engine (the seed and the VOA articles, as benchmarks.newsqa; follow-ups with their earlier
question) and keeps the passages the ranker orders, with their features
(Library.candidates) and which of them holds the answer (as the newsqa scorer decides: a
gold snippet in the passage). Then fits, for each question, a softmax over its candidates
whose target is its right passages (a linear ranker's likelihood, L2-regularised), once
over every feature and once over those without a model of meaning (the candidates its
terms found). The regularisation is the one whose ranker puts a right passage first most
often on five folds grouped by article. Writes the model into the package
(retrieval/data/ranker.json) and prints the folds' figures and dev's. About two minutes
once the index is built (`--work` keeps it; an index that `python -m retrieval embed` has
filled gives the shipped model, as the nearest passages then join the candidates). Train
the judgement again after it (`python -m benchmarks.judgement`): it judges the first hit.

usage: python -m benchmarks.ranker [--shared ../shared] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from benchmarks import collected_for_training, reporter
from benchmarks.judgement import FOLDS, SHARED_WITH_HELDOUT, folds_of
from benchmarks.newsqa import context_of, engine, holds_answer, question_sets, questions
from retrieval import Library
from retrieval.progress import task
from retrieval.question.ranker import BY_WORDS, FEATURES, FILE, Ranker, relative

PENALTIES = (0.0001, 0.001, 0.01)  # λ of λ|w|²/2, summed over the questions' log-likelihoods


@dataclass(frozen=True)
class Example:
    """One question's candidates as the ranker sees them."""

    features: np.ndarray  # a row a candidate, FEATURES' columns
    right: np.ndarray  # whether each holds the answer
    nearest: np.ndarray  # whether each joined by meaning
    subject: str  # the article asked about
    followup: bool

    def by_words(self) -> Example:
        """The candidates without a model of meaning: those the terms found, no cosine."""
        keep = ~self.nearest
        return Example(
            self.features[keep][:, : len(BY_WORDS)],
            self.right[keep],
            self.nearest[keep],
            self.subject,
            self.followup,
        )


def collect(shared: Path, work: Path) -> dict[str, list[Example]]:
    """Train's and dev's answerable questions through the engine, with their candidates."""
    library = engine(shared, work)
    return {name: asked(library, shared, name) for name in ("train", "dev")}


def asked(library: Library, shared: Path, name: str) -> list[Example]:
    answerable = [
        q
        for q in questions(question_sets(shared)[name])
        if q["kind"] != "unanswerable" and q.get("article") != SHARED_WITH_HELDOUT
    ]
    examples = []
    with task(reporter(), f"asking {name}'s", len(answerable), "questions") as advance:
        for q in answerable:
            found = example(library, q)
            advance(1)
            if found is not None:
                examples.append(found)
    return examples


def example(library: Library, q: dict) -> Example | None:
    """An answerable question's candidates, as the ranker learns from them (None: none).
    They do not depend on a ranker: it orders them."""
    candidates = library.candidates(q["q"], context=context_of(q))
    if not candidates:
        return None
    return Example(
        np.array([c.features for c in candidates], dtype=float),
        np.array([holds_answer(c.passage.text, q["gold_any"]) for c in candidates]),
        np.array([c.nearest for c in candidates]),
        q.get("article", ""),
        q["kind"] == "followup",
    )


def fit(examples: list[Example], penalty: float) -> np.ndarray:
    """The weights that maximise the chance each question's softmax gives its right passages,
    less penalty × |w|² / 2. A question whose candidates hold no right passage teaches nothing."""
    taught = [(relative(e.features), e.right / e.right.sum()) for e in examples if e.right.any()]
    width = examples[0].features.shape[1]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        value, gradient = penalty * (w @ w) / 2, penalty * w
        for x, target in taught:
            s = x @ w
            value -= float(target @ (s - logsumexp(s)))
            gradient = gradient - (target - softmax(s)) @ x
        return value, gradient

    return minimize(loss, np.zeros(width), jac=True, method="L-BFGS-B").x


def first_right(examples: list[Example], w: np.ndarray) -> np.ndarray:
    """Whether the weights put a right passage first, for each question (ties: the terms' order)."""
    return np.array(
        [bool(e.right[int(np.argmax(relative(e.features) @ w))]) for e in examples], dtype=bool
    )


def cross_validated(examples: list[Example], penalty: float) -> np.ndarray:
    folds = folds_of([e.subject for e in examples])
    right = np.zeros(len(examples), dtype=bool)
    for f in range(FOLDS):
        w = fit([e for e, g in zip(examples, folds, strict=True) if g != f], penalty)
        held = [i for i, g in enumerate(folds) if g == f]
        right[held] = first_right([examples[i] for i in held], w)
    return right


def r_at_1(examples: list[Example], right: np.ndarray) -> dict[str, float | None]:
    """R@1 of standalone questions and of follow-ups (a question whose candidates hold no
    right passage counts as missed; None where there are none of a kind)."""
    followup = np.array([e.followup for e in examples], dtype=bool)
    return {
        kind: round(float(right[which].mean()), 4) if which.any() else None
        for kind, which in (("standalone", ~followup), ("followup", followup))
    }


def train(
    examples: list[Example], dev: list[Example]
) -> tuple[tuple[float, ...], dict[str, object]]:
    """The weights learned from the examples, and their figures: the terms' order, each
    penalty's folds, and dev's."""
    terms = np.array([bool(e.right[0]) for e in examples])
    folds = {penalty: cross_validated(examples, penalty) for penalty in PENALTIES}
    penalty = max(PENALTIES, key=lambda p: (folds[p].mean(), p))  # ties: the smoother
    w = fit(examples, penalty)
    return tuple(round(float(v), 6) for v in w), {
        "questions": len(examples),
        "penalty": penalty,
        "terms_order": r_at_1(examples, terms),
        "cross_validated": {str(p): r_at_1(examples, folds[p]) for p in PENALTIES},
        "dev": r_at_1(dev, first_right(dev, w)),
        "dev_terms_order": r_at_1(dev, np.array([bool(e.right[0]) for e in dev])),
    }


def main() -> int:
    (examples, dev), out = collected_for_training(
        __doc__, FILE, lambda shared, work: tuple(collect(shared, work).values())
    )
    with_meaning, figures = train(examples, dev)
    by_words, words_figures = train([e.by_words() for e in examples], [e.by_words() for e in dev])
    model = Ranker(
        with_meaning,
        by_words,
        about={
            "trained_on": "newsqa-voa train.jsonl",
            "command": "python -m benchmarks.ranker",
            "folds": f"{FOLDS}, grouped by article",
            "features": list(FEATURES),
            "with_meaning": figures,
            "by_words": words_figures,
        },
    )
    out.write_text(model.to_json(), encoding="utf-8")
    print(f"wrote {out} ({model.identity})")
    for name, numbers in (("with meaning", figures), ("by words", words_figures)):
        print(f"{name}: " + json.dumps(numbers, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
