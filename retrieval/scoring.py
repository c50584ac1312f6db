"""BM25Okapi over a term-major sparse matrix of term frequencies: pure numpy functions.

The formula is rank_bm25.BM25Okapi's, to the last detail (tests/test_scoring.py checks equality
to 1e-9): idf = ln((N - df + 0.5) / (df + 0.5)); negative idfs are replaced by epsilon times
the mean idf over the terms that occur; a query term repeated counts twice. Unlike rank_bm25,
only the postings of the query's terms are touched, so a query costs what its terms occur in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

K1 = 1.5
B = 0.75
EPSILON = 0.25


@dataclass(frozen=True)
class Postings:
    """Term frequencies, term-major (CSC): term t's docs are indices[indptr[t] : indptr[t + 1]]."""

    indptr: np.ndarray  # int64, len = n_terms + 1
    indices: np.ndarray  # int32 doc numbers, ascending within a term
    tf: np.ndarray  # uint16 term frequencies
    doc_len: np.ndarray  # float64 token count of each doc

    @property
    def n_docs(self) -> int:
        return int(self.doc_len.shape[0])


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


def score_terms(
    postings: Postings,
    idf: np.ndarray,
    norms: np.ndarray,
    term_ids: Sequence[int],
    k1: float = K1,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every doc that holds at least one query term: (doc numbers, scores)."""
    # every term that occurs counts, even with idf 0 or below (tiny collections): a passage
    # holding a query term is a match; only passages holding none are never returned
    counts = Counter(t for t in term_ids if 0 <= t < idf.shape[0])
    if not counts:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    scores = np.zeros(postings.n_docs, dtype=np.float64)
    touched = np.zeros(postings.n_docs, dtype=bool)
    for term, repeat in counts.items():
        lo, hi = postings.indptr[term], postings.indptr[term + 1]
        docs = postings.indices[lo:hi]
        tf = postings.tf[lo:hi].astype(np.float64)
        scores[docs] += repeat * idf[term] * (tf * (k1 + 1) / (tf + norms[docs]))
        touched[docs] = True
    docs = np.flatnonzero(touched)  # a linear scan: cheaper than sorting the postings
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
