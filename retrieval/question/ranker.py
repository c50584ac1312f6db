"""The ranking's last stage: a question's first passages ordered by a model learned from
people's questions.

Each candidate (the first passages by terms, and the nearest by meaning that join them) is
described by three numbers: its score by terms (BM25 of the passage and its article, raised
by the cue of the kind of answer asked for), the share of the question's Chinese characters
it holds (people's words and the article's often share characters, not words: 死伤 against
死亡…受伤), and its cosine with the question in meaning. The score is read as its distance
below the best candidate's (a share of the largest score's size) and the cosine as its
distance below the best one's, so a weight means the same whatever a question's scale, and a
gap stays a gap however few the candidates (z-scores among six candidates made a small lead
in meaning outweigh a fourfold lead in score: docs/quality.md). The weighted sum orders them.
Without a model of meaning the last is absent and a second set of weights, learned without
it, orders them. Trained by `python -m benchmarks.ranker` on train.jsonl (a softmax over each
question's candidates, the right passage as its target), the regularisation chosen on folds
grouped by article (docs/quality.md). The model is a small JSON file inside the package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from retrieval.question import learned

FILE = "ranker.json"
FEATURES = ("score", "characters", "cosine")  # a candidate's, in this order
BY_WORDS = FEATURES[:2]  # without a model of meaning


def relative(features: np.ndarray) -> np.ndarray:
    """The candidates' features as the ranker weighs them: the score's distance below the
    best one's, as a share of the largest score's size (the best's, unless scores are
    negative, as BM25's are in a library of one article, where every term is in every
    article); the characters' share as it is; the cosine less the best one's. Both are at
    most 0, and 0 for the best."""
    columns = features.astype(float, copy=True)
    if len(columns):
        scores = columns[:, 0]
        size = float(np.abs(scores).max())
        columns[:, 0] = (scores - scores.max()) / size if size > 0.0 else 0.0
        if columns.shape[1] > 2:
            columns[:, 2] -= columns[:, 2].max()
    return columns


@dataclass(frozen=True)
class Ranker(learned.Stored):
    """A learned ranking: a weight for each feature (as `relative` reads it)."""

    with_meaning: tuple[float, ...]  # FEATURES' weights
    by_words: tuple[float, ...]  # BY_WORDS' weights, when the library has no model of meaning
    about: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)

    def values(self, features: np.ndarray) -> np.ndarray:
        """How good each candidate is (`features`: a row a candidate, FEATURES' columns, or
        BY_WORDS' without a model of meaning); only their order means anything."""
        weights = self.with_meaning if features.shape[1] == len(FEATURES) else self.by_words
        if features.shape[1] != len(weights):
            raise ValueError(f"{features.shape[1]} features, the ranker weighs {len(weights)}")
        return relative(features) @ np.asarray(weights)

    def ranked(
        self, scores: Sequence[float], features: np.ndarray, floor: float
    ) -> list[tuple[int, float]]:
        """(position, score) of the candidates, best first (`scores`: their scores by terms,
        as they come; `features`: theirs, a row each). A candidate's new score is `floor`
        (the best score of the passages ranked after them) plus its value above the lowest
        value, in the spread of `scores`: the passages after them stay after. Ties keep the
        order they came in."""
        if not len(scores):
            return []
        values = self.values(features)
        spread = float(np.std(scores)) or 1.0
        rescored = [(i, floor + spread * float(v - values.min())) for i, v in enumerate(values)]
        return sorted(rescored, key=lambda item: -item[1])

    def weights(self) -> dict[str, object]:
        return {
            "with_meaning": dict(zip(FEATURES, self.with_meaning, strict=True)),
            "by_words": dict(zip(BY_WORDS, self.by_words, strict=True)),
        }

    @classmethod
    def from_json(cls, text: str) -> Ranker:
        data = json.loads(text)
        return cls(
            with_meaning=tuple(float(data["with_meaning"][name]) for name in FEATURES),
            by_words=tuple(float(data["by_words"][name]) for name in BY_WORDS),
            about=dict(data.get("about", {})),
        )


@cache
def shipped() -> Ranker:
    """The ranker inside the package (retrieval/data/ranker.json)."""
    return Ranker.from_json(learned.packaged(FILE))
