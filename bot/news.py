"""New articles: the one path from "new files in SEEDS_DIR" to "subscribed chats told".

Whatever brings articles in (the feed ingest job, the SEEDS_DIR rescan job, /reload, a
restart) ends in `NewsService.refresh`, which reloads the library and pushes each article not
pushed before to every subscribed chat. The subscription store remembers the chats and the
articles already pushed, so each is pushed at most once, across restarts; the handlers reach
it through this service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import Application, ContextTypes

from retrieval import Article, Library
from retrieval.feeds import format_report, ingest_feeds

from . import render
from .subscriptions import SubscriptionStore

logger = logging.getLogger(__name__)

PUSH_MAX_ARTICLES = 10  # per refresh: a big batch (a backfilled archive) must not flood chats


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """The last feed fetch, for the health report."""

    at: datetime
    feeds: int
    failed: int
    new: int = 0
    updated: int = 0


class NewsService:
    """Feed ingest, library refreshes, subscriptions and the pushes that follow.

    Lifecycle: `start` from post_init; `catch_up` once, right after the application starts;
    `rescan` and `ingest` as repeating jobs; `refresh` for /reload."""

    def __init__(
        self,
        library: Library,
        subscriptions: SubscriptionStore,
        feed_urls: Sequence[str] = (),
        feed_proxy: str | None = None,
    ) -> None:
        self.library = library
        self.subscriptions = subscriptions
        self.feed_urls = tuple(feed_urls)
        self.feed_proxy = feed_proxy
        self.last_ingest: IngestOutcome | None = None

    # ---- start-up -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bring a subscriptions database from an older version up to today's article ids;
        on the very first start, count the existing articles as pushed (no backlog)."""
        refs = await asyncio.to_thread(self.library.article_refs)
        migrated = await asyncio.to_thread(self.subscriptions.migrate, refs)
        if migrated:
            logger.info("subscriptions database upgraded: %d pushed articles re-keyed", migrated)
        recorded = await asyncio.to_thread(self.subscriptions.baseline, [r.id for r in refs])
        if recorded:
            logger.info("first start: %d existing articles will not be pushed", recorded)

    async def catch_up(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue, once the application runs: push what arrived while the bot was down."""
        await self._push_new(context.application)

    # ---- new articles -------------------------------------------------------------------

    async def rescan(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue: pick up files added to SEEDS_DIR without a restart, and push them."""
        await self._refresh_or_log(context.application)

    async def ingest(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue: fetch the feeds into SEEDS_DIR, then refresh if anything was written."""
        started = datetime.now(UTC)
        try:
            # The library's own directory: the one the answers come from.
            reports = await asyncio.to_thread(
                ingest_feeds, self.feed_urls, self.library.seeds_dir, proxy=self.feed_proxy
            )
        except Exception:
            logger.exception("feed ingest failed")
            self.last_ingest = IngestOutcome(started, len(self.feed_urls), len(self.feed_urls))
            return
        self.last_ingest = IngestOutcome(
            started,
            feeds=len(reports),
            failed=sum(bool(r.error) for r in reports),
            new=sum(r.new for r in reports),
            updated=sum(r.updated for r in reports),
        )
        for report in reports:
            for note in report.notes:
                logger.debug("feed %s: %s", report.url, note)
            level = logging.WARNING if report.error else logging.INFO
            logger.log(level, "feed %s", format_report(report))
        if any(report.new or report.updated for report in reports):
            await self._refresh_or_log(context.application)

    async def refresh(self, application: Application) -> bool:
        """Rescan SEEDS_DIR; when anything changed, push the new articles. True if changed."""
        changed = await asyncio.to_thread(self.library.refresh)
        if changed:
            stats = await asyncio.to_thread(self.library.stats)
            logger.info(
                "library refreshed: %d articles, %d passages", stats.articles, stats.passages
            )
            await self._push_new(application)
        return changed

    async def _refresh_or_log(self, application: Application) -> None:
        """A job's refresh: a failure keeps the previous library and the job's schedule."""
        try:
            await self.refresh(application)
        except Exception:
            logger.exception("refreshing the library failed; keeping the previous snapshot")

    # ---- subscriptions ------------------------------------------------------------------

    async def subscribe(self, chat_id: int) -> bool:
        """Push new articles to this chat from now on; False if it already was subscribed."""
        return await asyncio.to_thread(self.subscriptions.subscribe, chat_id)

    async def unsubscribe(self, chat_id: int) -> bool:
        """Stop pushing to this chat; False if it was not subscribed."""
        return await asyncio.to_thread(self.subscriptions.unsubscribe, chat_id)

    # ---- pushing ------------------------------------------------------------------------

    async def _push_new(self, application: Application) -> None:
        """Record the articles not pushed yet and push them in the background, so a long push
        (many chats, flood limits) holds up neither the jobs nor /reload."""
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
        new_ids = self.subscriptions.claim_new(ids)
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
            chats = [c for c in await asyncio.to_thread(self.subscriptions.chats) if c not in gone]
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
            await asyncio.to_thread(self.subscriptions.move, chat_id, exc.new_chat_id)
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
        await asyncio.to_thread(self.subscriptions.unsubscribe, chat_id)
        logger.info("chat %s unsubscribed: %s", chat_id, reason)
        return False
