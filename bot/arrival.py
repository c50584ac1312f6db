"""The per-user rate (QUESTIONS_PER_MINUTE), counted when an update arrives.

Counted when handled, it could be outrun: one group member's hundred `/help@bot` waited in
the group's lane (Telegram lets a bot send some 20 messages a minute there) while the bucket
refilled, and all were answered minutes later. So `ArrivalGate` is asked by the update
processor (`fairness.ChatLanes`) before an update joins its lane: within the rate it goes on
to the handlers; past it, the first one gets a notice instead, and the rest are dropped
before they cost anything.

What counts (`cost`) is what makes the bot work for someone, per user across every chat:
questions in private chats, commands (in groups: the bot's own commands, not another bot's),
mentions of the bot and replies to it, page buttons, inline queries, and the messages an
/autoanswer group would look up. Group chatter, service messages and stickers cost nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from enum import Enum

from telegram import InlineQueryResultsButton, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import TelegramError

from . import commands
from .autoanswer import question_like
from .fairness import Admission, UserRate
from .handlers import strip_bot_mentions, user_lang
from .i18n import t
from .logs import pseudonym

logger = logging.getLogger(__name__)

# Past the rate an inline query gets no results and this button; Telegram may show it again
# to the same user for the same query for this long without asking.
INLINE_NOTICE_CACHE_SECONDS = 60
_COMMAND_NAMES = frozenset(name for c in commands.COMMANDS for name in c.names)


class Cost(Enum):
    FREE = "free"  # not for the bot, or nothing to do: never counted
    ASKED = "asked"  # someone asked the bot: counted; past the rate, one notice
    # A group message that /autoanswer may look up, if the group has it on: counted, and
    # past the rate dropped without a word (the sender did not ask the bot).
    UNASKED = "unasked"


def cost(update: Update, bot_username: str, bot_id: int) -> Cost:
    """What handling `update` would cost, from the update alone (handlers.py and app.py
    decide the same way which handler answers it)."""
    if update.inline_query is not None or update.callback_query is not None:
        return Cost.ASKED
    message = update.message  # new messages only: the bot handles no edits or channel posts
    if message is None or message.text is None:
        return Cost.FREE
    command = _command(message.text, message.entities)
    if message.chat.type == ChatType.PRIVATE:
        return Cost.ASKED  # every text is a question, every command answered
    if message.chat.type not in (ChatType.GROUP, ChatType.SUPERGROUP):
        return Cost.FREE
    if command is not None:
        name, _, addressee = command.partition("@")
        ours = not addressee or addressee.lower() == bot_username.lower()
        return Cost.ASKED if ours and name.lower() in _COMMAND_NAMES else Cost.FREE
    mentioned, _ = strip_bot_mentions(message, bot_id, bot_username)
    replied = message.reply_to_message
    if mentioned or (replied is not None and replied.from_user and replied.from_user.id == bot_id):
        return Cost.ASKED
    sender = message.from_user
    if (sender is not None and sender.is_bot) or message.via_bot is not None:
        return Cost.FREE
    return Cost.UNASKED if question_like(message.text) else Cost.FREE


def _command(text: str, entities: tuple[MessageEntity, ...]) -> str | None:
    """The command of a message, "ask@ThisBot" of "/ask@ThisBot …", as CommandHandler reads
    it; None if the message is no command."""
    if entities and entities[0].type == MessageEntity.BOT_COMMAND and entities[0].offset == 0:
        return text[1 : entities[0].length]
    return None


def sender(update: Update) -> Hashable:
    """Whose rate an update counts against: its user's, across chats. Anonymous group
    administrators all post as one bot user, so each group they speak for counts alone."""
    message = update.effective_message
    if message is not None and message.sender_chat is not None:
        return ("chat", message.sender_chat.id)
    user = update.effective_user
    return ("user", user.id) if user is not None else None


class ArrivalGate:
    """`fairness.Gate` for the bot: counts each update against its sender's rate on arrival."""

    def __init__(self, rate: UserRate, autoanswers: Callable[[int], bool]) -> None:
        self.rate = rate
        self.autoanswers = autoanswers  # the subscription store's: is /autoanswer on here?

    async def admit(self, update: object) -> Admission:
        if not isinstance(update, Update) or self.rate.per_minute <= 0:
            return Admission.ANSWER
        bot = update.get_bot()
        price = cost(update, bot.username, bot.id)
        if price is Cost.UNASKED:
            chat_id = update.message.chat_id  # type: ignore[union-attr]
            if not await asyncio.to_thread(self.autoanswers, chat_id):
                price = Cost.FREE  # nothing will be looked up
        who = sender(update)
        if price is Cost.FREE or who is None:
            return Admission.ANSWER
        admission = self.rate.check(who, quiet=price is Cost.UNASKED)
        if admission is Admission.NOTICE:
            logger.info(
                "sender %s is over %d a minute; dropping", pseudonym(who), self.rate.per_minute
            )
        return admission

    async def notify(self, update: object) -> None:
        """Tell the sender, once a minute at most, that the bot stops answering for a while."""
        if not isinstance(update, Update):
            return
        lang = user_lang(update)
        notice = t(lang, "rate_limited", rate=self.rate.per_minute)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(notice)
            elif update.inline_query is not None:
                # No results, no retrieval: a button that says why.
                button = InlineQueryResultsButton(
                    text=t(lang, "inline_rate_limited"), start_parameter="help"
                )
                await update.inline_query.answer(
                    [], cache_time=INLINE_NOTICE_CACHE_SECONDS, is_personal=True, button=button
                )
            elif update.effective_message is not None:
                await update.effective_message.reply_text(notice)
        except TelegramError as exc:
            logger.warning("could not tell a sender they are over the rate: %s", exc)
