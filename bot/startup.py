"""Starting and stopping the bot: a clear one-line failure at start, or serve until a signal.

What PTB's run_polling / run_webhook would do, with the order and the errors owned here:
the webhook port is bound before anything else (so "address in use" never leaves a webhook
registered), the Bot API is retried for START_RETRY_SECONDS with one WARNING per attempt,
and every failure at start ends as a StartupError whose text is one line for the operator
(never the token, which PTB puts in its own InvalidToken message).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from telegram.error import BadRequest, InvalidToken, NetworkError, TelegramError
from telegram.ext import Application

from .app import ALLOWED_UPDATES, NEWS
from .news import IngestOutcome, NewsService
from .settings import Settings, masked
from .webhook import WebhookServer

logger = logging.getLogger(__name__)

REJECTED_TOKEN = "Telegram rejected the token: get a new one from @BotFather"
FIRST_RETRY_DELAY = 1.0  # seconds, doubled after each failed attempt
MAX_RETRY_DELAY = 8.0
T = TypeVar("T")


class StartupError(Exception):
    """The bot cannot start; str(error) is one line for the operator (exit status 1)."""


class Stopped(Exception):
    """A signal arrived while the bot was still starting."""


def run(application: Application, settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM. Raises StartupError when the bot cannot start."""
    asyncio.run(_serve_until_signal(application, settings))


async def _serve_until_signal(application: Application, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with running(application, settings, stop=stop):
            await stop.wait()
    except Stopped:
        logger.info("stopped while starting")


@asynccontextmanager
async def running(
    application: Application,
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    poll_timeout: float = 10.0,
) -> AsyncIterator[Application]:
    """The bot started (webhook server or long polling) for the duration of the block; stopped
    and shut down after it. `stop`, once set, ends the start-up retries (Stopped)."""
    stop = stop or asyncio.Event()
    server = None
    if settings.webhook_url:
        server = WebhookServer(
            application,
            settings.webhook_path,
            settings.webhook_secret or "",
            lambda: health_report(application),
        )
        try:
            await server.listen(settings.webhook_listen, settings.webhook_port)
        except OSError as exc:
            raise StartupError(
                f"cannot listen on {settings.webhook_listen}:{settings.webhook_port} "
                f"(WEBHOOK_LISTEN, WEBHOOK_PORT): {exc.strerror or exc}"
            ) from None
    try:
        await _retrying(application.initialize, settings, stop)
        try:
            if application.post_init:
                await application.post_init(application)
            if server is not None:
                await _retrying(lambda: _set_webhook(application, settings), settings, stop)
                logger.info(
                    "webhook server on %s:%s/%s",
                    settings.webhook_listen,
                    settings.webhook_port,
                    settings.webhook_path,
                )
            else:
                await _retrying(
                    lambda: application.updater.start_polling(  # type: ignore[union-attr]
                        timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES
                    ),
                    settings,
                    stop,
                )
                logger.info("long polling %s%s", settings.api_root, via(settings))
            await application.start()
            try:
                yield application
            finally:
                if server is not None:
                    await server.close()  # no new updates while the last ones are handled
                if application.updater and application.updater.running:
                    await application.updater.stop()
                if application.running:
                    await application.stop()
                    # as Application.run_polling does: post_stop only after a stop
                    if application.post_stop:
                        await application.post_stop(application)
        finally:
            await application.shutdown()
    finally:
        if server is not None:
            await server.close()
        await application.bot.shutdown()  # the HTTP clients, even when initialize failed


async def _set_webhook(application: Application, settings: Settings) -> bool:
    return await application.bot.set_webhook(
        url=settings.webhook_url or "",
        secret_token=settings.webhook_secret,
        allowed_updates=ALLOWED_UPDATES,
    )


async def _retrying(call: Callable[[], Awaitable[T]], settings: Settings, stop: asyncio.Event) -> T:
    """`call()`, retried on network errors for settings.start_retry_seconds; every failure
    becomes a one-line StartupError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.start_retry_seconds
    delay = FIRST_RETRY_DELAY
    attempts = 0
    while True:
        attempts += 1
        try:
            return await call()
        except InvalidToken:  # 401 or 404: PTB's message carries the token, so it is dropped
            raise StartupError(REJECTED_TOKEN) from None
        except BadRequest as exc:  # a NetworkError subclass in PTB, but final
            raise StartupError(
                f"the Bot API at {settings.api_root} refused: {exc.message}"
            ) from None
        except NetworkError as exc:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StartupError(_unreachable(settings, exc, attempts)) from None
            wait = min(delay, remaining)
            logger.warning(
                "cannot reach the Telegram Bot API at %s%s (%s); trying again in %.0f s",
                settings.api_root,
                via(settings),
                exc.message,
                wait,
            )
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
            if stop.is_set():
                raise Stopped from None
            delay = min(delay * 2, MAX_RETRY_DELAY)
        except TelegramError as exc:
            raise StartupError(
                f"the Bot API at {settings.api_root} answered: {exc.message}"
            ) from None


def via(settings: Settings) -> str:
    return f" through {masked(settings.telegram_proxy)}" if settings.telegram_proxy else ""


def _unreachable(settings: Settings, exc: NetworkError, attempts: int) -> str:
    if settings.telegram_proxy:
        hint = "check TELEGRAM_PROXY and that the proxy is up"
    else:
        hint = (
            "check the network (and HTTPS_PROXY / ALL_PROXY, if set), or set TELEGRAM_PROXY "
            "(e.g. socks5://host:1080) if Telegram is reachable here only through a proxy"
        )
    tries = "1 attempt" if attempts == 1 else f"{attempts} attempts"
    return (
        f"cannot reach the Telegram Bot API at {settings.api_root}{via(settings)} "
        f"({exc.message}; {tries} in {settings.start_retry_seconds:g} s): {hint}"
    )


async def health_report(application: Application) -> dict[str, Any]:
    """What GET /healthz answers: running or not, the library's size and newest date, and each
    feed's latest fetch. Anyone who reaches the port may read it, so a feed is named by its
    number in FEED_URLS and its host alone: never its credentials, path or query, and never
    an error's text (that goes to the log)."""
    news: NewsService = application.bot_data[NEWS]
    # counted once per state of the index: a flood of checks neither queues behind answers in
    # the threads nor takes them from answers
    stats = news.library.stats()
    return {
        "status": "ok" if application.running else "starting",
        "articles": stats.articles,
        "passages": stats.passages,
        "newest_article": stats.newest.isoformat() if stats.newest else None,
        "feeds": [
            _feed_health(number, url, news.ingests.get(url))
            for number, url in enumerate(news.feed_urls, 1)
        ],
    }


def _feed_health(number: int, url: str, last: IngestOutcome | None) -> dict[str, Any]:
    def when(at: datetime | None) -> str | None:
        return at.isoformat(timespec="seconds") if at else None

    return {
        "feed": number,
        "host": urlsplit(url).hostname,
        "ok": None if last is None else last.ok,  # None: not fetched yet
        "last_fetch": when(last.at if last else None),
        "last_success": when(last.last_success if last else None),
    }
