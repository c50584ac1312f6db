"""New articles: feed ingest on a schedule, and pushing what is new to subscribed chats.

Every library refresh goes through `NewsFeeds.refresh`, whoever triggers it (the ingest job,
the SEEDS_DIR rescan job, /reload), so an article is pushed however it arrived. Which articles
were pushed is kept in the subscription store, so each is pushed at most once, across restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import Application, ContextTypes

from retrieval import Article, Library
from retrieval.feeds import format_report, ingest_feeds

from . import render
from .settings import Settings
from .subscriptions import SubscriptionStore

logger = logging.getLogger(__name__)

PUSH_MAX_ARTICLES = 10  # per refresh: a big batch (a backfilled archive) must not flood chats


class NewsFeeds:
    """The ingest job, and the push of new articles after each refresh that changed something."""

    def __init__(self, library: Library, settings: Settings, store: SubscriptionStore) -> None:
        self.library = library
        self.settings = settings
        self.store = store

    # ---- start-up -----------------------------------------------------------------------

    async def start(self, application: Application) -> None:
        """First start: the existing articles count as announced. Every start: push what
        arrived while the bot was down (once the application runs, from a job)."""
        ids = [ref.id for ref in await asyncio.to_thread(self.library.article_refs)]
        recorded = await asyncio.to_thread(self.store.baseline, ids)
        if recorded:
            logger.info("first start: %d existing articles will not be pushed", recorded)
        application.job_queue.run_once(self._announce_job, when=0, name="announce-new-articles")

    async def _announce_job(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.announce(context.application)

    # ---- ingest and refresh -------------------------------------------------------------

    async def ingest(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue: fetch FEED_URLS into SEEDS_DIR, then load and push what is new."""
        try:
            # The library's own directory: the one the answers come from.
            reports = await asyncio.to_thread(
                ingest_feeds, self.settings.feed_urls, self.library.seeds_dir
            )
        except Exception:
            logger.exception("feed ingest failed")
            return
        for report in reports:
            for note in report.notes:
                logger.debug("feed %s: %s", report.url, note)
            level = logging.WARNING if report.error else logging.INFO
            logger.log(level, "feed %s", format_report(report))
        if any(report.new or report.updated for report in reports):
            try:
                await self.refresh(context.application)
            except Exception:
                logger.exception("refreshing the library failed; keeping the previous snapshot")

    async def refresh(self, application: Application) -> bool:
        """Rescan SEEDS_DIR; when anything changed, push the new articles. True if changed."""
        changed = await asyncio.to_thread(self.library.refresh)
        if changed:
            stats = await asyncio.to_thread(self.library.stats)
            logger.info(
                "library refreshed: %d articles, %d passages", stats.articles, stats.passages
            )
            await self.announce(application)
        return changed

    # ---- pushing ------------------------------------------------------------------------

    async def announce(self, application: Application) -> None:
        """Record the articles not announced yet and push them in the background, so a long
        push (many chats, flood limits) holds up neither the jobs nor /reload."""
        try:
            articles = await asyncio.to_thread(self._claim_new)
        except Exception:
            logger.exception("could not work out which articles are new; nothing pushed")
            return
        if articles:
            application.create_task(self._push(application, articles), name="push-new-articles")

    def _claim_new(self) -> list[Article]:
        """The new articles to push, oldest first, at most PUSH_MAX_ARTICLES (the newest)."""
        ids = [ref.id for ref in self.library.article_refs()]  # newest first
        new_ids = self.store.claim_new(ids)
        new_ordered = [i for i in ids if i in new_ids]
        if len(new_ordered) > PUSH_MAX_ARTICLES:
            logger.info(
                "%d new articles; pushing only the %d newest", len(new_ordered), PUSH_MAX_ARTICLES
            )
        new = [a for i in new_ordered[:PUSH_MAX_ARTICLES] if (a := self.library.article(i))]
        # Oldest first, so each chat ends with the newest article, as a news feed reads.
        return new[::-1]

    async def _push(self, application: Application, articles: Sequence[Article]) -> None:
        """Send each article to each subscribed chat; chats that are gone are unsubscribed."""
        gone: set[int] = set()
        for number, article in enumerate(articles):
            # Read per article: a chat that unsubscribed meanwhile gets no more.
            chats = [c for c in await asyncio.to_thread(self.store.chats) if c not in gone]
            if number == 0:
                logger.info("pushing %d new articles to %d chats", len(articles), len(chats))
            html = render.render_new_article(article)
            for chat_id in chats:
                if not application.running:  # shutting down: do not hold up the stop
                    logger.warning("stopped before pushing %s to every chat", article.url)
                    return
                if not await self._send(application.bot, chat_id, html):
                    gone.add(chat_id)

    async def _send(self, bot: Bot, chat_id: int, html: str) -> bool:
        """Send one push. False when the chat is gone for good; it is then unsubscribed."""
        try:
            await bot.send_message(chat_id, html)
            return True
        except ChatMigrated as exc:  # the group became a supergroup, with a new id
            await asyncio.to_thread(self.store.move, chat_id, exc.new_chat_id)
            logger.info("chat %s is now %s; subscription moved", chat_id, exc.new_chat_id)
            await self._send(bot, exc.new_chat_id, html)
            return False  # the old id is gone; the next article goes to the new one
        except Forbidden as exc:  # blocked by the user, kicked from the group, deactivated
            reason = exc.message
        except BadRequest as exc:
            if "chat not found" not in exc.message.lower():
                logger.warning("push to chat %s failed: %s", chat_id, exc.message)
                return True
            reason = exc.message
        except TelegramError as exc:  # flood limits and retries are the rate limiter's job
            logger.warning("push to chat %s failed: %s", chat_id, exc.message)
            return True
        await asyncio.to_thread(self.store.unsubscribe, chat_id)
        logger.info("chat %s unsubscribed: %s", chat_id, reason)
        return False
