"""The data passed between the retrieval modules and to the bot: small frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrieval.question.judgement import Evidence

# The longest query worth analysing: the cost grows with its length (a 1 MB one took 56 s)
# and 1,000 characters is far more than any real question. The bot and the CLI cut to it.
MAX_QUERY_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Paragraph:
    """One block of an article's body as a reader sees it, with the heading it falls under."""

    text: str
    section: str | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """One news item parsed from a seed file."""

    id: str
    title: str
    url: str
    published: datetime  # always timezone-aware (UTC)
    paragraphs: tuple[Paragraph, ...]
    captions: tuple[str, ...] = ()  # photo captions: what the article is about, never answers
    dateline: str | None = None
    source: str = ""  # seed file path, relative to the seeds directory

    @property
    def first_sentence(self) -> str:
        """The lead of the article: its first paragraph up to the first sentence end."""
        for paragraph in self.paragraphs:
            text = paragraph.text.strip()
            if text:
                for i, ch in enumerate(text):
                    if ch in "。！？!?" and i >= 8:
                        return text[: i + 1]
                return text
        return self.captions[0] if self.captions else ""


@dataclass(frozen=True, slots=True)
class ArticleRef:
    """An article as listed without reading it: what tells articles apart and orders them."""

    id: str
    url: str
    published: datetime


@dataclass(frozen=True, slots=True)
class Passage:
    """The unit of retrieval: one paragraph (or sentence-split piece of one) of an article."""

    id: str  # "<article id>:<ordinal>"
    ordinal: int
    text: str  # original text, exactly as shown to readers
    section: str | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage that matched a query, with its article and the score that ranked it (BM25 of
    the passage and its article, then the ranking's later stages: retrieval.question.ranking)."""

    score: float
    passage: Passage
    article: Article
    # character spans [start, end) of passage.text that match query terms, for highlighting
    spans: tuple[tuple[int, int], ...] = ()
    # for a passage that quotes someone it does not name (他说：“…”), the article's words that
    # name them (retrieval.articles.speaker); shown beside the passage, never changing it
    speaker: str | None = None


@dataclass(frozen=True, slots=True)
class Candidate:
    """A passage the learned ranker orders, with what it weighs of it
    (retrieval.question.ranker.FEATURES, or BY_WORDS without a model of meaning)."""

    passage: Passage
    article: Article
    features: tuple[float, ...]
    nearest: bool  # joined by meaning (its terms did not put it among the first)


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The best passages for a question, and whether they answer it."""

    hits: tuple[Hit, ...]
    # the engine's judgement that the first hit answers the question: its learned probability
    # reached the threshold (retrieval.question.judgement)
    confident: bool
    missing: tuple[str, ...]  # the question's words, as written, that the article lacks
    read_with: str | None = None  # the earlier question a follow-up was read with
    probability: float | None = None  # the judgement's (None: no hit, or not judged)
    evidence: Evidence | None = None  # what the judgement weighed (None: no hit)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A seed file that could not be understood, and why."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class LibraryStats:
    """What the library holds."""

    articles: int
    passages: int
    newest: datetime | None
    skipped: tuple[SkippedFile, ...] = ()
    segments: int = 1  # the index's segments (merges bring them down)


@dataclass(frozen=True, slots=True)
class TopicMatch:
    """A new article that answers a followed topic, with its best passage for it."""

    topic: int  # the topic's position in the sequence matched
    hit: Hit
