"""Topic alerts: which new articles answer the topics chats follow. Pure functions.

A topic is a question or a few words a chat follows (`Topic`): read once, when it is followed
(its content words, their terms, its index terms), and kept as JSON (`Topic.dumps`). When new
articles arrive, each topic is judged against each new article by what the article holds of
it (retrieval.question.ranking.covered: the topic's rarer words, and its numbers), with the
archive's global statistics. Not by the learned judgement of questions: its words of
question kinds (后来, 怎么) say what a question asks now, and a topic is followed for what is
to come.

Judging 10,000 topics against every new article would cost 10,000 × the refresh; an inverted
match keeps it to the topics that could pass. An article covers at least a share `c` of a
topic's weight (its words' idf, summed) only if it holds one of the topic's rarest words
whose weights add up to more than 1 − c of it (prefix filtering, as in set-similarity joins):
lacking all of them, it lacks more than 1 − c. So each topic is filed under those words only,
by a two-character piece of each (a text holding the word holds every piece of it), and an
article is judged only with the topics filed under a piece it holds: one set lookup a piece
of the article, whatever the archive's size (`TopicIndex`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from retrieval.question import ranking

# A key: a piece of a word that every text holding the word holds (its rarest two characters
# in a row, or the word itself when shorter).
KEY_CHARS = 2
TOPIC_FORMAT = 1  # bump when what `Topic.dumps` writes changes
JOINED_MARGIN = 1.5  # see TopicIndex._may_cover


@dataclass(frozen=True)
class Topic:
    """A followed topic as the engine read it, once."""

    text: str  # as the chat wrote it (whitespace normalised)
    words: tuple[tuple[tuple[str, str], ...], ...]  # content words (ranking.Words)
    word_terms: tuple[tuple[str, tuple[str, ...]], ...]  # each word as written → its terms
    terms: tuple[str, ...]  # its index terms, as a question's (names found included)
    analyzer: str  # the fingerprint of the analysis that read it (stale when it changes)
    vector: tuple[float, ...] = ()  # its meaning (a unit vector), if the engine has a model

    @property
    def weighed_words(self) -> list[tuple[str, str]]:
        """The content words that count in a judgement: two characters or more, or a number
        (a lone character is never found on its own)."""
        return [
            (matched, written)
            for run in self.words
            for matched, written in run
            if len(matched) >= 2 or matched.isdigit()
        ]

    def dumps(self) -> str:
        """The topic as one line of JSON (what the bot stores)."""
        return json.dumps(
            {
                "format": TOPIC_FORMAT,
                "text": self.text,
                "words": self.words,
                "word_terms": self.word_terms,
                "terms": self.terms,
                "analyzer": self.analyzer,
                "vector": self.vector,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )

    @classmethod
    def loads(cls, text: str) -> Topic | None:
        """A topic from `dumps`; None when it is of another format (read it again)."""
        try:
            data = json.loads(text)
            if data.get("format") != TOPIC_FORMAT:
                return None
            return cls(
                data["text"],
                tuple(tuple((m, w) for m, w in run) for run in data["words"]),
                tuple((w, tuple(terms)) for w, terms in data["word_terms"]),
                tuple(data["terms"]),
                data["analyzer"],
                tuple(float(x) for x in data["vector"]),
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None


def text_keys(normalized: str) -> set[str]:
    """Every key a normalised text holds: its characters and pairs of neighbouring ones."""
    keys = set(normalized)
    keys.update(normalized[i : i + KEY_CHARS] for i in range(len(normalized) - 1))
    return keys


def rarest_piece(word: str, rarity: Callable[[str], float]) -> str:
    """The piece of a word a text holding it is filed under: its rarest pair of characters
    (by `rarity`: a bigram's idf), so that few texts share it."""
    pieces = [word[i : i + KEY_CHARS] for i in range(max(len(word) - KEY_CHARS + 1, 1))]
    return max(pieces, key=rarity)


def filed_under(
    topic: Topic,
    idf_of: Callable[[str], float],
    coverage: float,
    rarity: Callable[[str], float] = lambda _: 0.0,
) -> tuple[set[str], tuple[str, ...], tuple[str, ...]]:
    """The keys a topic is filed under: a piece (`rarest_piece`) of each of its rarest words,
    enough of them that an article lacking all of them cannot cover `coverage` of the topic's
    weight; and each lone character with its neighbours. With the keys, what an article
    must hold one of for the topic to be judged at all (those words, those pairs), and the
    pairs alone."""
    weighed = sorted(
        ((idf_of(written), matched, written) for matched, written in topic.weighed_words),
        key=lambda item: -item[0],
    )
    total = sum(weight for weight, _, _ in weighed)
    keys: set[str] = set()
    needed: set[str] = set()
    lone: set[str] = set()
    kept = 0.0
    for weight, matched, written in weighed:
        needed.add(matched)
        keys.add(rarest_piece(matched, rarity))
        if len(written) >= 2:  # words_found also finds a word as written (Trump, LNG)
            needed.add(written.lower())
            keys.add(rarest_piece(written.lower(), rarity))
        kept += weight
        if kept > (1 - coverage) * total:
            break
    # A lone character counts when found with a neighbour (美 + 日 → 美日, 纳瓦尔 + 尼): such
    # a pair is in the text whenever the joined words are.
    for run in topic.words:
        for i, (matched, written) in enumerate(run):
            if len(matched) != 1 or matched.isdigit():
                continue
            pairs = []
            if i > 0:
                pairs += [run[i - 1][0][-1:] + matched, (run[i - 1][1][-1:] + written).lower()]
            if i + 1 < len(run):
                pairs += [matched + run[i + 1][0][:1], (written + run[i + 1][1][:1]).lower()]
            lone.update(pairs)
    return keys | lone, tuple(needed | lone), tuple(lone)


class TopicIndex:
    """Topics filed under the keys of their rarest words (see the module's docstring)."""

    def __init__(
        self,
        topics: Sequence[Topic],
        idf_of: Callable[[str], float],
        coverage: float,
        rarity: Callable[[str], float] = lambda _: 0.0,
    ) -> None:
        self.topics = topics
        self.coverage = coverage
        self._filed: dict[str, list[int]] = defaultdict(list)
        self._needed: list[tuple[str, ...]] = []
        # each topic's words with their weights, and its lone characters' pairs: for a bound
        self._weighed: list[list[tuple[str, str, float]]] = []
        self._pairs: list[list[str]] = []
        for number, topic in enumerate(topics):
            keys, needed, lone = filed_under(topic, idf_of, coverage, rarity)
            for key in keys:
                self._filed[key].append(number)
            self._needed.append(needed)
            self._weighed.append([(m, w.lower(), idf_of(w)) for m, w in topic.weighed_words])
            self._pairs.append(list(lone))

    def candidates(self, text: str) -> list[int]:
        """The topics (positions) an article's normalised text could answer: filed under
        one of its keys, and holding one of the words they were filed by."""
        filed = self._filed
        found: set[int] = set()
        for key in text_keys(text):
            numbers = filed.get(key)
            if numbers:
                found.update(numbers)
        needed = self._needed
        return [
            n
            for n in sorted(found)
            if any(word in text for word in needed[n]) and self._may_cover(n, text)
        ]

    def _may_cover(self, number: int, text: str) -> bool:
        """Whether the text might cover the topic's share: its words found one by one (and
        its lone characters' pairs), with a margin, against those it lacks, by weight."""
        found = lacking = 0.0
        for matched, written, weight in self._weighed[number]:
            if matched in text or (len(written) >= 2 and written in text):
                found += weight
            else:
                lacking += weight
        if any(pair in text for pair in self._pairs[number]):
            return True  # lone characters found together: weighed as only a judgement can
        # words found together weigh by their rarest term, which can weigh more than both
        # apart (希望 + 政府 → 希望政府): a margin keeps such a pair in (tests/test_topics.py)
        found *= JOINED_MARGIN
        total = found + lacking
        return not total or found / total >= self.coverage


def answered(
    topics: Sequence[Topic],
    texts: Sequence[str],
    idf_of: Callable[[str], float],
    settings: ranking.RankingSettings = ranking.SHIPPED,
    rarity: Callable[[str], float] = lambda _: 0.0,
) -> list[tuple[int, int]]:
    """(topic, text) positions of each topic an article's normalised text answers: it holds
    settings.topic_coverage of the topic's weight and every number of it. Topics filed under
    none of a text's keys are not judged (they could not pass); `rarity` picks the pieces
    they are filed under. A topic without a word that counts (为什么黄了) answers nothing."""
    coverage = settings.topic_coverage
    index = TopicIndex(topics, idf_of, coverage, rarity)
    pairs: list[tuple[int, int]] = []
    for t, text in enumerate(texts):
        for number in index.candidates(text):
            held = ranking.covered(topics[number].words, (), text, idf_of)
            if held.share >= coverage and not held.lacks_a_number:
                pairs.append((number, t))
    return pairs
