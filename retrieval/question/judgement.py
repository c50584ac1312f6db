"""Does the archive answer the question? A probability learned from people's questions.

A logistic model over the share of the question's content words the first hit's article
holds (each weighed by how rare it is) and over the question's own words that say what kind
of question it is: 后来, 最后 and 哪天 ask for a later or a precise fact, which an archive
often lacks however well its articles name the people; 怎么, 觉得 and 说 ask for views, which
the article that names the people usually holds. Only words asked in questions about many
articles count, so a kind is learned and a topic is not. Trained by
`python -m benchmarks.judgement` on train.jsonl, the threshold set on its folds for answering
85% of the answerable questions (docs/quality.md); the model is a small JSON file inside the
package. Two cases the training questions are too few to teach stay rules: an article that
lacks a number of the question (2024年 of an article on 2020), and a follow-up about
something else (那高铁呢 after a typhoon) are never answers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from retrieval.question import learned

FILE = "judgement.json"


@dataclass(frozen=True)
class Evidence:
    """What the judgement weighs of a question and its first hit's article."""

    coverage: float  # share of the question's content words the article holds, by rarity
    lacks_a_number: bool  # a number of two digits or more that the article does not hold
    off_topic: bool  # a follow-up about something else: see retrieval.question.ranking.judge
    words: frozenset[str]  # the question's words, normalised (Analyzer.question_words)


@dataclass(frozen=True)
class Judgement(learned.Stored):
    """A learned judgement: weights, and the probability from which an answer is confident."""

    bias: float
    coverage: float
    words: Mapping[str, float] = field(hash=False)
    threshold: float
    # words of a question's kind that say nothing of its subject (后来, 觉得, 那边): a decline
    # never names them missing. Derived by the training command (jieba's dictionary does
    # not tag them as names), not listed by hand.
    unnamed: frozenset[str] = frozenset()
    about: Mapping[str, object] = field(default_factory=dict, hash=False, compare=False)

    def probability(self, evidence: Evidence) -> float:
        """How likely the first hit's article answers the question (0 to 1)."""
        z = (
            self.bias
            + self.coverage * evidence.coverage
            + sum(self.words.get(word, 0.0) for word in evidence.words)
        )
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def answers(self, evidence: Evidence, probability: float) -> bool:
        """Whether the first hit is an answer (`probability`: this judgement's of it)."""
        return (
            probability >= self.threshold and not evidence.lacks_a_number and not evidence.off_topic
        )

    def weights(self) -> dict[str, object]:
        return {
            "bias": self.bias,
            "coverage": self.coverage,
            "threshold": self.threshold,
            "unnamed": sorted(self.unnamed),
            "words": dict(sorted(self.words.items())),
        }

    @classmethod
    def from_json(cls, text: str) -> Judgement:
        data = json.loads(text)
        return cls(
            bias=float(data["bias"]),
            coverage=float(data["coverage"]),
            words={str(k): float(v) for k, v in data["words"].items()},
            threshold=float(data["threshold"]),
            unnamed=frozenset(map(str, data.get("unnamed", ()))),
            about=dict(data.get("about", {})),
        )


@cache
def shipped() -> Judgement:
    """The judgement inside the package (retrieval/data/judgement.json)."""
    return Judgement.from_json(learned.packaged(FILE))
