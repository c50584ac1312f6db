"""The learned ranker: the model shipped, and how `python -m benchmarks.ranker` learns it (on
made-up candidates: the real questions are in ../shared, read by the command, never by the
tests' product)."""

from __future__ import annotations

import random

import numpy as np

from benchmarks.ranker import Example, first_right, train
from retrieval.question.ranker import BY_WORDS, FEATURES, Ranker, shipped


def test_the_shipped_ranker_was_trained_by_the_command_and_reads_back_as_written() -> None:
    model = shipped()
    assert model.about["command"] == "python -m benchmarks.ranker"
    assert model.about["features"] == list(FEATURES)
    assert len(model.with_meaning) == len(FEATURES) and len(model.by_words) == len(BY_WORDS)
    # each feature it weighs is learned to count for, not against, a passage
    assert all(w > 0 for w in model.with_meaning + model.by_words)
    assert Ranker.from_json(model.to_json()) == model


def made_up_questions(subjects: int, seed: int = 0) -> list[Example]:
    """Questions about `subjects` articles, each with ten candidates: the right passage holds
    more of the question's characters and is nearer in meaning than the rest, but its score
    by terms is often not the best (as people's words are not the article's)."""
    rng = random.Random(seed)
    examples = []
    for n in range(subjects):
        for _ in range(4):
            right = rng.randrange(10)
            features = np.array(
                [
                    [
                        rng.uniform(5.0, 20.0),
                        rng.uniform(0.1, 0.5) + (0.3 if i == right else 0.0),
                        rng.uniform(0.80, 0.85) + (0.03 if i == right else 0.0),
                    ]
                    for i in range(10)
                ]
            )
            order = np.argsort(-features[:, 0], kind="stable")  # candidates come by terms
            examples.append(
                Example(
                    features[order],
                    order == right,
                    np.zeros(10, dtype=bool),
                    f"article {n}",
                    followup=False,
                )
            )
    return examples


def test_training_learns_what_marks_the_right_passage_and_beats_the_terms_order() -> None:
    examples, dev = made_up_questions(40), made_up_questions(10, seed=1)
    weights, figures = train(examples, dev)
    assert weights[1] > 0 and weights[2] > 0  # characters and meaning count for it
    assert figures["dev"]["standalone"] > figures["dev_terms_order"]["standalone"] + 0.3
    assert set(figures["cross_validated"]) == {"0.0001", "0.001", "0.01"}
    assert figures["penalty"] in (0.0001, 0.001, 0.01)
    assert first_right(dev, np.array(weights)).mean() == figures["dev"]["standalone"]
    # without the cosine, the characters still carry it
    words, words_figures = train([e.by_words() for e in examples], [e.by_words() for e in dev])
    assert len(words) == len(BY_WORDS) and words[1] > 0
    assert words_figures["dev"]["standalone"] > words_figures["dev_terms_order"]["standalone"]
