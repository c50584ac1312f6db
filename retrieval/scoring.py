"""BM25Okapi over term-major postings: pure numpy functions.

The formula is rank_bm25.BM25Okapi's, to the last detail (tests/test_scoring.py checks equality
to 1e-9): idf = ln((N - df + 0.5) / (df + 0.5)); negative idfs are replaced by epsilon times
the mean idf over the terms that occur; a query term repeated counts twice. Unlike rank_bm25,
only the postings of the query's terms are touched, so a query costs what its terms occur in,
and each posting carries its precomputed tf part, tf (k1 + 1) / (tf + k1 (1 - b + b len/avgdl)),
so that a query is one multiply-add per posting.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

K1 = 1.5
B = 0.75
EPSILON = 0.25


@dataclass(frozen=True)
class Postings:
    """Term-major postings: term t's docs are indices[indptr[t] : indptr[t + 1]]."""

    indptr: np.ndarray  # int64, len = n_terms + 1
    indices: np.ndarray  # int32 doc numbers, ascending within a term
    weight: np.ndarray  # float64 tf part of each posting's BM25 score (see tf_weights)
    n_docs: int


def okapi_idf(df: np.ndarray, n_docs: int, epsilon: float = EPSILON) -> np.ndarray:
    """rank_bm25's idf for every term; terms that occur nowhere (df 0) get 0 and no vote."""
    idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
    present = df > 0
    if not present.any():
        return np.zeros_like(idf)
    floor = epsilon * idf[present].mean()
    idf = np.where(idf < 0, floor, idf)
    return np.where(present, idf, 0.0)


def doc_norms(doc_len: np.ndarray, k1: float = K1, b: float = B) -> np.ndarray:
    """The length normalisation k1 * (1 - b + b * len / avgdl) of every doc."""
    avgdl = float(doc_len.mean()) if doc_len.size and doc_len.sum() else 1.0
    return k1 * (1 - b + b * doc_len / avgdl)


def tf_weights(
    indices: np.ndarray,
    tf: np.ndarray,
    doc_len: np.ndarray,
    k1: float = K1,
    b: float = B,
    chunk: int = 1 << 22,
) -> Iterator[np.ndarray]:
    """Each posting's tf (k1 + 1) / (tf + norm[doc]), in chunks (a million passages hold
    a hundred million postings: the caller streams them to disk rather than hold them)."""
    norms = doc_norms(doc_len, k1, b)
    for lo in range(0, indices.shape[0], chunk):
        part = tf[lo : lo + chunk]
        weight = part * (k1 + 1)
        denominator = norms[indices[lo : lo + chunk]]
        denominator += part
        weight /= denominator
        yield weight


def score(
    postings: Postings, idf: np.ndarray, weights: Mapping[int, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every doc that holds at least one query term: (doc numbers, scores).

    `weights` says how much the query holds each term id: its count is BM25Okapi exactly (a
    term asked twice counts twice); a fraction weighs a term less (a follow-up's context)."""
    # every term that occurs counts, even with idf 0 or below (tiny collections): a passage
    # holding a query term is a match; only passages holding none are never returned
    weights = {t: w for t, w in weights.items() if 0 <= t < idf.shape[0] and w > 0}
    if not weights:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    scores = np.zeros(postings.n_docs, dtype=np.float64)
    touched = np.zeros(postings.n_docs, dtype=bool)
    for term, weight in weights.items():
        lo, hi = postings.indptr[term], postings.indptr[term + 1]
        docs = postings.indices[lo:hi]
        scores[docs] += (weight * idf[term]) * postings.weight[lo:hi]
        touched[docs] = True
    docs = np.flatnonzero(touched)  # a linear scan of bytes: cheaper than sorting postings
    return docs, scores[docs]


def top_k(
    docs: np.ndarray, scores: np.ndarray, k: int, tiebreak: np.ndarray
) -> list[tuple[int, float]]:
    """The k best (doc, score) pairs; ties go to the lower tiebreak rank."""
    if k <= 0 or docs.size == 0:
        return []
    if docs.size > k:
        # argpartition over the touched docs only, not the whole collection
        part = np.argpartition(-scores, k - 1)[:k]
        tied = scores >= scores[part].min()  # keep every doc tied at the cut
        docs, scores = docs[tied], scores[tied]
    order = np.lexsort((tiebreak[docs], -scores))[:k]
    return [(int(docs[i]), float(scores[i])) for i in order]
