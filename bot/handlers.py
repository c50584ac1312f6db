"""Thin async handlers: parse the update, run a reply function in a thread, send the result."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

from telegram import (
    Bot,
    ChatMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatType
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from retrieval import MAX_QUERY_CHARS, Library

from . import render, replies
from .autoanswer import GroupPace, question_like
from .commands import Command, Scope
from .conversation import Asked, Conversations
from .fairness import ARRIVED
from .i18n import Lang, pick_language, t
from .logs import pseudonym
from .news import NewsService
from .settings import Settings
from .subscriptions import SubscriptionStore

logger = logging.getLogger(__name__)

CommandCallback = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]

TEXT_ONLY_HINT_SECONDS = 600  # at most one "send text" hint per chat per 10 minutes
# A page button's callback data: the page; the message it is on says which answer.
_CALLBACK_RE = re.compile(r"p:(\d{1,2})")
# What a command outside its scope gets (the scopes are in commands.py).
_REFUSALS = {Scope.CHAT_ADMINS: "chat_admins_only", Scope.BOT_ADMINS: "admin_only"}
_ADMINS = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


def user_lang(update: Update) -> Lang:
    user = update.effective_user
    return pick_language(user.language_code if user else None)


def text_after_command(message: Message) -> str:
    """The text after "/cmd" or "/cmd@bot" (keeps the question's own line breaks readable)."""
    parts = (message.text or "").split(maxsplit=1)
    return parts[1] if len(parts) > 1 else ""


def strip_bot_mentions(message: Message, bot_id: int, username: str) -> tuple[bool, str]:
    """(mentioned?, text without the mentions of this bot). Entity offsets are UTF-16 units."""
    text = message.text or ""
    encoded = text.encode("utf-16-le")
    mentioned = False
    cuts: list[tuple[int, int]] = []
    for entity in message.entities:
        piece = encoded[2 * entity.offset : 2 * (entity.offset + entity.length)].decode("utf-16-le")
        ours = (entity.type == MessageEntity.MENTION and piece[1:].lower() == username.lower()) or (
            entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id
        )
        if ours:
            mentioned = True
            cuts.append((2 * entity.offset, 2 * (entity.offset + entity.length)))
    for start, end in sorted(cuts, reverse=True):
        encoded = encoded[:start] + " ".encode("utf-16-le") + encoded[end:]
    return mentioned, encoded.decode("utf-16-le")


class BotHandlers:
    """The bot's handlers, sharing the library, the settings, the news service (new articles
    and subscriptions), the store (for /autoanswer), what the bot remembers of conversations
    (its answers' questions, for page buttons and follow-ups) and the per-user and per-group
    rates."""

    def __init__(
        self, library: Library, settings: Settings, news: NewsService, store: SubscriptionStore
    ) -> None:
        self.library = library
        self.settings = settings
        self.news = news
        self.store = store
        self.conversations = Conversations()
        self.pace = GroupPace(settings.autoanswer_interval_seconds)

    # ---- questions ----------------------------------------------------------------------

    async def _answer(self, update: Update, raw: str, *, only_if_confident: bool = False) -> bool:
        """Answer `raw` as a question, threaded to the asker's message; with
        `only_if_confident`, only when the engine is confident. True if it replied."""
        message = update.effective_message
        lang = user_lang(update)
        question = replies.clean_question(raw)
        logger.debug("question in chat %s: %r", message.chat_id, question)
        if not question:
            await message.reply_text(await asyncio.to_thread(replies.ask_usage, self.library, lang))
            return True
        private = message.chat.type == ChatType.PRIVATE
        at = message.date.timestamp()
        replied = message.reply_to_message
        earlier = self.conversations.context(
            message.chat_id,
            question,
            at,
            private=private,
            reply_to=replied.message_id if replied else None,
        )
        if self._late():  # waited its turn too long: say so now, not an answer much later
            return await self._busy(message, lang, only_if_confident)
        result = await asyncio.to_thread(
            replies.answer,
            self.library,
            question,
            lang,
            context=earlier,
            per_page=self.settings.results_per_page,
        )
        if only_if_confident and not result.confident:
            return False
        if self._late():
            return await self._busy(message, lang, only_if_confident)
        sent = await message.reply_text(
            result.html, reply_markup=self._keyboard(0, result.has_more, lang)
        )
        user = update.effective_user
        asked = Asked(question, result.context, user.id if user else None, at)
        self.conversations.remember(sent.chat_id, sent.message_id, asked, private=private)
        return True

    def _late(self) -> bool:
        """Whether the update being handled arrived more than ANSWER_DEADLINE_SECONDS ago."""
        arrived, deadline = ARRIVED.get(), self.settings.answer_deadline_seconds
        return bool(deadline) and arrived is not None and time.monotonic() - arrived > deadline

    @staticmethod
    async def _busy(message: Message, lang: Lang, unasked: bool) -> bool:
        """Tell the asker to ask again (an /autoanswer message nobody asked: say nothing)."""
        if unasked:
            return False
        logger.info("a question waited past its deadline: told to ask again")
        await message.reply_text(t(lang, "busy"))
        return True

    def _keyboard(self, page: int, has_more: bool, lang: Lang) -> InlineKeyboardMarkup | None:
        buttons = []
        if page > 0:
            previous = t(lang, "prev_page")
            buttons.append(InlineKeyboardButton(previous, callback_data=f"p:{page - 1}"))
        if has_more:
            following = t(lang, "next_page")
            buttons.append(InlineKeyboardButton(following, callback_data=f"p:{page + 1}"))
        return InlineKeyboardMarkup([buttons]) if buttons else None

    async def private_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Private chat: any text message is a question."""
        await self._answer(update, update.effective_message.text)

    async def ask(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/ask <question> in any chat."""
        await self._answer(update, text_after_command(update.effective_message))

    async def group_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Groups: answer replies to the bot and @mentions of it; with /autoanswer on, also
        question-like messages the archive answers; ignore everything else."""
        message = update.effective_message
        bot = context.bot
        mentioned, text = strip_bot_mentions(message, bot.id, bot.username)
        replied = message.reply_to_message
        to_bot = (
            replied is not None and replied.from_user is not None and replied.from_user.id == bot.id
        )
        if not (mentioned or to_bot):
            await self._auto_answer(update)
            return
        if not replies.clean_question(text):
            lang = user_lang(update)
            await message.reply_text(render.render_mention_usage(bot.username, lang))
            return
        await self._answer(update, text)

    async def _auto_answer(self, update: Update) -> None:
        """Answer a group message nobody addressed to the bot, if /autoanswer is on, it reads
        like a question, the engine is confident, and the group had no automatic answer in
        the last AUTOANSWER_INTERVAL_SECONDS. Counted against the sender's rate on arrival
        (bot.arrival), but never answered with a notice: they did not ask the bot."""
        message = update.effective_message
        sender = message.from_user
        if (
            (sender is not None and sender.is_bot)
            or message.via_bot is not None
            or not question_like(message.text or "")
            or not self.pace.ready(message.chat_id)
            or not await asyncio.to_thread(self.store.autoanswers, message.chat_id)
        ):
            return
        if await self._answer(update, message.text, only_if_confident=True):
            self.pace.answered(message.chat_id)

    async def page_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A "next/previous page" button: edit the answer in place."""
        query = update.callback_query
        lang = user_lang(update)
        match = _CALLBACK_RE.fullmatch(query.data or "")
        message = query.message
        asked = None
        if message is not None:
            asked = self.conversations.answered(message.chat.id, message.message_id)
        if match is None or asked is None:
            await query.answer(t(lang, "stale_button"), show_alert=False)
            return
        if asked.user_id is not None and query.from_user.id != asked.user_id:
            await query.answer(t(lang, "foreign_button"))
            return
        page = int(match.group(1))
        result = await asyncio.to_thread(
            replies.answer,
            self.library,
            asked.question,
            lang,
            context=asked.context,
            page=page,
            per_page=self.settings.results_per_page,
        )
        if not result.found:  # the library changed since; this page no longer exists
            await query.answer(t(lang, "stale_button"))
            return
        try:
            await query.edit_message_text(
                result.html, reply_markup=self._keyboard(result.page, result.has_more, lang)
            )
        except BadRequest as exc:
            # A double tap asks for the page already shown; Telegram calls that an error.
            if "not modified" not in str(exc).lower():
                raise
        # Answered after the edit: a query takes one answer only, so a failed edit leaves it
        # to on_error, whose answer then tells the user.
        await query.answer()

    # ---- commands (commands.py lists them; each is answered by the method of its name) ----

    def for_command(self, command: Command) -> CommandCallback:
        """The handler to register for `command`: its method, behind its scope's check (the
        per-user rate was counted on arrival, bot.arrival)."""
        answer = getattr(self, command.name)
        if command.scope is Scope.EVERYONE:
            return answer

        async def scoped(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            if await self._in_scope(command.scope, update, context):
                await answer(update, context)
            else:
                refusal = t(user_lang(update), _REFUSALS[command.scope])
                await update.effective_message.reply_text(refusal)

        return scoped

    async def _in_scope(
        self, scope: Scope, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> bool:
        if scope is Scope.BOT_ADMINS:
            return self._is_admin(update)
        if scope is Scope.CHAT_ADMINS:
            return await self._may_manage_chat(update, context)
        return True

    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/start and /help: what the bot does, with example questions from its articles."""
        message = update.effective_message
        text = await asyncio.to_thread(
            replies.help_text, self.library, user_lang(update), context.bot.username
        )
        await message.reply_text(text)

    async def latest(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/latest [n]: the newest articles."""
        message = update.effective_message
        text = await asyncio.to_thread(
            replies.latest, self.library, text_after_command(message), user_lang(update)
        )
        await message.reply_text(text)

    async def about(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/about: how many articles and passages, the newest date."""
        message = update.effective_message
        admin = self._is_admin(update)
        text = await asyncio.to_thread(replies.about, self.library, user_lang(update), admin=admin)
        await message.reply_text(text)

    async def reload(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/reload (ADMIN_USER_IDS): rescan the seeds directory now."""
        message = update.effective_message
        lang = user_lang(update)
        changed = await self.news.refresh(context.application)
        result = t(lang, "reload_changed" if changed else "reload_unchanged")
        await message.reply_text(t(lang, "reload_done", result=result))

    async def subscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/subscribe: push each new article to this chat."""
        await self._change_subscription(update, subscribe=True)

    async def unsubscribe(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unsubscribe: stop pushing new articles to this chat."""
        await self._change_subscription(update, subscribe=False)

    async def autoanswer(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/autoanswer on|off (group administrators): answer question-like messages unasked."""
        message = update.effective_message
        lang = user_lang(update)
        if message.chat.type == ChatType.PRIVATE:
            await message.reply_text(t(lang, "autoanswer_private"))
            return
        chat_id = message.chat_id
        choice = text_after_command(message).strip().lower()
        if choice not in ("on", "off"):
            on = await asyncio.to_thread(self.store.autoanswers, chat_id)
            await message.reply_text(t(lang, "autoanswer_usage", state="on" if on else "off"))
            return
        await asyncio.to_thread(self.store.set_autoanswer, chat_id, choice == "on")
        logger.info("chat %s: autoanswer %s", pseudonym(chat_id), choice)
        if choice == "off":
            await message.reply_text(t(lang, "autoanswer_off"))
        elif await self._reads_group(context.bot, chat_id):
            interval = f"{self.pace.interval:g}"
            await message.reply_text(t(lang, "autoanswer_on", interval=interval))
        else:
            bot = render.esc(context.bot.username)
            await message.reply_text(t(lang, "autoanswer_on_privacy", bot=bot))

    async def follow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/follow <question or topic>: post here the new passages that answer it."""
        message = update.effective_message
        lang = user_lang(update)
        text = " ".join(text_after_command(message).split())
        at_most = self.settings.follow_max_topics
        if not at_most:
            reply = t(lang, "follow_off")
        elif not text:
            reply = t(lang, "follow_usage")
        elif len(text) > MAX_QUERY_CHARS:
            reply = t(lang, "follow_too_long", most=MAX_QUERY_CHARS)
        else:
            outcome, number = await asyncio.to_thread(
                self.news.follow, message.chat_id, text, lang, at_most
            )
            logger.info("chat %s: follow %s", pseudonym(message.chat_id), outcome)
            reply = render.render_followed(outcome, text, lang, at_most, count=number)
        await message.reply_text(reply)

    async def following(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/following: the topics this chat follows, numbered (anyone may look)."""
        message = update.effective_message
        topics = await asyncio.to_thread(self.store.topics, message.chat_id)
        lang = user_lang(update)
        await message.reply_text(
            render.render_following(topics, lang, self.settings.follow_max_topics)
        )

    async def unfollow(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/unfollow N|all: stop following one topic (its number in /following) or all."""
        message = update.effective_message
        lang = user_lang(update)
        choice = text_after_command(message).strip().lower()
        number = int(choice) if choice.isascii() and choice.isdigit() else None
        if choice != "all" and number is None:
            await message.reply_text(t(lang, "unfollow_usage"))
            return
        removed = await asyncio.to_thread(self.store.unfollow, message.chat_id, number)
        if removed:
            logger.info("chat %s: unfollowed %d", pseudonym(message.chat_id), len(removed))
            await message.reply_text(render.render_unfollowed(removed, lang))
            return
        count = len(await asyncio.to_thread(self.store.topics, message.chat_id))
        if number is None or not count:
            await message.reply_text(t(lang, "following_none"))
        else:
            await message.reply_text(t(lang, "unfollow_no_such", number=number, count=count))

    @staticmethod
    async def _reads_group(bot: Bot, chat_id: int) -> bool:
        """Whether the bot receives a group's ordinary messages: privacy mode off (asked
        afresh: it may have changed in BotFather since the start), or an administrator."""
        me = await bot.get_me()
        if me.can_read_all_group_messages:
            return True
        member = await bot.get_chat_member(chat_id, me.id)
        return member.status in _ADMINS

    async def _change_subscription(self, update: Update, *, subscribe: bool) -> None:
        message = update.effective_message
        lang = user_lang(update)
        if subscribe:
            done = await self.news.subscribe(message.chat_id)
            key = "subscribed" if done else "already_subscribed"
        else:
            done = await self.news.unsubscribe(message.chat_id)
            key = "unsubscribed" if done else "not_subscribed"
        logger.info("chat %s %s", pseudonym(message.chat_id), key.replace("_", " "))
        await message.reply_text(t(lang, key))

    async def _may_manage_chat(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
        """Anyone in a private chat; in groups, the group's administrators."""
        chat = update.effective_chat
        if chat.type == ChatType.PRIVATE:
            return True
        # Anonymous administrators post as the group itself.
        sender_chat = update.effective_message.sender_chat
        if sender_chat is not None and sender_chat.id == chat.id:
            return True
        user = update.effective_user
        if user is None:
            return False
        member = await context.bot.get_chat_member(chat.id, user.id)
        return member.status in _ADMINS

    async def unknown_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Private chat: a command the bot does not have."""
        message = update.effective_message
        await message.reply_text(t(user_lang(update), "unknown_command"))

    async def group_migrated(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A group became a supergroup, with a new id: its subscription, /autoanswer and
        topics go with it. Telegram tells both chats; whichever comes second finds nothing to
        move."""
        message = update.effective_message
        if message.migrate_to_chat_id:
            old, new = message.chat_id, message.migrate_to_chat_id
        else:
            old, new = message.migrate_from_chat_id, message.chat_id
        await asyncio.to_thread(self.store.move, old, new)
        logger.info(
            "chat %s is now %s; its subscription, /autoanswer and topics moved",
            pseudonym(old),
            pseudonym(new),
        )

    async def non_text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Private chat: stickers, photos, voice…: one gentle hint now and then, never a flood."""
        now = time.monotonic()
        last = context.chat_data.get("text_only_hint_at") if context.chat_data is not None else None
        if last is not None and now - last < TEXT_ONLY_HINT_SECONDS:
            return
        if context.chat_data is not None:
            context.chat_data["text_only_hint_at"] = now
        message = update.effective_message
        await message.reply_text(t(user_lang(update), "text_only"))

    def _is_admin(self, update: Update) -> bool:
        user = update.effective_user
        return user is not None and user.id in self.settings.admin_user_ids

    # ---- inline -------------------------------------------------------------------------

    async def inline(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """@bot question: passages as shareable results; an empty query lists the newest."""
        query = update.inline_query
        lang = pick_language(query.from_user.language_code)
        items, exact = await asyncio.to_thread(
            replies.inline_items, self.library, query.query, lang
        )
        results = [
            InlineQueryResultArticle(
                id=item.id,
                title=item.title,
                description=item.description,
                url=item.url,
                # Parse mode and link previews come from the Application's Defaults.
                input_message_content=InputTextMessageContent(item.html),
            )
            for item in items
        ]
        button = None
        if not results or not exact:
            words = "inline_no_exact_answer" if results else "inline_no_results"
            button = InlineQueryResultsButton(text=t(lang, words), start_parameter="help")
        # Short cache: the archive grows while the bot runs.
        await query.answer(results, cache_time=30, button=button)

    # ---- errors -------------------------------------------------------------------------

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log any handler error and tell the user, where there is someone to tell."""
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("error while handling update %s", update_id, exc_info=context.error)
        if not isinstance(update, Update):
            return
        logger.debug("the update was: %s", update.to_dict())
        lang = user_lang(update)
        try:
            if update.callback_query is not None:
                await update.callback_query.answer(t(lang, "error"))
            elif (
                update.effective_message is not None
                and update.effective_chat.type != ChatType.CHANNEL
            ):
                message = update.effective_message
                await message.reply_text(t(lang, "error"))
        except TelegramError as exc:
            logger.warning("could not tell the user about the error: %s", exc)
