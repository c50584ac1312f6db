"""Train the judgement of whether the first hit answers, from people's questions.

Asks every question of ../shared/datasets/newsqa-voa/train.jsonl through the engine (the seed
and the VOA articles, as benchmarks.newsqa; follow-ups with their earlier question) and keeps
what the judgement weighs of each (retrieval.question.judgement.Evidence). Then fits an
L2-regularised logistic regression, answerable or not, over the share of the question's
words the first hit's article holds and each word asked in questions about at least
MIN_SUBJECTS articles (a kind of question, not a topic). Five folds grouped by article: the
regularisation is the one with the best area under the ROC curve on the held-out folds, the
threshold the highest probability at which the folds' answerable questions are answered at
least ANSWERED of the time, the judgement's rules (a number missing, a follow-up off topic)
applied. The kind words jieba's dictionary does not tag as names (后来, 觉得, not 香港) are
kept as words a decline never names missing. Writes the model into the package
(retrieval/data/judgement.json) and prints the folds' figures. About two minutes once the
index is built (`--work` keeps it; an index that `python -m retrieval embed` has filled gives
the shipped model, as the nearest passages then join the rankings).

usage: python -m benchmarks.judgement [--shared ../shared] [--work DIR] [--out FILE]
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit
from scipy.stats import rankdata

from benchmarks import collected_for_training, reporter
from benchmarks.newsqa import context_of, engine, question_sets, questions
from retrieval import Library
from retrieval.progress import task
from retrieval.question.judgement import FILE, Evidence, Judgement

FOLDS = 5
MIN_SUBJECTS = 10
ANSWERED = 0.85
STRENGTHS = (0.3, 1.0, 3.0)  # C: the inverse of the L2 penalty, as in scikit-learn
# train.jsonl's one article that the project's held-out set also asks about (its README)
SHARED_WITH_HELDOUT = "3574_646202b82ba92032.txt"


@dataclass(frozen=True)
class Example:
    evidence: Evidence | None  # None: nothing found
    answerable: bool
    subject: str  # the article asked about; an unanswerable question is its own subject


def collect(shared: Path, work: Path) -> list[Example]:
    """Train's questions through the engine, with what the judgement weighed of each."""
    library = engine(shared, work)
    asked = [
        q
        for q in questions(question_sets(shared)["train"])
        if q.get("article") != SHARED_WITH_HELDOUT
    ]
    examples = []
    with task(reporter(), "asking", len(asked), "questions") as advance:
        for q in asked:
            examples.append(example(library, q))
            advance(1)
    return examples


def example(library: Library, q: dict) -> Example:
    """A question through the engine, as the judgement learns from it."""
    result = library.search(q["q"], k=1, context=context_of(q))
    return Example(result.evidence, q["kind"] != "unanswerable", subject_of(q))


def subject_of(q: dict) -> str:
    """What a question is about: its article; an unanswerable question is its own subject."""
    return q.get("article") or q["q"]


def features(examples: list[Example], words: list[str]) -> np.ndarray:
    column = {w: i for i, w in enumerate(words, 1)}
    x = np.zeros((len(examples), 1 + len(words)))
    for row, example in zip(x, examples, strict=True):
        assert example.evidence is not None
        row[0] = example.evidence.coverage
        for word in example.evidence.words:
            if word in column:
                row[column[word]] = 1.0
    return x


def fit(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """(bias, weights…) minimising the log-loss plus |weights|² / (2 × strength)."""

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        z = w[0] + x @ w[1:]
        error = expit(z) - y
        value = float(np.sum(np.logaddexp(0.0, z) - y * z) + w[1:] @ w[1:] / (2 * strength))
        return value, np.concatenate([[np.sum(error)], x.T @ error + w[1:] / strength])

    start = np.zeros(x.shape[1] + 1)
    return minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 5000}).x


def probabilities(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return expit(w[0] + x @ w[1:])


def roc_area(p: np.ndarray, y: np.ndarray) -> float:
    """The chance an answerable question gets a higher probability than an unanswerable one
    (ties count half: the Mann-Whitney statistic, from ranks that share ties' mean)."""
    ranks = rankdata(p)
    positives = int(y.sum())
    negatives = len(y) - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


# jieba's tags for names: of places, people, organisations, other proper nouns
NAME_TAGS = ("ns", "nr", "nt", "nz")


def names_something(word: str) -> bool:
    """Whether a kind word still says what a question is about: jieba's dictionary tags it
    as a name (香港, 拜登), or does not know it whole (川普). 后来, 觉得 and 那边 do not."""
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)  # not its dictionary-loading chatter
    cut = jieba.posseg.lcut(word, HMM=False)
    return len(cut) != 1 or cut[0].flag.startswith(NAME_TAGS)


def folds_of(subjects: Sequence[str]) -> np.ndarray:
    """Each question's fold, by its subject: one article's questions share a fold (they
    share words)."""
    distinct = sorted(set(subjects))
    order = np.random.default_rng(0).permutation(len(distinct))
    fold = {distinct[i]: n % FOLDS for n, i in enumerate(order)}
    return np.array([fold[subject] for subject in subjects])


def out_of_fold(x: np.ndarray, y: np.ndarray, folds: np.ndarray, strength: float) -> np.ndarray:
    p = np.zeros(len(y))
    for f in range(FOLDS):
        w = fit(x[folds != f], y[folds != f], strength)
        p[folds == f] = probabilities(w, x[folds == f])
    return p


def train(examples: list[Example]) -> tuple[Judgement, dict[str, float]]:
    """The judgement learned from the examples, and its cross-validated figures."""
    # nothing found is never an answer, whatever the weights
    found = [e for e in examples if e.evidence is not None]
    subjects: dict[str, set[str]] = {}
    for e in found:
        assert e.evidence is not None
        for word in e.evidence.words:
            subjects.setdefault(word, set()).add(e.subject)
    words = sorted(w for w, s in subjects.items() if len(s) >= MIN_SUBJECTS)
    x = features(found, words)
    y = np.array([e.answerable for e in found], dtype=float)
    folds = folds_of([e.subject for e in found])
    areas = {c: roc_area(out_of_fold(x, y, folds, c), y) for c in STRENGTHS}
    strength = max(STRENGTHS, key=lambda c: areas[c])
    p = out_of_fold(x, y, folds, strength)
    ruled_out = np.array(
        [
            e.evidence is not None and (e.evidence.lacks_a_number or e.evidence.off_topic)
            for e in found
        ]
    )

    def answered(t: float) -> float:
        return float(np.mean(((p >= t) & ~ruled_out)[y == 1]))

    threshold = float(max(t for t in np.unique(p) if answered(t) >= ANSWERED))
    confident = (p >= threshold) & ~ruled_out
    figures = {
        "questions": len(examples),
        "answerable": int(sum(e.answerable for e in examples)),
        "kind_words": len(words),
        "strength": strength,
        "roc_area": round(areas[strength], 4),
        "answered": round(float(np.mean(confident[y == 1])), 4),
        "declined": round(float(np.mean(~confident[y == 0])), 4),
    }
    w = fit(x, y, strength)
    model = Judgement(
        unnamed=frozenset(w for w in words if not names_something(w)),
        bias=round(float(w[0]), 6),
        coverage=round(float(w[1]), 6),
        words={word: round(float(v), 6) for word, v in zip(words, w[2:], strict=True)},
        threshold=round(threshold, 6),
        about={
            "trained_on": "newsqa-voa train.jsonl",
            "command": "python -m benchmarks.judgement",
            "folds": f"{FOLDS}, grouped by article",
            "min_subjects": MIN_SUBJECTS,
            "cross_validated": figures,
        },
    )
    return model, figures


def main() -> int:
    examples, out = collected_for_training(__doc__, FILE, collect)
    model, figures = train(examples)
    out.write_text(model.to_json(), encoding="utf-8")
    print(f"wrote {out} ({model.identity}): " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
