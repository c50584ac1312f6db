"""New articles: the one path from "new files in SEEDS_DIR" to "subscribed chats told".

Whatever brings articles in (a feed's ingest job, the SEEDS_DIR rescan job, /reload, a
restart) ends in `NewsService.refresh`, which reloads the library and pushes each article not
pushed before to every subscribed chat, and to each chat that follows a topic (/follow) the
new passages that answer it: one message a chat a refresh, after its subscription's. The
subscription store remembers the chats, the articles and passages already pushed, so each is
pushed at most once, across restarts, and queues the pushes (its outbox) before they are sent,
so a stop mid-push leaves the rest for the next start; the handlers reach it through this
service.

Each feed is fetched on its own (one job per feed, each fetch in its own thread), so a feed
that drips, hangs or fails never keeps another from arriving. A fetch cannot be interrupted,
so its thread is a daemon the bot does not wait for when it stops: SIGTERM ends the bot within
seconds even mid-fetch. Seed files are written whole or not at all (a temporary file, then a
rename), so an abandoned fetch leaves nothing half-written.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, TelegramError
from telegram.ext import Application, ContextTypes

from retrieval import Article, Hit, IndexKeeper, Topic
from retrieval.feeds import FeedReport, format_report, ingest_feeds
from retrieval.progress import Reporter
from retrieval.usage import counted

from . import render
from .fairness import ChatLanes
from .i18n import Lang, pick_language
from .logs import pseudonym
from .subscriptions import SubscriptionStore

logger = logging.getLogger(__name__)

PUSH_MAX_ARTICLES = 10  # per refresh: a big batch (a backfilled archive) must not flood chats
# The newest new articles of a refresh that followed topics are matched against (a backfill
# of thousands must not hold up the pushes), and the passages one alert shows at most.
ALERT_MAX_ARTICLES = 100
ALERT_MAX_PASSAGES = 5
# An alert waits for the answers its chat is getting (answers go first), this long at most.
ALERT_WAIT_SECONDS = 30.0
ALERT_WAIT_STEP = 0.1
EMBEDDING_PROGRESS_SECONDS = 60.0
STOP_POLL_SECONDS = 0.25  # how often a job waiting for a fetch looks whether the bot stops
# When the bot stops, a fetch gets this long to finish (one that is writing finishes in
# milliseconds); then it is abandoned.
STOP_GRACE_SECONDS = 1.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """One feed's latest fetch, for the health report. No URL and no error text: anyone who
    reaches /healthz may read the report, and a feed's URL can hold credentials or a token
    (the log has the error, redacted)."""

    at: datetime
    ok: bool  # the feed was read
    last_success: datetime | None  # when it last was, this run; None: not yet


@dataclass(slots=True)
class Alert:
    """One chat's alert of a refresh: the new passages that answer its topics."""

    chat_id: int
    lang: Lang
    items: list[tuple[str, int, Hit]] = field(default_factory=list)  # (topic, its number, hit)


def alert_key(hit: Hit) -> str:
    """What a pushed passage is remembered by: its article's URL and a hash of its paragraph,
    which no merge or renumbering changes."""
    text = " ".join(hit.passage.text.split())
    return f"{hit.article.url}#{hashlib.sha1(text.encode('utf-8')).hexdigest()[:16]}"


class NewsService:
    """Feed ingest, subscriptions and the pushes that follow; the index's upkeep is its
    keeper's (refresh, merges, vectors), which this service only tells when to act.

    Lifecycle: `start` from post_init; `catch_up` once, right after the application starts;
    `rescan` and `ingest` (one job per feed, the feed's URL as the job's data) as repeating
    jobs; `refresh` for /reload; `close` when the application stops."""

    def __init__(
        self,
        keeper: IndexKeeper,
        subscriptions: SubscriptionStore,
        feed_urls: Sequence[str] = (),
        feed_proxy: str | None = None,
        feed_allow_private: bool = False,
        alert_keep_days: float = 30.0,
    ) -> None:
        self.keeper = keeper
        self.library = keeper.library
        self.subscriptions = subscriptions
        self.feed_urls = tuple(feed_urls)
        self.feed_proxy = feed_proxy
        self.feed_allow_private = feed_allow_private  # FEED_ALLOW_PRIVATE
        self.alert_keep_days = alert_keep_days  # ALERT_KEEP_DAYS
        self._fetching: set[str] = set()  # feeds whose fetch is under way
        # canonical URL → seed file: the index's articles and what feeds wrote since the last
        # refresh (ingest adds to it), so that no feed writes an article twice; None: ask the
        # keeper again (after a refresh)
        self._known: dict[str, Path] | None = None
        self.ingests: dict[str, IngestOutcome] = {}  # feed URL → its latest fetch
        self._merging: asyncio.Task[bool] | None = None
        # the task sending what the outbox holds (one at a time): awaited by close, also when
        # a refresh started it before the application ran (Application.create_task awaits
        # only the ones made while it runs)
        self._sending: asyncio.Task[None] | None = None
        self._queued_meanwhile = False  # pushes queued while it was looking at the outbox
        # the keeper embedding every passage ahead of questions (IndexKeeper.embed_ahead): a
        # daemon thread, as it may run for hours on a new archive and must not hold up a stop
        self._embedding: threading.Thread | None = None
        self._stop_embedding = threading.Event()

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
        self._embed_ahead()

    def _embed_ahead(self) -> None:
        """Embed the passages not embedded yet in the background, newest first, so that a
        question pays only for its own embedding. A refresh meanwhile is taken up by the
        running thread (its new articles first); one that finished is started again."""
        if self._embedding is None or not self._embedding.is_alive():
            self._embedding = threading.Thread(
                target=self.keeper.embed_ahead,
                # hours on a new archive: a log line a minute, not one every few seconds
                args=(self._stop_embedding, Reporter(every=EMBEDDING_PROGRESS_SECONDS)),
                name="embed-ahead",
                daemon=True,
            )
            self._embedding.start()

    async def catch_up(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue, once the application runs: push what arrived while the bot was down, and
        what the last stop left queued."""
        await self._push_new(context.application)

    # ---- new articles -------------------------------------------------------------------

    async def rescan(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue: pick up files added to SEEDS_DIR without a restart, and push them."""
        await self._refresh_or_log(context.application)

    async def ingest(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """JobQueue, one job per feed: fetch the feed into SEEDS_DIR, then refresh if anything
        was written."""
        url = context.job.data
        application = context.application
        if url in self._fetching:  # still at it since the last run: this feed is slow, not late
            logger.info("feed %s: the previous fetch is still under way; skipped this run", url)
            return
        self._fetching.add(url)
        started = datetime.now(UTC)
        try:
            report = await _until_stopped(application, lambda: self._fetch(url), f"fetching {url}")
        finally:
            self._fetching.discard(url)
        if report is None:
            return
        ok = report.error is None
        earlier = self.ingests.get(url)
        last_success = started if ok else (earlier.last_success if earlier else None)
        self.ingests[url] = IngestOutcome(started, ok, last_success)
        for note in report.notes:
            logger.debug("feed %s: %s", report.url, note)
        level = logging.WARNING if report.error else logging.INFO
        logger.log(level, "feed %s", format_report(report))
        if (report.new or report.updated) and application.running:
            await self._refresh_or_log(application)

    def _fetch(self, url: str) -> FeedReport:
        """Ingest one feed (blocking) into the library's own directory, the one the answers
        come from. Whatever goes wrong is that feed's failure alone."""
        try:
            if self._known is None:
                self._known = self.keeper.known_articles()
            [report] = ingest_feeds(
                [url],
                self.keeper.seeds_dir,
                proxy=self.feed_proxy,
                allow_private=self.feed_allow_private,
                known=self._known,
            )
        except Exception as exc:
            logger.exception("feed %s: ingest failed", url)
            return FeedReport(url, error=" ".join(f"{type(exc).__name__}: {exc}".split())[:200])
        return report

    async def refresh(self, application: Application) -> bool:
        """Rescan SEEDS_DIR; when anything changed, push the new articles, and merge the
        index's segments in the background if its merge policy asks. True if changed."""
        changed = await asyncio.to_thread(self.keeper.refresh)
        if changed:
            self._known = None  # the index holds what feeds wrote now
            stats = await asyncio.to_thread(self.library.stats)
            logger.info(
                "library refreshed: %s, %s",
                counted(stats.articles, "article"),
                counted(stats.passages, "passage"),
            )
            await self._push_new(application)
            self._embed_ahead()
            await self._merge_if_wanted()
        return changed

    async def _merge_if_wanted(self) -> None:
        if self._merging is not None and not self._merging.done():
            return
        if await asyncio.to_thread(self.keeper.merge_wanted):
            # not application.create_task: the application would wait for it when it stops
            self._merging = asyncio.create_task(
                asyncio.to_thread(self.keeper.merge_aside), name="merge-segments"
            )

    async def close(self) -> None:
        """Wait for the pushes under way (they end at the next message once the application
        has stopped; the rest stay queued for the next start), stop embedding ahead and a
        merge under way (the index stays as it was before it), and write out the passages'
        vectors (IndexKeeper.close)."""
        if self._sending is not None:
            await asyncio.gather(self._sending, return_exceptions=True)
        self._stop_embedding.set()
        if self._embedding is not None:
            # one passage's embedding at most; a daemon thread never holds up the exit
            await asyncio.to_thread(self._embedding.join, STOP_GRACE_SECONDS)
        await asyncio.to_thread(self.keeper.close)
        if self._merging is not None:
            await self._merging  # returns once the keeper has stopped its merge

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

    # ---- followed topics ----------------------------------------------------------------

    def follow(self, chat_id: int, text: str, lang: Lang, at_most: int) -> tuple[str, int]:
        """Follow a topic in a chat (blocking: the engine reads it now, once): what
        SubscriptionStore.follow says, or ("vague", 0) for a topic without a word the engine
        could find articles by (只有“的”)."""
        topic = self.library.read_topic(text)
        if not topic.weighed_words:
            return "vague", 0
        return self.subscriptions.follow(chat_id, text, topic.dumps(), lang, at_most)

    # ---- pushing ------------------------------------------------------------------------

    async def _push_new(self, application: Application) -> None:
        """Claim the articles not pushed yet and queue them, with the alerts of the topics
        they answer, then send the queue in the background, so a long push (many chats,
        flood limits) holds up neither the jobs nor /reload."""
        try:
            articles, new_ids = await asyncio.to_thread(self._claim_new)
            alerts: list[Alert] = []
            if new_ids:
                try:
                    alerts = await asyncio.to_thread(self._alerts, new_ids, articles)
                except Exception:
                    logger.exception("could not match the followed topics; no alert sent")
            await asyncio.to_thread(self._queue, articles, alerts)
        except Exception:
            logger.exception("could not work out or queue what is new; nothing pushed")
        self._queued_meanwhile = True
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send_queued(application), name="push")

    def _queue(self, articles: Sequence[Article], alerts: Sequence[Alert]) -> None:
        """Queue each article for every subscribed chat, then each chat its alert."""
        chats = self.subscriptions.queue(
            [a.id for a in articles],
            [(a.chat_id, render.render_alert(a.items, a.lang)) for a in alerts],
        )
        if articles:
            logger.info(
                "pushing %s to %s", counted(len(articles), "new article"), counted(chats, "chat")
            )
        if alerts:
            logger.info("sending topic alerts to %s", counted(len(alerts), "chat"))

    def _claim_new(self) -> tuple[list[Article], list[str]]:
        """The new articles to push, oldest first, at most PUSH_MAX_ARTICLES (the newest); and
        the ids of the newest ALERT_MAX_ARTICLES new ones, for topic alerts."""
        ids = [ref.id for ref in self.library.article_refs()]  # newest first
        new_ids = self.subscriptions.claim_new(ids)
        new_ordered = [i for i in ids if i in new_ids]
        if len(new_ordered) > PUSH_MAX_ARTICLES:
            logger.info(
                "%d new articles; pushing only the %d newest", len(new_ordered), PUSH_MAX_ARTICLES
            )
        new = [a for i in new_ordered[:PUSH_MAX_ARTICLES] if (a := self.library.article(i))]
        # Oldest first, so each chat ends with the newest article, as a news feed reads.
        return new[::-1], new_ordered[:ALERT_MAX_ARTICLES]

    def _alerts(self, new_ids: Sequence[str], pushed: Sequence[Article]) -> list[Alert]:
        """Each chat's alert for these new articles (blocking): the best passage of each new
        article that answers one of its topics, never one pushed to the chat before, nor from
        an article its subscription brings it now; passages claimed before they are sent."""
        pruned = self.subscriptions.prune_alerts(self.alert_keep_days)
        if pruned:
            logger.info("forgot %s pushed as alerts", counted(pruned, "passage"))
        rows = self.subscriptions.followed()
        if not rows:
            return []
        started = time.monotonic()
        topics, reread = self._topics(rows)
        if reread:
            self.subscriptions.reread(reread)
        matches = self.library.match_topics(topics, new_ids)
        subscribed = set(self.subscriptions.chats())
        pushed_urls = {a.url for a in pushed}
        numbers: dict[int, int] = {}  # topic position → its number in its chat
        for position, (_, chat_id, *_) in enumerate(rows):
            earlier = position and rows[position - 1][1] == chat_id
            numbers[position] = numbers[position - 1] + 1 if earlier else 1
        by_chat: dict[int, Alert] = {}
        for match in matches:
            _, chat_id, text, _, lang = rows[match.topic]
            if chat_id in subscribed and match.hit.article.url in pushed_urls:
                continue
            alert = by_chat.setdefault(chat_id, Alert(chat_id, pick_language(lang)))
            alert.items.append((text, numbers[match.topic], match.hit))
        alerts = [a for a in by_chat.values() if self._claim(a)]
        logger.info(
            "%s matched against %s in %.2f s: %s for %s",
            counted(len(topics), "topic"),
            counted(len(new_ids), "new article"),
            time.monotonic() - started,
            counted(sum(len(a.items) for a in alerts), "passage"),
            counted(len(alerts), "chat"),
        )
        return alerts

    def _topics(
        self, rows: Sequence[tuple[int, int, str, str, str]]
    ) -> tuple[list[Topic], list[tuple[int, str]]]:
        """The stored topics as the engine reads them, and those read again (their id and
        new reading): stored by an older version, or before the analysis changed."""
        topics: list[Topic] = []
        reread: list[tuple[int, str]] = []
        for topic_id, _, text, reading, _ in rows:
            topic = Topic.loads(reading)
            if topic is None or not self.library.is_current(topic):
                topic = self.library.read_topic(text)
                reread.append((topic_id, topic.dumps()))
            topics.append(topic)
        return topics, reread

    def _claim(self, alert: Alert) -> bool:
        """Keep the passages of an alert never pushed to its chat (one each, the first topic's
        that matched it), at most ALERT_MAX_PASSAGES, and record them as pushed. False if
        none is left."""
        fresh: dict[str, tuple[str, int, Hit]] = {}
        for item in alert.items:
            fresh.setdefault(alert_key(item[2]), item)
        keys = list(fresh)[:ALERT_MAX_PASSAGES]
        claimed = self.subscriptions.claim_alerts(alert.chat_id, keys)
        alert.items = [fresh[k] for k in keys if k in claimed]
        return bool(alert.items)

    async def _send_queued(self, application: Application) -> None:
        """Send what the outbox holds, first queued first, until it is empty; stop at the next
        message once the application stops (the rest is sent after the next start). A chat
        that is gone is forgotten, its queue with it; an article gone from the library is
        skipped."""
        rendered: dict[str, str | None] = {}  # article id → its push (None: gone), made once
        try:
            while application.running:
                self._queued_meanwhile = False
                queued = await asyncio.to_thread(self.subscriptions.take_queued)
                if queued is None:
                    if self._queued_meanwhile:  # queued after the outbox was looked at
                        continue
                    return
                if queued.article_id is not None:
                    if queued.article_id not in rendered:
                        article = await asyncio.to_thread(self.library.article, queued.article_id)
                        rendered[queued.article_id] = (
                            None if article is None else render.render_new_article(article)
                        )
                    html = rendered[queued.article_id]
                    if html is None:
                        continue
                else:
                    await _after_answers(application, queued.chat_id)
                    html = queued.alert or ""
                await self._send(application.bot, queued.chat_id, html)
            left = await asyncio.to_thread(self.subscriptions.queued)
            if left:
                logger.info("stopping: %s queued for the next start", counted(left, "push"))
        except Exception:
            logger.exception(
                "sending the queued pushes failed; the rest waits for the next refresh"
            )

    async def _send(self, bot: Bot, chat_id: int, html: str) -> None:
        """Send one push. A chat that is gone for good is forgotten (its subscription, topics
        and queue); one that moved (a group that became a supergroup) gets it at its new id."""
        try:
            await bot.send_message(chat_id, html)
            return
        except ChatMigrated as exc:  # the group became a supergroup, with a new id
            await asyncio.to_thread(self.subscriptions.move, chat_id, exc.new_chat_id)
            logger.info(
                "chat %s is now %s; subscription and topics moved",
                pseudonym(chat_id),
                pseudonym(exc.new_chat_id),
            )
            await self._send(bot, exc.new_chat_id, html)
            return
        except Forbidden as exc:  # blocked by the user, kicked from the group, deactivated
            reason = exc.message
        except BadRequest as exc:
            if "chat not found" not in exc.message.lower():
                logger.warning("push to chat %s failed: %s", pseudonym(chat_id), exc.message)
                return
            reason = exc.message
        except TelegramError as exc:  # flood limits and retries are the rate limiter's job
            logger.warning("push to chat %s failed: %s", pseudonym(chat_id), exc.message)
            return
        await asyncio.to_thread(self.subscriptions.forget, chat_id)
        logger.info("chat %s unsubscribed: %s", pseudonym(chat_id), reason)


async def _after_answers(application: Application, chat_id: int) -> None:
    """Wait while the chat has updates being answered (answers go first), a while at most."""
    lanes = application.update_processor
    if not isinstance(lanes, ChatLanes):
        return
    waited = 0.0
    while lanes.answering(chat_id) and waited < ALERT_WAIT_SECONDS and application.running:
        await asyncio.sleep(ALERT_WAIT_STEP)
        waited += ALERT_WAIT_STEP


async def _until_stopped(application: Application, work: Callable[[], T], what: str) -> T | None:
    """`work()`'s result, run in a daemon thread; None if the application stops first (the
    thread is then abandoned after STOP_GRACE_SECONDS: a daemon does not hold up the exit,
    as a thread of asyncio's executor would)."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            future.set_result(work())
        except BaseException as exc:
            future.set_exception(exc)

    threading.Thread(target=run, name=what, daemon=True).start()
    done = asyncio.wrap_future(future)
    while not done.done() and application.running:
        await asyncio.wait([done], timeout=STOP_POLL_SECONDS)
    if not done.done():
        await asyncio.wait([done], timeout=STOP_GRACE_SECONDS)
    if not done.done():
        logger.warning("stopping while %s: left unfinished", what)
        return None
    return done.result()
