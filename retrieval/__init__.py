"""Chinese news passage retrieval: seed files → passages → BM25 search.

The names below are loaded on first use, so that `import retrieval.seedfile` (the bot's
settings check URLs with it) does not pay for numpy, scipy, OpenCC and jieba.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_HOMES = {
    "Library": "retrieval.library",
    **dict.fromkeys(
        ("Article", "ArticleRef", "Hit", "LibraryStats", "Paragraph", "Passage", "SkippedFile"),
        "retrieval.models",
    ),
}
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


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'retrieval' has no attribute {name!r}")
    return getattr(import_module(home), name)
