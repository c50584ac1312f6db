"""The learned judgement of whether the first hit answers: the model shipped, how it decides,
and how `python -m benchmarks.judgement` learns it (on made-up questions: the real ones are
in ../shared, read by the command, never by the tests' product)."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from benchmarks.judgement import ANSWERED, Example, names_something, train
from retrieval.question.judgement import Evidence, Judgement, shipped


def evidence(coverage: float = 1.0, *words: str, **rules: bool) -> Evidence:
    return Evidence(
        coverage,
        rules.get("lacks_a_number", False),
        rules.get("off_topic", False),
        frozenset(words),
    )


def test_the_shipped_judgement_was_trained_by_the_command_and_reads_back_as_written() -> None:
    model = shipped()
    assert model.about["command"] == "python -m benchmarks.judgement"
    assert len(model.words) >= 20 and 0.0 < model.threshold < 1.0
    assert Judgement.from_json(model.to_json()) == model
    assert Judgement.from_json(model.to_json()).identity == model.identity
    changed = replace(model, words={**model.words, "后来": model.words.get("后来", 0.0) + 0.1})
    assert changed.identity != model.identity


def test_more_of_the_question_held_is_never_less_likely_an_answer() -> None:
    model = shipped()
    assert model.coverage > 0
    low, high = (model.probability(evidence(c, "石破茂", "说")) for c in (0.3, 0.9))
    assert 0.0 < low < high < 1.0


@pytest.mark.parametrize("rule", ["lacks_a_number", "off_topic"])
def test_the_rules_the_training_questions_cannot_teach_decline_whatever_the_probability(
    rule: str,
) -> None:
    sure = Judgement(bias=50.0, coverage=0.0, words={}, threshold=0.5)
    assert sure.answers(evidence(), sure.probability(evidence()))
    ruled = evidence(1.0, **{rule: True})
    assert not sure.answers(ruled, sure.probability(ruled))


def made_up_questions(subjects: int, seed: int = 0) -> list[Example]:
    """Questions about `subjects` articles: answerable ones asking what was said (怎么), one
    in five unanswerable asking what came later (后来); coverage alone tells them apart only
    a little; each names its article's own person."""
    rng = random.Random(seed)
    examples = []
    for n in range(subjects):
        person = f"人物{n}"
        for _ in range(4):
            examples.append(
                Example(evidence(rng.uniform(0.4, 1.0), person, "怎么", "的"), True, person)
            )
        later = evidence(rng.uniform(0.3, 0.9), person, "后来", "的")
        examples.append(Example(later, False, f"{person} 后来"))
    return examples


def test_training_learns_the_kinds_of_question_not_their_topics() -> None:
    model, figures = train(made_up_questions(60))
    assert model.words["后来"] < 0 < model.words["怎么"]
    # a person is asked about in one article's questions: a topic, not a kind of question
    assert not any(word.startswith("人物") for word in model.words)
    assert figures["answered"] >= ANSWERED
    assert figures["declined"] > 0.9  # the folds: questions about other articles
    unseen = evidence(0.8, "人物999", "后来")
    assert not model.answers(unseen, model.probability(unseen))
    asked = evidence(0.8, "人物999", "怎么")
    assert model.answers(asked, model.probability(asked))


def test_the_kind_words_a_decline_never_names_are_those_that_name_nothing() -> None:
    assert not any(map(names_something, ["后来", "觉得", "那边", "到底", "一共", "现在"]))
    assert all(map(names_something, ["香港", "拜登", "川普", "石破茂"]))  # 川普: not known whole
    model = shipped()
    assert {"后来", "最后", "觉得"} <= model.unnamed <= set(model.words)
    assert "香港" not in model.unnamed
