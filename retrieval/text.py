"""Text as every output shows it: without what could corrupt a terminal or a message, and
highlight spans in order. Shared by the command line and the bot's rendering."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Control characters (C0 but tab and newline, DEL, C1) would let an article drive the terminal
# (ANSI escapes: colours, cursor moves, titles); bidi embeddings, overrides and isolates would
# let it reorder the text around it. Neither belongs in text shown to anyone. Standard library
# only: the bot's settings check imports this before numpy and jieba load.
UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` without control characters (tabs and newlines stay) and bidi overrides: safe to
    print to a terminal or show in a message."""
    return UNSAFE.sub("", text)


def merge_spans(
    spans: Iterable[tuple[int, int]], length: int | None = None
) -> tuple[tuple[int, int], ...]:
    """[start, end) spans sorted, overlapping or touching ones merged, empty ones dropped;
    with `length`, first clipped to a text of that many characters."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if length is not None:
            start, end = max(0, start), min(length, end)
        if start >= end:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)
