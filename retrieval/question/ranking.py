"""From a question to a ranking, and to a judgement of whether the archive answers it.

A passage's score is its BM25Okapi score (rank_bm25's formula, on the passage's own terms)
plus its article's BM25 score (the article as one document: title twice, captions, all its
passages), times a factor for the kind of answer the question asks for (retrieval.question.cues).
The first twenty so ranked (and, for a question that stands alone, the passages nearest it
in meaning) are then ranked again by a model learned from people's questions
(retrieval.question.ranker), over their scores, the question's Chinese characters each holds
(people's words and the article's often share characters, not words: 死伤 against
死亡…受伤, 多大岁数 against 享年80岁) and, when the library has a model of meaning
(retrieval.question.meaning), how close each passage, read with its article's title, is to
the question in meaning (a follow-up's meaning partly read after its earlier question).
A follow-up that leans on an earlier question (他/那/这次…, or ending in 呢) is read with
that question's terms: fully for finding the article, a little for finding the passage.
Every number is a RankingSettings field, learned or measured on people's questions and on CMRC
(docs/quality.md).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from retrieval.question import judgement as judgement_model
from retrieval.question import ranker as ranker_model
from retrieval.question.analysis import Analyzer, chinese_characters
from retrieval.question.cues import AskedCues, CueGains, asked_cues
from retrieval.question.english import Reading
from retrieval.question.judgement import Evidence, Judgement
from retrieval.question.ranker import Ranker

# A question leans on what was asked before when it points back (pronouns, demonstratives,
# 当时/之前/后来), goes on (starts with 那/还有/然后…), or is elliptic (ends with 呢).
LEANS_ON_CONTEXT = re.compile(
    r"\A(?:那|那么|还有|后来|然后|另外|此外|而且|所以|接着|再|又)"
    r"|他|她|它|其|对方|该|此|这个|这些|这笔|这次|这件|这项|这种|这样|这么|那些|那边|那里"
    r"|当时|之前|后来|呢\W*\Z"
)
NUMBER_OF_TWO_DIGITS = re.compile(r"\d\d")
# a pronoun that points back to what was asked before (他, 她们, 它), not 其他 (others)
REFERS_BACK = re.compile(r"(?<!其)[他她它]")


@dataclass(frozen=True)
class RankingSettings:
    """Every number the ranking and the judgement use, as one value handed to the engine
    (Library): tests and benchmarks pass another instead of changing the code. The defaults
    are the shipped ones, each measured on people's questions and on CMRC (docs/quality.md)."""

    article_weight: float = 1.0  # the article score's weight beside the passage's own BM25
    cues: CueGains = field(default_factory=CueGains)
    # A follow-up's earlier question picks the article, its own words pick the passage;
    # "leaned": only when the question leans on it (leans_on_context), or "never", "always".
    context: Literal["leaned", "never", "always"] = "leaned"
    # (2 and .5 chosen on train's follow-ups, grouped folds: docs/quality.md)
    context_article_weight: float = 2.0
    context_passage_weight: float = 0.5
    context_decay: float = 0.5  # each question further back counts this much less
    # A follow-up's meaning is its own words' and, weighing context_meaning_weight, its words
    # read after the earlier question's: alone, 他们说了什么 is near every article's quotes.
    context_meaning_weight: float = 0.25
    # The first ranked_depth passages by terms (with the nearest by meaning) are ranked again
    # by the learned ranker (retrieval.question.ranker); None keeps the terms' order (for
    # measuring what it adds).
    ranked_depth: int = 20
    ranker: Ranker | None = field(default_factory=ranker_model.shipped)
    # A question that stands alone is also compared with every embedded passage, and the
    # dense_candidates nearest by meaning join those the meaning stage ranks, with their own
    # scores: a passage that says it in other words can still be found. Not for a follow-up:
    # its own words (那他怎么回应) are near every article's quotes (docs/quality.md).
    dense_candidates: int = 5
    # An English question about Chinese articles is read as the Chinese words, of those its
    # words are glossed as, that the read_across_nearest passages nearest it in meaning use
    # (retrieval.question.english; measured in docs/quality.md).
    read_across_nearest: int = 50
    # Whether the first hit answers: learned from people's questions
    # (retrieval.question.judgement); None judges every hit an answer (for measuring).
    judgement: Judgement | None = field(default_factory=judgement_model.shipped)
    # A followed topic is pushed from a new article only when the article holds at least
    # topic_coverage of the topic's weight (its words by how rare each is), and the passage
    # pushed, read with its article's title, topic_passage_coverage: nobody asked this time,
    # so an article that shares a name with the topic (another story) must not reach it
    # (retrieval.question.topics; measured in docs/quality.md).
    topic_coverage: float = 0.75
    topic_passage_coverage: float = 0.6


SHIPPED = RankingSettings()


@dataclass(frozen=True)
class Question:
    """A question as the engine reads it."""

    terms: tuple[str, ...]  # its own index terms (what is highlighted)
    passage_weights: dict[int, float]  # term id → weight in the passage query
    article_weights: dict[int, float]  # term id → weight in the article query
    asked: AskedCues
    characters: frozenset[str]  # its Chinese characters (characters_held)
    read_with: tuple[str, ...] = ()  # the earlier questions it leans on, oldest first


def leans_on_context(normalized_question: str) -> bool:
    """Whether a question only makes sense after an earlier one (那以色列有回应吗)."""
    return bool(LEANS_ON_CONTEXT.search(normalized_question))


def read_question(
    analyzer: Analyzer,
    question: str,
    context: Sequence[str],
    query_terms: Callable[[str], list[str]],
    vocab: dict[str, int],
    settings: RankingSettings = SHIPPED,
) -> Question:
    """A question's weighted terms, with the context it leans on (none if it stands alone)."""
    terms = query_terms(question)
    own = Counter(vocab[t] for t in terms if t in vocab)
    passage_weights: dict[int, float] = dict(own)
    article_weights: dict[int, float] = dict(own)
    normalized = analyzer.normalize(question)
    context = tuple(c for c in context if c.strip())
    read_with: tuple[str, ...] = ()
    leans = settings.context == "always" or (
        settings.context == "leaned" and leans_on_context(normalized)
    )
    if context and leans:
        read_with = context
        earlier: dict[int, float] = {}
        for age, text in enumerate(reversed(context)):
            for t in query_terms(text):
                if t in vocab:
                    earlier[vocab[t]] = max(earlier.get(vocab[t], 0.0), settings.context_decay**age)
        for term, weight in earlier.items():
            passage_weights[term] = (
                passage_weights.get(term, 0.0) + settings.context_passage_weight * weight
            )
            article_weights[term] = (
                article_weights.get(term, 0.0) + settings.context_article_weight * weight
            )
    return Question(
        tuple(terms),
        passage_weights,
        article_weights,
        asked_cues(normalized),
        chinese_characters(normalized),
        read_with,
    )


def read_across(
    question: Question,
    readings: Sequence[Reading],
    query_terms: Callable[[str], list[str]],
    vocab: dict[str, int],
    used_nearby: Callable[[str], bool],
) -> Question:
    """A question in English about Chinese articles, with its phrases read in Chinese words
    (retrieval.question.english): each of a phrase's words weighs its share of the phrase,
    as one of its readings. Of its own terms, those of another script stay only where the
    passages nearest it in meaning use them (TikTok, FDA; not is, did), and the Chinese names
    the articles gloss in English (Kovrig: 康明凯) stay."""
    terms = [t for t in question.terms if t in vocab and (not t.isascii() or used_nearby(t))]
    weights = {vocab[t]: question.passage_weights[vocab[t]] for t in terms}
    characters = set(question.characters)
    for reading in readings:
        for word in reading.words:
            word_terms = [t for t in query_terms(word) if t in vocab]
            terms += word_terms
            characters |= chinese_characters(word)
            for term in word_terms:
                weights[vocab[term]] = weights.get(vocab[term], 0.0) + 1.0 / len(reading.words)
    return replace(
        question,
        terms=tuple(dict.fromkeys(terms)),
        passage_weights=weights,
        article_weights=dict(weights),
        characters=frozenset(characters),
    )


def combine(
    passage_scores: np.ndarray,
    article_scores: np.ndarray,
    cue_factors: np.ndarray | float,
    article_weight: float,
) -> np.ndarray:
    """The score that ranks, for candidate passages (all arrays aligned). A cue raises a
    score by its share of the score's size: in a small library BM25 is negative (rank_bm25's
    idf of a term in most of the documents), and multiplying would lower the passages that
    show what was asked for."""
    scores = passage_scores + article_weight * article_scores
    return scores + np.abs(scores) * (np.asarray(cue_factors) - 1.0)


def characters_held(question_characters: frozenset[str], normalized_text: str) -> float:
    """The share of the question's Chinese characters (Question.characters) a passage holds
    (0 when it has none): the ranker's second feature, as people's words and the article's
    often share characters, not words."""
    if not question_characters:
        return 0.0
    return sum(c in normalized_text for c in question_characters) / len(question_characters)


def follow_up_meaning(own: np.ndarray, read_after: np.ndarray, weight: float) -> np.ndarray:
    """A follow-up's unit vector: its own (`own`) and its words read after the earlier
    question's (`read_after`), the second weighing `weight` (0 to 1)."""
    mixed = (1.0 - weight) * own + weight * read_after
    norm = float(np.linalg.norm(mixed))
    return own if norm == 0.0 else (mixed / norm).astype(own.dtype)


# --- does the archive answer it? -----------------------------------------------------------


# A text's content words as the judgement reads them (Analyzer.content_words): runs of
# neighbouring words, each (as matched, as written).
Words = Sequence[Sequence[tuple[str, str]]]


def words_found(
    analyzer: Analyzer, question: str, normalized_text: str
) -> tuple[list[str], list[str]]:
    """The question's content words the text has and those it lacks, as the user wrote them
    (`found_in` of its content words)."""
    return found_in(analyzer.content_words(question), normalized_text)


def found_in(words: Words, normalized_text: str) -> tuple[list[str], list[str]]:
    """Of content words (`Words`), those the text has and those it lacks, as written.

    Neighbouring words found together count as one (纳瓦尔 + 尼 → 纳瓦尔尼); a lone character
    the text lacks is not reported (it is rarely a word on its own)."""
    present: list[str] = []
    missing: list[str] = []
    for run in words:
        lone: list[tuple[str, str]] = []  # single characters not found, joined when adjacent
        i = 0
        while i < len(run):
            found = 0
            # words joined from this one on are in the text only if this one is
            first_matched, first_written = run[i]
            start = first_matched in normalized_text or first_written.lower() in normalized_text
            for j in range(min(len(run), i + 4) if start else i, i, -1):  # the longest found
                matched = "".join(m for m, _ in run[i:j])
                written = "".join(w for _, w in run[i:j])
                if ((len(matched) >= 2 or matched.isdigit()) and matched in normalized_text) or (
                    len(written) >= 2 and written.lower() in normalized_text
                ):
                    found = j
                    break
            if found:
                _report_lone(lone, missing)
                present.append("".join(w for _, w in run[i:found]))
                i = found
                continue
            matched, written = run[i]
            if len(matched) == 1 and not matched.isdigit():
                lone.append(run[i])
            else:
                _report_lone(lone, missing)
                missing.append(written)
            i += 1
        _report_lone(lone, missing)
    return present, missing


def _report_lone(lone: list[tuple[str, str]], missing: list[str]) -> None:
    if sum(len(matched) for matched, _ in lone) >= 2:
        missing.append("".join(written for _, written in lone))
    lone.clear()


def share_found(
    present: Sequence[str], missing: Sequence[str], idf_of: Callable[[str], float]
) -> float:
    """The share of words found, each weighed by how rare it is (1.0 when there are none)."""
    covered = sum(map(idf_of, present))
    total = covered + sum(map(idf_of, missing))
    return covered / total if total else 1.0


@dataclass(frozen=True)
class Coverage:
    """How much of a question's content words a text holds."""

    share: float  # of the words, each weighed by how rare it is (1.0 when there are none)
    missing: tuple[str, ...]  # the words it lacks, as the user wrote them
    lacks_a_number: bool  # one of those is a number of two digits or more
    holds_a_word: bool  # the text holds at least one of the words (earlier ones aside)


def covered(
    words: Words,
    earlier: Sequence[Words],
    normalized_text: str,
    idf_of: Callable[[str], float],
) -> Coverage:
    """How much of a question's content words (`Words`) a text holds, with those of the
    earlier question it leans on (`earlier`: none, or the last one's; never reported
    missing)."""
    present, missing = found_in(words, normalized_text)
    earlier_present: list[str] = []
    earlier_missing: list[str] = []
    for earlier_words in earlier[-1:]:
        earlier_present, earlier_missing = found_in(earlier_words, normalized_text)
    return Coverage(
        share_found(present + earlier_present, missing + earlier_missing, idf_of),
        tuple(missing),
        any(NUMBER_OF_TWO_DIGITS.search(word) for word in missing),
        any(matched in normalized_text for run in words for matched, _ in run),
    )


@dataclass(frozen=True)
class Verdict:
    """Whether the first hit answers the question, and why."""

    confident: bool
    missing: tuple[str, ...]  # the question's content words its article lacks, as written
    probability: float | None = None  # the learned judgement's (None: no hit, or none asked)
    evidence: Evidence | None = None  # what it weighed (None: no hit)


def judge(
    analyzer: Analyzer,
    question: str,
    read_with: Sequence[str],
    normalized_article: str | None,
    idf_of: Callable[[str], float],
    judgement: Judgement | None,
) -> Verdict:
    """Whether the first hit's article (None: no hit) answers the question, by the learned
    judgement (None: every hit answers, for measuring what the judgement adds)."""
    words = analyzer.content_words(question)
    if normalized_article is None:
        return Verdict(False, tuple(found_in(words, "")[1]))
    earlier = [analyzer.content_words(text) for text in read_with[-1:]]
    coverage = covered(words, earlier, normalized_article, idf_of)
    # A follow-up whose own words the article holds none of, and that does not point back
    # with a pronoun, asks about something else (那高铁呢 after a question on a typhoon),
    # however well the earlier question is covered; one that points back (那他怎么反驳的)
    # asks more of the same subject, in words the article may not use.
    normalized = analyzer.normalize(question)
    off_topic = bool(earlier) and not coverage.holds_a_word and not REFERS_BACK.search(normalized)
    evidence = Evidence(
        coverage.share, coverage.lacks_a_number, off_topic, analyzer.question_words(normalized)
    )
    if judgement is None:
        return Verdict(True, coverage.missing, None, evidence)
    probability = judgement.probability(evidence)
    missing = tuple(w for w in coverage.missing if analyzer.normalize(w) not in judgement.unnamed)
    return Verdict(judgement.answers(evidence, probability), missing, probability, evidence)
