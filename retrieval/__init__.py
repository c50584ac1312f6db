"""Chinese news passage retrieval: seed files → passages → BM25 search.

Two subpackages: `index` (seed files parsed into segments on disk, merged, scored; its face is
`IndexKeeper`, the one writer) and `question` (text analysis, answer-type cues, ranking, the
model of meaning). `Library` searches what the keeper serves.

The names below are loaded on first use, so that `import retrieval.seedfile` (the bot's
settings check URLs with it) does not pay for numpy, scipy, OpenCC and jieba.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retrieval.index.keeper import (
        AliasesFileError,
        IndexKeeper,
        default_index_dir,
        saved_index_exists,
        saved_stats,
    )
    from retrieval.index.parsing import Workers
    from retrieval.index.store import IndexCorrupt, IndexDirUnusable
    from retrieval.library import Library
    from retrieval.models import (
        MAX_QUERY_CHARS,
        Article,
        ArticleRef,
        Hit,
        LibraryStats,
        Paragraph,
        Passage,
        SearchResult,
        SkippedFile,
        TopicMatch,
    )
    from retrieval.question.meaning import Meaning
    from retrieval.question.topics import Topic
    from retrieval.text import merge_spans, printable

_HOMES = {
    **dict.fromkeys(
        (
            "AliasesFileError",
            "IndexKeeper",
            "default_index_dir",
            "saved_index_exists",
            "saved_stats",
        ),
        "retrieval.index.keeper",
    ),
    **dict.fromkeys(("IndexCorrupt", "IndexDirUnusable"), "retrieval.index.store"),
    "Library": "retrieval.library",
    **dict.fromkeys(
        (
            "Article",
            "ArticleRef",
            "Hit",
            "LibraryStats",
            "MAX_QUERY_CHARS",
            "Paragraph",
            "Passage",
            "SearchResult",
            "SkippedFile",
            "TopicMatch",
        ),
        "retrieval.models",
    ),
    "Meaning": "retrieval.question.meaning",
    "Topic": "retrieval.question.topics",
    "Workers": "retrieval.index.parsing",
    **dict.fromkeys(("merge_spans", "printable"), "retrieval.text"),
}
__all__ = [
    "MAX_QUERY_CHARS",
    "AliasesFileError",
    "Article",
    "ArticleRef",
    "Hit",
    "IndexCorrupt",
    "IndexDirUnusable",
    "IndexKeeper",
    "Library",
    "LibraryStats",
    "Meaning",
    "Paragraph",
    "Passage",
    "SearchResult",
    "SkippedFile",
    "Topic",
    "TopicMatch",
    "Workers",
    "default_index_dir",
    "merge_spans",
    "printable",
    "saved_index_exists",
    "saved_stats",
]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(import_module(home), name)
