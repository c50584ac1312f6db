"""/autoanswer: which group messages the bot answers without being asked, and how often.

A message is question-like when it is at most `QUESTION_MAX_CHARS` long, is not a command,
and ends with ？ or ? or holds a question word (`QUESTION_WORDS`). The handler adds: not from
a bot, the group has /autoanswer on, the engine is confident, and `GroupPace` allows it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from cachetools import TTLCache

QUESTION_MAX_CHARS = 100  # longer messages are discussion, not a question to look up
PACED_GROUPS = 10_000  # groups paused at once; past that the least recently answered is freed
# Simplified and traditional forms; 为什么 and 哪里/哪年 are covered by 什么 and 哪.
QUESTION_WORDS = (
    "吗", "嗎", "呢", "什么", "什麼", "怎么", "怎麼", "谁", "誰", "哪",
    "多少", "几", "幾", "是不是",
)  # fmt: skip
_QUESTION_RE = re.compile(r"[?？]\s*\Z|" + "|".join(QUESTION_WORDS))


def question_like(text: str) -> bool:
    """Whether a group message reads as a question the archive might answer."""
    text = text.strip()
    return (
        0 < len(text) <= QUESTION_MAX_CHARS
        and not text.startswith("/")
        and _QUESTION_RE.search(text) is not None
    )


class GroupPace:
    """At most one automatic answer per group every `interval` seconds (0: no limit)."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        # the groups answered within the interval: each expires when it may be answered
        # again, and the cache is bounded however many groups there are
        self._paused: TTLCache[int, bool] = TTLCache(PACED_GROUPS, ttl=interval, timer=clock)

    def ready(self, chat_id: int) -> bool:
        return chat_id not in self._paused

    def answered(self, chat_id: int) -> None:
        self._paused[chat_id] = True
