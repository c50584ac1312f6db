"""The BM25 engine gives rank_bm25.BM25Okapi's scores exactly, touching only query postings."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping

import numpy as np
import pytest
from rank_bm25 import BM25Okapi
from scipy import sparse

from retrieval.articles import passages_of, read_article
from retrieval.index.scoring import Postings, best, doc_norms, okapi_idf, score
from retrieval.question.analysis import Analyzer
from tests.support.seeds import SEED


def build_postings(ids: np.ndarray, lengths: np.ndarray, n_terms: int) -> Postings:
    """Postings built independently of the index code: scipy sums the repeated (doc, term)."""
    rows = np.repeat(np.arange(lengths.shape[0]), lengths)
    ones = np.ones(ids.shape[0], np.uint16)
    csc = sparse.csc_matrix((ones, (rows, ids)), shape=(lengths.shape[0], n_terms))
    csc.sum_duplicates()
    avgdl = lengths.mean() if lengths.size else 1.0
    return Postings(csc.indptr, csc.indices, csc.data, doc_norms(lengths.astype(float), avgdl))


def query_boosts(idf: np.ndarray, counts: Mapping[int, int]) -> dict[int, float]:
    """What score() takes: each query term's count times its idf."""
    return {t: n * float(idf[t]) for t, n in counts.items() if 0 <= t < idf.shape[0]}


def engine_scores(corpus: list[list[str]], query: list[str]) -> np.ndarray:
    """Our engine's score for every doc (0 where no query term occurs)."""
    vocab: dict[str, int] = {}
    ids = np.array([vocab.setdefault(t, len(vocab)) for doc in corpus for t in doc], np.int32)
    lengths = np.array([len(doc) for doc in corpus], np.int64)
    postings = build_postings(ids, lengths, len(vocab))
    idf = okapi_idf(np.diff(postings.indptr).astype(np.float64), len(corpus))
    docs, scores = score(postings, query_boosts(idf, Counter(vocab.get(t, -1) for t in query)))
    full = np.zeros(len(corpus))
    full[docs] = scores
    return full


def seed_corpus() -> list[list[str]]:
    analyzer = Analyzer.default()
    return [analyzer.terms(p.text) for p in passages_of(read_article(SEED, SEED.name))]


@pytest.mark.parametrize(
    "query",
    ["石破茂 特朗普 防卫", "美日同盟", "液化天然气 LNG 阿拉斯加", "德地秀士认为", "不存在的词"],
)
def test_scores_equal_rank_bm25_on_seed_passages(query: str) -> None:
    corpus = seed_corpus()
    terms = Analyzer.default().query_terms(query)
    expected = BM25Okapi(corpus).get_scores(terms)
    assert np.abs(engine_scores(corpus, terms) - expected).max() <= 1e-9


def test_scores_equal_rank_bm25_with_negative_idf_and_repeats() -> None:
    rng = random.Random(7)
    words = [f"w{i}" for i in range(40)]
    # "common" is in most docs (negative idf → epsilon floor); queries repeat a term
    corpus = [
        ["common"] * rng.randint(0, 3) + rng.choices(words, k=rng.randint(1, 30))
        for _ in range(300)
    ]
    corpus.append([])  # an empty doc is legal and scores 0
    reference = BM25Okapi(corpus)
    for query in (["common"], ["w1", "w1", "w2"], ["w3", "common", "unknown"], ["w39"] * 3):
        diff = np.abs(engine_scores(corpus, query) - reference.get_scores(query)).max()
        assert diff <= 1e-9, query


def test_best_orders_by_score_then_by_each_tiebreak() -> None:
    scores = np.array([1.0, 3.0, 3.0, -0.5, 2.0, 3.0])
    first = np.array([0, 9, 5, 1, 2, 5])
    second = np.array([0, 0, 7, 0, 0, 3])
    asked: list[list[int]] = []

    def ties(at: np.ndarray) -> tuple[np.ndarray, ...]:
        asked.append(at.tolist())
        return first[at], second[at]

    assert best(scores, 10, ties).tolist() == [5, 2, 1, 4, 0, 3]
    assert best(scores, 2, ties).tolist() == [5, 2]
    assert sorted(asked[-1]) == [1, 2, 5], "keys only for the scores in the running"
    assert best(scores, 2).tolist() in ([1, 2], [1, 5], [2, 1], [2, 5], [5, 1], [5, 2])
    assert best(scores[:0], 3).tolist() == []


def test_a_term_with_zero_idf_still_matches() -> None:
    # "common" is in exactly half the docs: idf = ln(2.5 / 2.5) = 0, yet those docs hold it
    corpus = [["common", "a"], ["common", "b"], ["c"], ["d"]]
    vocab = {"common": 0, "a": 1, "b": 2, "c": 3, "d": 4}
    ids = np.array([vocab[t] for doc in corpus for t in doc], np.int32)
    postings = build_postings(ids, np.array([len(d) for d in corpus]), len(vocab))
    idf = okapi_idf(np.diff(postings.indptr).astype(np.float64), len(corpus))
    assert idf[0] == 0.0
    docs, scores = score(postings, query_boosts(idf, {0: 1}))
    assert docs.tolist() == [0, 1]
    assert scores.tolist() == [0.0, 0.0] == BM25Okapi(corpus).get_scores(["common"])[:2].tolist()


def test_no_query_term_in_the_index_touches_nothing() -> None:
    postings = build_postings(np.array([0, 1, 1], np.int32), np.array([2, 1]), 2)
    idf = okapi_idf(np.diff(postings.indptr).astype(np.float64), 2)
    docs, scores = score(postings, query_boosts(idf, {-1: 1, 7: 1}))
    assert docs.size == 0 and scores.size == 0
