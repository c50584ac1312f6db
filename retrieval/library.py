"""The Library: the index's state as served, and searches over it (Lucene's SearcherManager
role). Its keeper (retrieval.index.keeper) hands it each new state; it never writes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache, partial

import numpy as np

from retrieval.articles import speaker
from retrieval.index import store
from retrieval.index.segments import Index, Ranked
from retrieval.index.vectors import Vectors
from retrieval.models import (
    Article,
    ArticleRef,
    Candidate,
    Hit,
    LibraryStats,
    Passage,
    SearchResult,
    SkippedFile,
    TopicMatch,
)
from retrieval.question import english, ranking, topics
from retrieval.question.analysis import Analyzer, latin_words, written_in
from retrieval.question.topics import Topic

log = logging.getLogger(__name__)


def read_for_meaning(article: Article, passage: Passage) -> str:
    """A passage as the model reads it: with its article's title, which says what it is about."""
    return f"{article.title}。{passage.text}"


@dataclass(frozen=True)
class _Found:
    """A ranked passage, decoded."""

    ranked: Ranked
    place: tuple[int, int]  # (segment, article number)
    article: Article
    passage: Passage


class _Snapshot:
    """A state with what queries need precomputed. Never changed once made."""

    def __init__(self, state: store.State, normalize: Callable[[str], str]) -> None:
        self.state = state
        self.index = Index(state)
        self._normalize = normalize
        # decoded articles and their passages: replies often show several of one article
        self.cut = lru_cache(maxsize=1024)(self._cut)
        # an answer's article as judged (see ranking.judge): its pages and follow-ups ask again
        self.normalized_text = lru_cache(maxsize=1024)(self._normalized_text)
        # passages as the characters' ranking reads them, and titles: pages and topic alerts
        # read the same ones again
        self.normalized = lru_cache(maxsize=8192)(normalize)
        self.normalized_title = lru_cache(maxsize=1024)(self._normalized_title)

    def _cut(self, segment: int, number: int) -> tuple[Article, list[Passage]]:
        return self.index.segments[segment].article(number)

    def _normalized_text(self, segment: int, number: int) -> str:
        article = self.cut(segment, number)[0]
        return self._normalize(
            "\n".join([article.title, *article.captions, *(p.text for p in article.paragraphs)])
        )

    @cached_property
    def stats(self) -> LibraryStats:
        # once per state: a health check every few milliseconds costs nothing after the first
        return stats_of(self.state)

    @cached_property
    def written_in(self) -> str | None:
        """The script the archive is mostly written in (analysis.written_in), read from up
        to 200 titles of each segment (Library.serve reads it when there is a model)."""
        titles = [
            self.normalized_title(i, int(number))
            for i, segment in enumerate(self.index.segments)
            for number in np.flatnonzero(segment.live_articles)[:200]
        ]
        return written_in("\n".join(titles))

    def _normalized_title(self, segment: int, number: int) -> str:
        return self._normalize(self.cut(segment, number)[0].title)

    def decode(self, ranked: Ranked) -> _Found:
        """A ranked passage with its article, decoded."""
        a = self.index.segments[ranked.segment].arrays
        place = (ranked.segment, int(a["passage_article"][ranked.passage]))
        article, passages = self.cut(*place)
        return _Found(ranked, place, article, passages[int(a["passage_ordinal"][ranked.passage])])

    def wanted(self, found: _Found) -> tuple[str, int, int, str]:
        """What the passage vectors need of a found passage (Vectors.rows)."""
        segment = self.index.segments[found.ranked.segment]
        text = read_for_meaning(found.article, found.passage)
        return segment.name, segment.n_passages, found.ranked.passage, text

    @cached_property
    def newest_first(self) -> list[ArticleRef]:
        """Every article, newest first; ties by id, so the order never depends on how the
        index was built. Worked out when first asked for (a search never needs it)."""
        found = []
        for aid, (segment, number) in self.where.items():
            record = self._records[segment][number]
            found.append((-record.published_ms, aid, record.url or ""))
        found.sort()
        return [
            ArticleRef(aid, url, datetime.fromtimestamp(-ms / 1000, tz=UTC))
            for ms, aid, url in found
        ]

    @cached_property
    def _records(self) -> list[dict[int, store.FileRecord]]:
        """Per segment, article number → the record of the file it came from."""
        position = {s.name: i for i, s in enumerate(self.state.segments)}
        records: list[dict[int, store.FileRecord]] = [{} for _ in self.state.segments]
        for record in self.state.files.values():
            if record.segment is not None:
                records[position[record.segment]][record.article_number or 0] = record
        return records

    @cached_property
    def where(self) -> dict[str, tuple[int, int]]:
        """Article id → (segment, article number); the id is the one stored with the article
        (no URL to canonicalise and hash again)."""
        where = {}
        for i, segment in enumerate(self.state.segments):
            keys = segment.arrays["article_key"].tolist()
            for number in self._records[i]:
                where[f"{keys[number]:016x}"] = (i, number)
        return where


class Library:
    """Searches over the state its keeper serves.

    Thread-safe: a search reads one immutable snapshot; `serve` swaps in the next one, so
    answering never waits for a change. `ranking` holds every number the ranking uses.
    """

    def __init__(
        self,
        analyzer: Analyzer,
        vectors: Vectors | None = None,
        ranking_settings: ranking.RankingSettings = ranking.SHIPPED,
    ) -> None:
        self.analyzer = analyzer
        self.vectors = vectors  # the passages' meaning; None: rank by terms and characters
        self.meaning = vectors.meaning if vectors is not None else None
        self.ranking = ranking_settings
        self._snapshot: _Snapshot | None = None

    def serve(self, state: store.State) -> None:
        """Answer from this state from now on (searches under way finish on the one before)."""
        snapshot = _Snapshot(state, self.analyzer.normalize)
        if self.vectors is not None:
            self.vectors.keep_only([s.name for s in state.segments])
            # read here, in the keeper's thread, not by the first question after a refresh
            _ = snapshot.written_in
        self._snapshot = snapshot

    @property
    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        assert snapshot is not None, "the library's keeper has not served a state yet"
        return snapshot

    # --- questions ----------------------------------------------------------------------------

    def rank(self, query: str, k: int = 5, *, context: Sequence[str] = ()) -> list[Ranked]:
        """The k best passages for the query by their terms alone, best first: search's first
        stage, before anything is decoded (and so before the characters count)."""
        snap = self._current
        return snap.index.rank(self._read(snap, query, context), k, self.ranking)

    def query_terms(self, query: str) -> list[str]:
        """The index terms a query is scored on (names the articles gloss included)."""
        return self._query_terms(self._current, query)

    def _query_terms(self, snap: _Snapshot, text: str) -> list[str]:
        return self.analyzer.query_terms(text, snap.index.names, snap.index.glosses)

    def _read(self, snap: _Snapshot, query: str, context: Sequence[str]) -> ranking.Question:
        query_terms = partial(self._query_terms, snap)
        return ranking.read_question(
            self.analyzer, query, context, query_terms, snap.index.vocab, self.ranking
        )

    def search(self, query: str, k: int = 5, *, context: Sequence[str] = ()) -> SearchResult:
        """The k passages that best answer the query, best first, and whether they do.

        `context`: the earlier questions of a conversation, oldest first; used only when the
        query leans on them (a follow-up such as 那以色列有回应吗)."""
        with self.meaning.searching() if self.meaning is not None else nullcontext():
            return self._search(query, k, context)

    def _search(self, query: str, k: int, context: Sequence[str]) -> SearchResult:
        snap, settings = self._current, self.ranking
        question = self._read(snap, query, context)
        if not question.read_with and self._across_scripts(snap, query):
            across = self._across(snap, question, query, k)
            if across is not None:
                return across
        found, meant, nearest = self._found(snap, question, query, k)
        scored = self._ranked_again(snap, found, question, meant, nearest)
        hits = tuple(self._hit(snap, f, score, question.terms) for f, score in scored[:k])
        verdict = ranking.judge(
            self.analyzer,
            query,
            question.read_with,
            snap.normalized_text(*scored[0][0].place) if hits else None,
            partial(self._idf_of_word, snap.index),
            settings.judgement,
        )
        return SearchResult(
            hits,
            verdict.confident,
            verdict.missing,
            question.read_with[-1] if question.read_with else None,
            verdict.probability,
            verdict.evidence,
        )

    def candidates(self, query: str, *, context: Sequence[str] = ()) -> tuple[Candidate, ...]:
        """The passages the learned ranker orders for this query, as they come to it, with
        the features it weighs (retrieval.question.ranker): what its training learns from.
        A question is read as written: `search` reads one in English about Chinese articles
        in their words first, once the archive is embedded (Library._across)."""
        with self.meaning.searching() if self.meaning is not None else nullcontext():
            snap = self._current
            question = self._read(snap, query, context)
            found, meant, nearest = self._found(snap, question, query, 0)
            first, features = self._candidates(snap, found, question, meant, nearest)
            by_terms = len(first) - len(nearest)  # the nearest by meaning come last
            return tuple(
                Candidate(f.passage, f.article, tuple(map(float, row)), i >= by_terms)
                for i, ((f, _), row) in enumerate(zip(first, features, strict=True))
            )

    def _found(
        self, snap: _Snapshot, question: ranking.Question, query: str, k: int
    ) -> tuple[list[Ranked], np.ndarray | None, list[Ranked]]:
        """The first passages by terms (at least k), the question's meaning (None without
        passage vectors, or when its words found nothing: 🙂🙂 is not found by meaning
        either), and the passages nearest it by meaning that join them (not for follow-ups)."""
        depth = self.ranking.ranked_depth
        found = snap.index.rank(question, max(k, depth), self.ranking)
        meant = (
            None
            if self.vectors is None or not found
            else self._meaning_of(query, question.read_with)
        )
        nearest = (
            []
            if meant is None or question.read_with
            else self._nearest(snap, question, meant, found[:depth])
        )
        return found, meant, nearest

    def _across_scripts(self, snap: _Snapshot, query: str) -> bool:
        """Whether the question is written in another script than the archive (English
        about Chinese articles): its words then cannot meet the articles' own. A lone word
        (LNG, Kovrig, a typo) is not: it is looked up as written, as the articles gloss
        names and acronyms so."""
        if self.vectors is None:
            return False
        normalized = self.analyzer.normalize(query)
        asked_in = written_in(normalized)
        if asked_in is None or asked_in == snap.written_in:
            return False
        return asked_in != "latin" or latin_words(normalized) >= 2

    def prepare_across(self) -> None:
        """Read what English questions are read with now, if the archive is Chinese, rather
        than in the first English question after (retrieval.question.english)."""
        if self._current.written_in == "han":
            english.prepare()

    def _across(
        self, snap: _Snapshot, question: ranking.Question, query: str, k: int
    ) -> SearchResult | None:
        """A question in another script than the archive's, None until every passage is
        embedded (then it is read by its words, as any question). An English question about
        Chinese articles is read in their words (retrieval.question.english), the words its
        nearest passages in meaning use, and ranked as any question; any other, or one none of
        whose words is read so, is answered by the passages nearest it in meaning alone.
        Never confident, and no word is named missing: the judgement learned from questions
        in the archive's script, and a word of another script is not one the articles hold."""
        assert self.vectors is not None
        meant = self.vectors.meaning.question(query)
        near = self._nearest_by_meaning(snap, meant, max(k, self.ranking.read_across_nearest))
        if not near:
            return None
        normalized = self.analyzer.normalize(query)
        if snap.written_in == "han" and written_in(normalized) == "latin":
            read = self._read_in_chinese(snap, question, query, normalized, near)
            depth = self.ranking.ranked_depth
            found = [] if read is None else snap.index.rank(read, max(k, depth), self.ranking)
            if read is not None and found:
                nearest = self._nearest(snap, read, meant, found[:depth], near)
                scored = self._ranked_again(snap, found, read, meant, nearest)
                hits = tuple(self._hit(snap, f, score, read.terms) for f, score in scored[:k])
                return SearchResult(hits, False, ())
        hits = tuple(
            self._hit(snap, snap.decode(Ranked(i, passage, cosine, 0.0)), cosine, question.terms)
            for cosine, i, passage in near[:k]
        )
        return SearchResult(hits, False, ())

    def _read_in_chinese(
        self,
        snap: _Snapshot,
        question: ranking.Question,
        query: str,
        normalized: str,
        near: Sequence[tuple[float, int, int]],
    ) -> ranking.Question | None:
        """An English question (`query`, and `normalized`) read in the words of Chinese
        articles that the passages nearest it in meaning (`near`) use: its phrases by the
        dictionary, its names in pinyin by their characters (retrieval.question.english).
        None if none of it is read so."""
        nearby = "\n".join(
            snap.normalized(snap.decode(Ranked(i, passage, 0.0, 0.0)).passage.text)
            for _, i, passage in near
        )
        nearby_words = frozenset(english.english_words(nearby))
        vocab = snap.index.vocab
        query_terms = partial(self._query_terms, snap)

        def usable(word: str) -> bool:
            terms = query_terms(word)
            return bool(terms) and all(t in vocab for t in terms)

        def used_nearby(word: str) -> bool:
            return word in nearby_words if word.isascii() else word in nearby

        readings = english.read_in_chinese(normalized, english.glossary(), usable, used_nearby)
        phrases = {reading.phrase for reading in readings}
        names = english.names_in_pinyin(query, nearby)
        readings += tuple(name for name in names if name.phrase not in phrases)
        if not readings:
            return None
        return ranking.read_across(question, readings, query_terms, vocab, used_nearby)

    def _meaning_of(self, query: str, read_with: Sequence[str]) -> np.ndarray:
        """The question's unit vector; a follow-up's is also read after its earlier question."""
        assert self.vectors is not None
        meaning, weight = self.vectors.meaning, self.ranking.context_meaning_weight
        if not read_with or not weight:
            return meaning.question(query)
        own, read_after = meaning.questions([query, f"{read_with[-1]} {query}"])
        return ranking.follow_up_meaning(own, read_after, weight)

    def _ranked_again(
        self,
        snap: _Snapshot,
        found: Sequence[Ranked],
        question: ranking.Question,
        question_vector: np.ndarray | None,
        nearest: Sequence[Ranked] = (),
    ) -> list[tuple[_Found, float]]:
        """Passages ranked by their terms, decoded, the first of them ranked again by the
        learned ranker (retrieval.question.ranker), the rest after them as they were."""
        first, features = self._candidates(snap, found, question, question_vector, nearest)
        joined = {(r.segment, r.passage) for r in nearest}
        rest = [
            (snap.decode(r), r.score)
            for r in found[self.ranking.ranked_depth :]
            if (r.segment, r.passage) not in joined
        ]
        ranker = self.ranking.ranker
        if ranker is None or not first:
            return first + rest
        scores = [score for _, score in first]
        floor = rest[0][1] if rest else min(scores)
        return [(first[i][0], score) for i, score in ranker.ranked(scores, features, floor)] + rest

    def _candidates(
        self,
        snap: _Snapshot,
        found: Sequence[Ranked],
        question: ranking.Question,
        question_vector: np.ndarray | None,
        nearest: Sequence[Ranked],
    ) -> tuple[list[tuple[_Found, float]], np.ndarray]:
        """The first `ranked_depth` passages by terms and the `nearest` by meaning (none of
        them among those), decoded with their scores, and each one's features for the
        ranker: its score, the question's characters it holds and, with passage vectors and
        `question_vector` (the question's meaning), its cosine with the question."""
        first = [
            (f, f.ranked.score)
            for f in map(snap.decode, [*found[: self.ranking.ranked_depth], *nearest])
        ]
        columns = [
            [score for _, score in first],
            [
                ranking.characters_held(question.characters, snap.normalized(f.passage.text))
                for f, _ in first
            ],
        ]
        if self.vectors is not None and question_vector is not None and first:
            rows = self.vectors.rows([snap.wanted(f) for f, _ in first])
            columns.append(list(rows @ question_vector))
        return first, np.array(columns, dtype=float).T.reshape(len(first), len(columns))

    def _nearest(
        self,
        snap: _Snapshot,
        question: ranking.Question,
        meant: np.ndarray,
        found: Sequence[Ranked],
        near: Sequence[tuple[float, int, int]] | None = None,
    ) -> list[Ranked]:
        """The passages nearest the question by meaning over the whole archive (once all of it
        is embedded) that its terms did not find among the first (`found`), each with its score
        as a search by terms gives it (0 if it holds none); ties go as the index breaks them,
        by what the articles are. `near`: the nearest, if already known (_nearest_by_meaning's,
        at least dense_candidates of them)."""
        k = self.ranking.dense_candidates
        if self.vectors is None or not k:
            return []
        index = snap.index
        ranked = []
        already = {(r.segment, r.passage) for r in found}
        for _, i, passage in (near or self._nearest_by_meaning(snap, meant, k))[:k]:
            if (i, passage) in already:
                continue
            segment = index.segments[i]
            article = int(segment.arrays["passage_article"][passage])
            every = segment.n_passages  # all of the article's passages that hold a term
            scores = {
                r.passage: r for r in index.rank_article(question, i, article, every, self.ranking)
            }
            ranked.append(scores.get(passage, Ranked(i, passage, 0.0, 0.0)))
        return ranked

    def _nearest_by_meaning(
        self, snap: _Snapshot, meant: np.ndarray, k: int
    ) -> list[tuple[float, int, int]]:
        """The k live passages nearest `meant` over the archive, as (cosine, segment position,
        passage), nearest first; ties go as the index breaks them, by what the articles are.
        None until every live passage is embedded (Vectors.nearest)."""
        assert self.vectors is not None
        index = snap.index

        def order(item: tuple[float, int, int]) -> tuple[float, ...]:
            cosine, i, passage = item
            return (-cosine, *(int(key[0]) for key in index.tie_keys(i, np.array([passage]))))

        return sorted(self.vectors.nearest(meant, k, index.segments), key=order)[:k]

    def _idf_of_word(self, index: Index, word: str) -> float:
        """How rare a word is among passages: its rarest index term's idf."""
        return _idf_of_terms(index, self.analyzer.terms(word))

    # --- followed topics ------------------------------------------------------------------

    def read_topic(self, text: str) -> Topic:
        """A topic to follow, read once: its content words and their terms, its index terms
        and, with a model of meaning, its vector (retrieval.question.topics)."""
        words = self.analyzer.content_words(text)
        written = dict.fromkeys(w for run in words for _, w in run)
        vector: tuple[float, ...] = ()
        if self.meaning is not None:
            vector = tuple(float(x) for x in self.meaning.question(text))
        return Topic(
            text,
            tuple(tuple(run) for run in words),
            tuple((w, tuple(self.analyzer.terms(w))) for w in written),
            tuple(self.query_terms(text)),
            self.analyzer.fingerprint,
            vector,
        )

    def is_current(self, topic: Topic) -> bool:
        """Whether a stored topic was read as this library reads (the same analysis, and a
        vector exactly when there is a model of meaning); else read it again."""
        return topic.analyzer == self.analyzer.fingerprint and bool(topic.vector) == (
            self.meaning is not None
        )

    def match_topics(
        self, followed: Sequence[Topic], article_ids: Iterable[str]
    ) -> list[TopicMatch]:
        """Each topic that one of these articles (new ones) answers, judged as a question's
        first hit is (with RankingSettings.topic_coverage), with the best passage of that
        article for it, which must hold topic_passage_coverage of the topic itself (with its
        article's title); ordered by topic, then by the articles' order. Only these articles
        are read, and the statistics are the archive's: the cost does not grow with the
        archive (docs/performance.md)."""
        snap = self._current
        followed = [t if self.is_current(t) else self.read_topic(t.text) for t in followed]
        places = [p for aid in dict.fromkeys(article_ids) if (p := snap.where.get(aid))]
        texts = [snap.normalized_text(*place) for place in places]
        idf_of = self._topic_idf(snap.index, followed)
        index = snap.index

        pairs = topics.answered(
            followed, texts, idf_of, self.ranking, lambda piece: _idf_of_terms(index, [piece])
        )
        matches = []
        memo: dict = {}  # postings cut to each new article, for every topic it answers
        read: dict[int, ranking.Question] = {}  # each topic read once, however many articles
        for number, at in sorted(pairs):
            topic = followed[number]
            if number not in read:
                terms = list(topic.terms)
                read[number] = ranking.read_question(
                    self.analyzer, topic.text, (), lambda _, t=terms: t, index.vocab, self.ranking
                )
            hit = self._best_passage(snap, topic, read[number], places[at], idf_of, memo)
            if hit is not None:
                matches.append(TopicMatch(number, hit))
        return matches

    def recent_article_ids(self, days: float) -> list[str]:
        """The articles published in the `days` up to the newest one, newest first (what a
        topic would have matched lately)."""
        refs = self._current.newest_first
        if not refs:
            return []
        since = refs[0].published - timedelta(days=days)
        return [ref.id for ref in refs if ref.published >= since]

    def _topic_idf(self, index: Index, followed: Sequence[Topic]) -> Callable[[str], float]:
        """How rare a word is (`_idf_of_word`), from the terms each topic's words were read
        with; other words (found together: 纳瓦尔 + 尼) are analysed now, once each."""
        known = {word: terms for topic in followed for word, terms in topic.word_terms}
        idfs: dict[str, float] = {}

        def idf_of(word: str) -> float:
            idf = idfs.get(word)
            if idf is None:
                terms = known.get(word)
                idf = idfs[word] = (
                    self._idf_of_word(index, word) if terms is None else _idf_of_terms(index, terms)
                )
            return idf

        return idf_of

    def _best_passage(
        self,
        snap: _Snapshot,
        topic: Topic,
        question: ranking.Question,
        place: tuple[int, int],
        idf_of: Callable[[str], float],
        memo: dict | None = None,
    ) -> Hit | None:
        """The article's passage that best answers the topic (`question`: the topic as the
        engine reads a question), ranked as a search ranks them, if it holds
        RankingSettings.topic_passage_coverage of the topic (read with its article's title)."""
        settings = self.ranking
        found = snap.index.rank_article(
            question, place[0], place[1], settings.ranked_depth, settings, memo
        )
        vector = np.array(topic.vector, dtype=np.float32)
        scored = self._ranked_again(snap, found, question, vector if topic.vector else None)
        if not scored:
            return None
        best, score = scored[0]
        title = snap.normalized_title(*best.place)
        present, missing = ranking.found_in(
            topic.words, f"{title}\n{snap.normalized(best.passage.text)}"
        )
        if ranking.share_found(present, missing, idf_of) < settings.topic_passage_coverage:
            return None
        return self._hit(snap, best, score, question.terms)

    def _hit(self, snap: _Snapshot, found: _Found, score: float, terms: Sequence[str]) -> Hit:
        """A ranked passage as a Hit: its matched words, and who speaks in it."""
        return Hit(
            score,
            found.passage,
            found.article,
            self.analyzer.highlight_spans(terms, found.passage.text),
            speaker(snap.cut(*found.place)[1], found.passage.ordinal),
        )

    def latest(self, n: int = 5) -> list[Article]:
        """The n newest articles, newest first."""
        snap = self._current
        return [snap.cut(*snap.where[ref.id])[0] for ref in snap.newest_first[: max(n, 0)]]

    def article_refs(self) -> list[ArticleRef]:
        """Every article's id, URL and date, newest first; cheap (nothing is decoded)."""
        return list(self._current.newest_first)

    def article(self, aid: str) -> Article | None:
        """The article with this id, if the library has it."""
        snap = self._current
        where = snap.where.get(aid)
        return None if where is None else snap.cut(*where)[0]

    def stats(self) -> LibraryStats:
        """How many articles and passages, the newest date, the files that were skipped, and
        the index's segments."""
        return self._current.stats


def _idf_of_terms(index: Index, terms: Iterable[str]) -> float:
    """The passage idf of the rarest of these terms; that of a word the archive never uses
    when it holds none of them."""
    idfs = [i for t in terms if (i := index.passage_idf(t)) is not None]
    return max(idfs, default=index.max_idf)


def stats_of(state: store.State) -> LibraryStats:
    """What a state holds: the one place articles and passages are counted."""
    newest_ms = state.newest_ms
    skipped = tuple(SkippedFile(p, r.error) for p, r in sorted(state.files.items()) if r.error)
    return LibraryStats(
        articles=state.n_articles,
        passages=state.n_passages,
        newest=None if newest_ms is None else datetime.fromtimestamp(newest_ms / 1000, tz=UTC),
        skipped=skipped,
        segments=len(state.segments),
    )
