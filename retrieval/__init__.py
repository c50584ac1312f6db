"""Chinese news passage retrieval: seed files → passages → BM25 search."""

from retrieval.library import Library
from retrieval.models import (
    Article,
    ArticleRef,
    Hit,
    LibraryStats,
    Paragraph,
    Passage,
    SkippedFile,
)

__all__ = [
    "Article",
    "ArticleRef",
    "Hit",
    "Library",
    "LibraryStats",
    "Paragraph",
    "Passage",
    "SkippedFile",
]
