"""The live index: its segments seen as one collection.

BM25's statistics are the whole live collection's, whatever segments it is split into and
whatever they once held: N, each term's document frequency and the average length count live
documents only (deletions subtract what they took), and the mean idf behind rank_bm25's floor
runs over the terms that occur in a live document. So an index brought up to date segment by
segment scores exactly as a fresh build of the same files (tests/test_segments.py), and ties
break by what the articles are (newer first, then article id, then position), never by which
segment holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from retrieval.index.scoring import Postings, best, doc_norms, okapi_idf, score, score_range
from retrieval.index.store import FIELDS, Segment, State
from retrieval.question import ranking
from retrieval.question.cues import OVERVIEW, boosts


@dataclass(frozen=True)
class Ranked:
    """A passage's place in the index and its scores: a search before anything is decoded."""

    segment: int  # position in Index.segments
    passage: int  # passage number in that segment
    score: float  # what ranks (retrieval.ranking)
    bm25: float  # its BM25Okapi part: rank_bm25's score of the passage's own terms


@dataclass(frozen=True)
class _Field:
    """One field's statistics over the whole live collection."""

    idf: np.ndarray  # by global term id
    norms: tuple[np.ndarray, ...]  # per segment, per document
    n_docs: int


class Index:
    """The segments of a state, with the global vocabulary and statistics queries need."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.segments = state.segments
        # the largest segment's vocabulary is the start of the global one: it holds most terms
        order = sorted(range(len(self.segments)), key=lambda i: -len(self.segments[i].draft.terms))
        self.vocab: dict[str, int] = dict(self.segments[order[0]].vocab) if order else {}
        to_global: list[np.ndarray] = [np.empty(0, np.int64)] * len(self.segments)
        for i in order:
            terms = self.segments[i].draft.terms
            if i == order[0]:
                to_global[i] = np.arange(len(terms), dtype=np.int64)
            else:
                vocab = self.vocab
                to_global[i] = np.fromiter(
                    (vocab.setdefault(t, len(vocab)) for t in terms), np.int64, len(terms)
                )
        n_global = len(self.vocab)
        self._to_local = []
        for segment, ids in zip(self.segments, to_global, strict=True):
            local = np.full(n_global, -1, np.int64)
            local[ids] = np.arange(len(segment.draft.terms))
            self._to_local.append(local)
        self.passage = self._field("passage", to_global)
        self.article = self._field("article", to_global)

    def _field(self, name: str, to_global: list[np.ndarray]) -> _Field:
        df = np.zeros(len(self.vocab), np.float64)
        n_docs, total_len = 0, 0.0
        for segment, ids in zip(self.segments, to_global, strict=True):
            df += np.bincount(ids, weights=segment.live_df[name], minlength=len(self.vocab))
            live = segment.live_passages if name == "passage" else segment.live_articles
            n_docs += int(live.sum())
            total_len += float(segment.arrays[f"{name}_len"][live].sum())
        avgdl = total_len / n_docs if n_docs else 1.0
        norms = tuple(doc_norms(s.arrays[f"{name}_len"], avgdl) for s in self.segments)
        return _Field(okapi_idf(df, n_docs), norms, n_docs)

    # --- what the collection holds ----------------------------------------------------------

    @cached_property
    def names(self) -> dict[str, str]:
        """Chinese names glossed in English by some live article → the gloss."""
        live_pairs: set[tuple[str, str]] = set()
        for segment in self.segments:
            a = segment.arrays
            held = np.concatenate([[0], np.cumsum(segment.live_articles[a["name_articles"]])])
            glossed = held[a["name_indptr"][1:]] > held[a["name_indptr"][:-1]]
            live_pairs.update(
                (n, g) for (n, g), live in zip(segment.draft.names, glossed, strict=True) if live
            )
        # in sorted order, so that a name glossed two ways means the same, however the
        # articles are split into segments
        return dict(sorted(live_pairs))

    @cached_property
    def glosses(self) -> dict[str, str]:
        """English gloss → the Chinese name it glosses."""
        return {gloss: name for name, gloss in sorted(self.names.items())}

    @cached_property
    def max_idf(self) -> float:
        """The passage idf of the rarest term: that of a word the archive never uses."""
        return float(self.passage.idf.max()) if self.passage.idf.size else 1.0

    def passage_idf(self, term: str) -> float | None:
        number = self.vocab.get(term)
        return None if number is None else float(self.passage.idf[number])

    # --- ranking ----------------------------------------------------------------------------

    def rank(
        self, question: ranking.Question, k: int, settings: ranking.RankingSettings
    ) -> list[Ranked]:
        """The k best live passages for a question, best first."""
        found: list[Ranked] = []
        keys: list[tuple[int, int, int]] = []
        for i, segment in enumerate(self.segments):
            for ranked, key in self._rank_segment(i, segment, question, k, settings):
                found.append(ranked)
                keys.append(key)
        if not found:
            return []
        columns = tuple(np.array(column) for column in zip(*keys, strict=True))
        chosen = best(
            np.array([r.score for r in found]), k, lambda at: tuple(c[at] for c in columns)
        )
        return [found[int(i)] for i in chosen]

    def rank_article(
        self,
        question: ranking.Question,
        segment: int,
        article: int,
        k: int,
        settings: ranking.RankingSettings,
        memo: dict | None = None,
    ) -> list[Ranked]:
        """The k best passages of one article (its number in that segment) for a question,
        best first, scored as `rank` scores them: what it costs is the article's, not the
        collection's (a topic alert's best passage of a new article). `memo`, a dict kept
        from call to call, saves cutting the same postings again (many topics, one article)."""
        found = self._rank_segment(
            segment, self.segments[segment], question, k, settings, (article, memo)
        )
        return [ranked for ranked, _ in found]

    def _rank_segment(
        self,
        i: int,
        segment: Segment,
        question: ranking.Question,
        k: int,
        settings: ranking.RankingSettings,
        within: tuple[int, dict | None] | None = None,
    ) -> list[tuple[Ranked, tuple[int, int, int]]]:
        """The segment's k best passages, or `within` one article's (its number, and a memo
        of postings cut to it, or None)."""
        a = segment.arrays
        passage_postings = self._postings(i, segment, "passage")
        passage_boosts = self._boosts(i, self.passage.idf, question.passage_weights)
        if within is None:
            passages, bm25 = score(passage_postings, passage_boosts)
        else:
            article, memo = within
            lo, hi = (int(n) for n in a["article_passage_start"][article : article + 2])
            cuts = (None, None) if memo is None else (memo.setdefault((i, f), {}) for f in FIELDS)
            passage_cuts, article_cuts = cuts
            passages, bm25 = score_range(passage_postings, passage_boosts, lo, hi, passage_cuts)
        if segment.deleted.any():
            live = segment.live_passages[passages]
            passages, bm25 = passages[live], bm25[live]
        if not passages.size:
            return []  # the articles' scores are not needed
        article_postings = self._postings(i, segment, "article")
        article_boosts = self._boosts(i, self.article.idf, question.article_weights)
        if within is None:
            articles, article_bm25 = score(article_postings, article_boosts)
        else:
            articles, article_bm25 = score_range(
                article_postings, article_boosts, article, article + 1, article_cuts
            )
        by_article = np.zeros(segment.n_articles)
        by_article[articles] = article_bm25
        of_article = a["passage_article"][passages]
        cues = 1.0
        if question.asked:
            # an article's first passage, its lead, shows what the story is (OVERVIEW)
            lead = np.where(a["passage_ordinal"][passages] == 0, np.uint64(OVERVIEW), np.uint64(0))
            cues = boosts(question.asked, a["passage_cues"][passages] | lead, settings.cues)
        scores = ranking.combine(bm25, by_article[of_article], cues, settings.article_weight)

        def ties(at: np.ndarray) -> tuple[np.ndarray, ...]:
            return self.tie_keys(i, passages[at])

        chosen = best(scores, k, ties)
        keys = ties(chosen)
        return [
            (
                Ranked(i, int(passages[j]), float(scores[j]), float(bm25[j])),
                (int(keys[0][n]), int(keys[1][n]), int(keys[2][n])),
            )
            for n, j in enumerate(chosen)
        ]

    def tie_keys(self, i: int, passages: np.ndarray) -> tuple[np.ndarray, ...]:
        """What breaks ties between these passages of the i-th segment, lowest first: the
        newer article, then the article id, then the passage's position in it (never which
        segment holds them)."""
        a = self.segments[i].arrays
        articles = a["passage_article"][passages]
        return (
            -a["article_published_ms"][articles],
            a["article_key"][articles],
            a["passage_ordinal"][passages],
        )

    def _postings(self, i: int, segment: Segment, field: str) -> Postings:
        a = segment.arrays
        norms = (self.passage if field == "passage" else self.article).norms[i]
        return Postings(a[f"{field}_indptr"], a[f"{field}_indices"], a[f"{field}_tf"], norms)

    def _boosts(self, i: int, idf: np.ndarray, weights: Mapping[int, float]) -> dict[int, float]:
        """Global term ids and weights → the segment's term ids and weight times idf."""
        to_local = self._to_local[i]
        out: dict[int, float] = {}
        for term, weight in weights.items():
            local = int(to_local[term]) if 0 <= term < to_local.shape[0] else -1
            if local >= 0:
                out[local] = weight * float(idf[term])
        return out
