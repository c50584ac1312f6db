"""Fairness under load: one chat's flood must not hold up anyone else's answers.

Two mechanisms, each knowing nothing of Telegram's content:
- `ChatLanes`, the Application's update processor: the updates of one chat are handled one
  after another in arrival order (a user's questions are answered in the order asked),
  different chats side by side. At most `max_concurrent` updates run at once, and a chat with
  a backlog waits for a slot like everyone else: only its next update, never its whole
  backlog, stands in the queue, so chats take turns. Its `Gate`, if any, sees each update as
  it arrives, before it waits in its lane, and may drop it or put a notice in its place.
- `UserRate`: a token bucket per user. Past the rate a user gets a notice (`NOTICE`, at most
  one a minute) and the updates past it are dropped (`DROP`); the gate (bot.arrival) acts on
  that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from cachetools import LRUCache
from telegram import Update
from telegram.ext import BaseUpdateProcessor

logger = logging.getLogger(__name__)

MAX_CONCURRENT_UPDATES = 256  # what PTB's concurrent_updates(True) allows
# PTB's own semaphore is taken before do_process_update, so it would also count the updates
# that only wait for their chat's turn: one chat's backlog could fill it. It is set out of
# reach; ChatLanes bounds the updates that actually run instead.
_UNBOUNDED = 1 << 30
MAX_TRACKED_USERS = 10_000  # the least recently seen user's bucket is forgotten (refilled) first


def lane(update: object) -> Hashable:
    """The lane an update waits in: its chat, else (inline queries) its user."""
    if isinstance(update, Update):
        if update.effective_chat is not None:
            return ("chat", update.effective_chat.id)
        if update.effective_user is not None:
            return ("user", update.effective_user.id)
    return None


@dataclass(slots=True)
class _Lane:
    lock: asyncio.Lock
    waiting: int = 0  # updates in this lane, running or waiting; the lane goes at 0


class Admission(Enum):
    ANSWER = "answer"
    NOTICE = "notice"  # past the rate, and not told in the last minute: tell the user
    DROP = "drop"  # past the rate, already told: no reply, no work


class Gate(Protocol):
    """What ChatLanes asks about each update as it arrives."""

    async def admit(self, update: object) -> Admission:
        """ANSWER: handle it; NOTICE: run `notify` instead; DROP: forget it."""

    async def notify(self, update: object) -> None:
        """Tell the sender why this update and the next few go unanswered."""


# When the update being handled arrived (time.monotonic()): set by ChatLanes as the update
# leaves PTB's queue, before it waits in its chat's lane; read by the handlers' deadline.
ARRIVED: ContextVar[float | None] = ContextVar("arrived", default=None)


class ChatLanes(BaseUpdateProcessor):
    """Each chat's updates in order, different chats concurrently, taking turns for slots;
    `gate` decides on arrival which updates get that far."""

    def __init__(
        self, max_concurrent: int = MAX_CONCURRENT_UPDATES, gate: Gate | None = None
    ) -> None:
        super().__init__(_UNBOUNDED)
        self._slots = asyncio.Semaphore(max_concurrent)  # FIFO: chats take turns
        self._lanes: dict[Hashable, _Lane] = {}
        self._gate = gate

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        # Here the update has just left PTB's queue: what is dropped now never waits.
        ARRIVED.set(time.monotonic())  # this task's own context: the handlers see it
        admission = Admission.ANSWER if self._gate is None else await self._admit(update)
        if admission is not Admission.ANSWER:
            _discard(coroutine)
            if admission is Admission.DROP:
                return
            coroutine = self._gate.notify(update)  # type: ignore[union-attr]
        key = lane(update)
        current = self._lanes.get(key)
        if current is None:
            current = self._lanes[key] = _Lane(asyncio.Lock())
        current.waiting += 1
        try:
            # asyncio.Lock wakes its waiters in the order they came: arrival order.
            async with current.lock, self._slots:
                await coroutine
        finally:
            current.waiting -= 1
            if not current.waiting:
                del self._lanes[key]

    def answering(self, chat_id: int) -> bool:
        """Whether a chat has updates being handled or waiting their turn (a push to it waits:
        answers go first)."""
        return ("chat", chat_id) in self._lanes

    async def _admit(self, update: object) -> Admission:
        try:
            return await self._gate.admit(update)  # type: ignore[union-attr]
        except Exception:  # a gate that fails must not lose the update
            logger.exception("admission check failed; handling the update anyway")
            return Admission.ANSWER

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


def _discard(coroutine: Awaitable[Any]) -> None:
    """Close the handlers' coroutine PTB made for an update that will not run (else Python
    warns that it was never awaited)."""
    close = getattr(coroutine, "close", None)
    if close is not None:
        close()


class UserRate:
    """`per_minute` updates a minute per user, in bursts of up to as many (0: no limit); past
    it, a notice at most once a minute, so a steady flood costs one message a minute."""

    def __init__(
        self,
        per_minute: int,
        clock: Callable[[], float] = time.monotonic,
        max_users: int = MAX_TRACKED_USERS,
    ) -> None:
        self.per_minute = per_minute
        self._clock = clock
        # user → (tokens, when counted, when last told); bounded: the least recently seen
        # user's bucket is forgotten (refilled) first
        self._buckets: LRUCache[Hashable, tuple[float, float, float | None]] = LRUCache(max_users)

    def check(self, user: Hashable, *, quiet: bool = False) -> Admission:
        """Count one update from `user` and say what to do with it. `quiet`: the user did not
        ask the bot (an /autoanswer candidate), so past the rate it is dropped untold, and the
        notice is kept for when they do ask."""
        if self.per_minute <= 0:
            return Admission.ANSWER
        now = self._clock()
        tokens, then, told = self._buckets.pop(user, (self.per_minute, now, None))
        tokens = min(self.per_minute, tokens + (now - then) * self.per_minute / 60)
        if tokens >= 1:
            tokens, admission = tokens - 1, Admission.ANSWER
        elif quiet or (told is not None and now - told < 60):
            admission = Admission.DROP
        else:
            told, admission = now, Admission.NOTICE
        self._buckets[user] = (tokens, now, told)
        return admission
