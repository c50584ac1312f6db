"""What the bot remembers of conversations, and when a message follows up on a question.

A reply to one of the bot's answers follows up on the question that answer answered; in a
private chat, so may a short message sent soon after a question (`timed_context`). Either
way the earlier questions only become the engine's `context`: the engine decides whether the
new question leans on them (retrieval.question.ranking.leans_on_context), so a new topic is read
alone whatever came before.

Everything is bounded (an LRU cache) and kept per chat: context never crosses chats, and in a
group only a reply to the bot's answer carries one (no timing there, so never another
member's question).
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetools import LRUCache

# A message in a private chat this soon after the previous question (by the messages' own
# dates), and this short, may follow up on it.
FOLLOW_UP_SECONDS = 180
FOLLOW_UP_MAX_CHARS = 30
# The earlier questions passed on, newest last; the engine weighs older ones less anyway.
CONTEXT_QUESTIONS = 3
# Answers and chats remembered; older ones are forgotten (their buttons answer "expired",
# replies to them are read alone).
REMEMBERED = 5000


@dataclass(frozen=True, slots=True)
class Asked:
    """A question the bot answered, as it read it."""

    question: str
    context: tuple[str, ...] = ()  # the earlier questions it was read with; () read alone
    user_id: int | None = None  # who asked: only they turn the answer's pages
    at: float = 0.0  # when it was asked, in seconds

    def as_context(self) -> tuple[str, ...]:
        """The context of a question that follows up on this one."""
        return (*self.context, self.question)[-CONTEXT_QUESTIONS:]


class Conversations:
    """The bot's answers, (chat id, message id) → the question each answered (what its page
    buttons and replies to it need), and each private chat's last question.

    Kept rather than PTB's arbitrary_callback_data, whose LRU counts keyboards, not answers
    (every page turn takes a slot), needs the extra `callback-data` dependency, and would not
    serve replies."""

    def __init__(self, size: int = REMEMBERED) -> None:
        # bounded: the least recently used is forgotten first
        self._answers: LRUCache[tuple[int, int], Asked] = LRUCache(size)
        self._last: LRUCache[int, Asked] = LRUCache(size)  # private chat → its last question

    def answered(self, chat_id: int, message_id: int) -> Asked | None:
        """The question the bot's message `message_id` in this chat answered, if remembered."""
        return self._answers.get((chat_id, message_id))

    def context(
        self, chat_id: int, question: str, at: float, *, private: bool, reply_to: int | None
    ) -> tuple[str, ...]:
        """The earlier questions `question` may follow up on: those of the answer it replies
        to, else (private chats only) those of the chat's last question, if soon and short."""
        followed = self.answered(chat_id, reply_to) if reply_to is not None else None
        if followed is not None:
            return followed.as_context()
        return timed_context(self._last.get(chat_id), question, at) if private else ()

    def remember(self, chat_id: int, message_id: int, asked: Asked, *, private: bool) -> None:
        """The bot answered `asked` with its message `message_id` in this chat."""
        self._answers[chat_id, message_id] = asked
        if private:
            self._last[chat_id] = asked


def timed_context(previous: Asked | None, question: str, at: float) -> tuple[str, ...]:
    """The context of `question`, asked at `at` in a private chat whose previous question
    was `previous`: that question's, when the new one is short and soon after it."""
    if (
        previous is None
        or len(question) > FOLLOW_UP_MAX_CHARS
        or not 0 <= at - previous.at <= FOLLOW_UP_SECONDS
    ):
        return ()
    return previous.as_context()
