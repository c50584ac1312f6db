"""Build the Application (every handler registered in one block) and run it."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllGroupChats,
    BotCommandScopeDefault,
    LinkPreviewOptions,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    BaseRateLimiter,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from retrieval import IndexKeeper
from retrieval.usage import counted

from . import commands
from .arrival import ArrivalGate
from .fairness import ChatLanes, UserRate
from .handlers import BotHandlers
from .i18n import Lang
from .news import NewsService
from .settings import Settings
from .subscriptions import SubscriptionStore

logger = logging.getLogger(__name__)

# Only what the bot handles: Telegram then never sends edited messages or channel posts.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
NETWORK_RETRIES = 3
NETWORK_RETRY_DELAY = 0.5  # seconds, doubled on each retry
# Start-up calls retry in bot.startup, one WARNING per attempt; getUpdates in the Updater;
# setMyCommands in set_command_menu, one WARNING per attempt for all its menus.
OWN_RETRIES = frozenset({"getUpdates", "getMe", "setWebhook", "deleteWebhook", "setMyCommands"})
# Where the start-up code finds the NewsService: the health report reads it.
NEWS = "news"


class RetryingRateLimiter(AIORateLimiter):
    """AIORateLimiter (flood limits, waits out 429 retry_after) that also retries requests
    which failed on the network. BadRequest is a NetworkError subclass in PTB but is final."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict | list[dict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict | list[dict]:
        delay = NETWORK_RETRY_DELAY
        for attempt in range(NETWORK_RETRIES + 1):
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
            except BadRequest:
                raise
            except NetworkError as exc:
                if attempt == NETWORK_RETRIES or endpoint in OWN_RETRIES:
                    raise
                logger.warning("%s failed (%s); retrying in %.1f s", endpoint, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


def build_application(
    settings: Settings,
    keeper: IndexKeeper,
    rate_limiter: BaseRateLimiter | None = None,
    subscriptions: SubscriptionStore | None = None,
) -> Application:
    """The bot, answering from `keeper`'s library, talking to settings.api_root. `rate_limiter`
    defaults to Telegram's flood limits with retries; the load benchmark passes an unlimited
    one. `subscriptions` defaults to the store at settings.subscriptions_db."""
    store = (
        subscriptions if subscriptions is not None else SubscriptionStore(settings.subscriptions_db)
    )
    library = keeper.library
    news = NewsService(
        keeper,
        store,
        settings.feed_urls,
        settings.feed_proxy,
        settings.feed_allow_private,
        settings.alert_keep_days,
    )
    h = BotHandlers(library, settings, news, store)
    # The per-user rate, counted as updates arrive (not as their chat's turn comes).
    gate = ArrivalGate(UserRate(settings.questions_per_minute), store.autoanswers)

    async def prune_copies(_: object = None) -> None:
        """The copy of the subscriptions database kept before an upgrade, once it is old
        enough: it still lists the chats that unsubscribed since."""
        try:
            deleted = await asyncio.to_thread(store.prune_copies)
        except sqlite3.Error as exc:  # busy or unreadable now: the next day's run tries again
            logger.warning("could not look for old copies of the subscriptions database: %s", exc)
            return
        for path in deleted:
            logger.info("deleted %s, the copy kept before the database's upgrade", path.name)

    async def post_init(application: Application) -> None:
        await set_command_menu(application)
        await news.start()
        await prune_copies()  # after news.start, which may have just upgraded the database
        stats = await asyncio.to_thread(library.stats)
        logger.info(
            "@%s ready: %s, %s",
            application.bot.username,
            counted(stats.articles, "article"),
            counted(stats.passages, "passage"),
        )

    builder = ApplicationBuilder()
    if settings.telegram_proxy:  # else httpx honours HTTPS_PROXY / ALL_PROXY
        builder = builder.proxy(settings.telegram_proxy).get_updates_proxy(settings.telegram_proxy)
    application = (
        builder.token(settings.token)
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
                # Every reply threads to the message it answers, and is still sent when that
                # message was deleted meanwhile.
                do_quote=True,
                allow_sending_without_reply=True,
            )
        )
        .rate_limiter(rate_limiter or RetryingRateLimiter(max_retries=3))
        # Many chats at once, each chat's updates in order; retrieval runs in threads so the
        # loop stays free.
        .concurrent_updates(ChatLanes(gate=gate))
        .post_init(post_init)
        .post_stop(lambda _: news.close())
        .build()
    )

    new_message = filters.UpdateType.MESSAGE  # not edited messages, not channel posts
    private = filters.ChatType.PRIVATE & new_message
    groups = filters.ChatType.GROUPS & new_message
    application.add_handlers(
        [
            *(
                CommandHandler(c.names, h.for_command(c), filters=new_message)
                for c in commands.COMMANDS
            ),
            MessageHandler(private & filters.COMMAND, h.unknown_command),
            MessageHandler(private & filters.TEXT, h.private_text),
            MessageHandler(groups & filters.TEXT & ~filters.COMMAND, h.group_text),
            MessageHandler(filters.StatusUpdate.MIGRATE, h.group_migrated),
            # Stickers, photos, voice… in private chats; service messages are left alone.
            MessageHandler(private & ~filters.TEXT & ~filters.StatusUpdate.ALL, h.non_text),
            CallbackQueryHandler(h.page_button),
            InlineQueryHandler(h.inline),
        ]
    )
    application.add_error_handler(h.on_error)
    application.bot_data[NEWS] = news

    jobs = application.job_queue
    # Once running (post_init has migrated and taken the baseline by then): push what arrived
    # while the bot was down. No misfire limit: APScheduler skips a one-off job that starts
    # more than 1 s late, and a slow start-up (network retries) can take longer than that.
    jobs.run_once(
        news.catch_up, when=0, name="push-new-articles", job_kwargs={"misfire_grace_time": None}
    )
    jobs.run_repeating(prune_copies, interval=86400, first=86400, name="prune-upgrade-copies")
    if settings.reload_seconds > 0:
        jobs.run_repeating(
            news.rescan,
            interval=settings.reload_seconds,
            first=settings.reload_seconds,
            name="rescan-seeds",
        )
    # One job per feed: a slow or failing feed only ever delays itself. The first fetch is a
    # one-off right after start, as the catch-up is: an interval job whose first run time
    # passed while the bot was starting (by a millisecond or a minute) would first run a whole
    # interval later.
    interval = settings.feed_interval_minutes * 60
    for url in settings.feed_urls:
        no_misfire = {"misfire_grace_time": None}
        jobs.run_once(news.ingest, when=0, data=url, name=f"ingest {url}", job_kwargs=no_misfire)
        jobs.run_repeating(news.ingest, interval, first=interval, data=url, name=f"ingest {url}")
    return application


async def set_command_menu(application: Application) -> None:
    """Register the command menu, one for each scope and language. A failure must not keep the
    bot from starting; network errors are retried, and each attempt that fails is one log line
    for all the menus (not one for each of them)."""

    async def register(scope: BotCommandScope, language_code: str | None, lang: Lang) -> None:
        group_member = isinstance(scope, BotCommandScopeAllGroupChats)
        menu = [
            BotCommand(name, description)
            for name, description in commands.menu(lang, group_member=group_member)
        ]
        await application.bot.set_my_commands(menu, scope, language_code)

    # Telegram shows a group's administrators their scope's menu before the one for all group
    # members; private chats get the default. All at once: with network retries, a flaky
    # start costs one back-off, not one a menu.
    scopes = (
        BotCommandScopeDefault(),
        BotCommandScopeAllGroupChats(),
        BotCommandScopeAllChatAdministrators(),
    )
    menus = [
        (scope, code, lang) for scope in scopes for code, lang in commands.MENU_LANGUAGES.items()
    ]
    delay = NETWORK_RETRY_DELAY
    for attempt in range(NETWORK_RETRIES + 1):
        results = await asyncio.gather(*(register(*m) for m in menus), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, TelegramError):
                raise result  # a bug, not Telegram's answer
        failed = [(m, r) for m, r in zip(menus, results, strict=True) if r is not None]
        if not failed:
            return
        menus = [m for m, _ in failed]
        error = failed[0][1]
        what = f"setMyCommands failed for {counted(len(menus), 'menu')} ({error})"
        transient = isinstance(error, NetworkError) and not isinstance(error, BadRequest)
        if not transient or attempt == NETWORK_RETRIES:
            logger.warning("%s; the command menu may be outdated", what)
            return
        logger.warning("%s; retrying in %.1f s", what, delay)
        await asyncio.sleep(delay)
        delay *= 2
