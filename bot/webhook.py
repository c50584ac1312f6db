"""The webhook server: Telegram's updates in, `GET /healthz` out, nothing else.

PTB's own server (`run_webhook`) registers the webhook before it binds its port, reads every
body before checking the secret, and serves no other route. This one is bound first (so
"address in use" stops the start before `setWebhook`), checks the secret from the headers
and refuses before reading a byte of the body, caps the body size, and closes each connection
after one answer (a TLS proxy sits in front; Telegram never talks to it directly).

It also caps the connections it keeps open: past `MAX_CONNECTIONS` a new one is answered 503
at once and closed, so slow clients cannot use up the process's file descriptors. A request
it cannot read (a Content-Length that is no number, a body nested too deep to parse) gets 400
and one log line, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from telegram import Update
from telegram.ext import Application

logger = logging.getLogger(__name__)

SECRET_HEADER = "x-telegram-bot-api-secret-token"
MAX_BODY_BYTES = 1024 * 1024  # an update is a few KB; Telegram's biggest are far below this
MAX_HEAD_BYTES = 16 * 1024  # request line and headers
HEAD_SECONDS = 10.0  # a client that dribbles its headers is dropped
BODY_SECONDS = 30.0
# After an early answer (403, 413) the client may still be sending its body: read and drop a
# little of it before closing, or the close resets the connection and the client never sees
# the answer. Bounded in bytes and time, and nothing is kept.
LINGER_BYTES = 256 * 1024
LINGER_SECONDS = 1.0
# Telegram opens at most 100 connections to a webhook (setWebhook max_connections, default
# 40); health checks need a few more.
MAX_CONNECTIONS = 128
_LENGTH = re.compile(r"[0-9]{1,20}")  # ASCII digits: str.isdigit also takes "²", int() not

Health = Callable[[], Awaitable[Mapping[str, Any]]]


class WebhookServer:
    """Serves POST /<path> (updates, with the secret) and GET /healthz on one port."""

    def __init__(
        self,
        application: Application,
        path: str,
        secret: str,
        health: Health,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.application = application
        self.path = "/" + path.lstrip("/")
        self.secret = secret.encode()
        self.health = health
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self._open = 0  # connections being served
        self._server: asyncio.Server | None = None

    async def listen(self, host: str, port: int) -> None:
        """Bind and start accepting; raises OSError (address in use, no permission)."""
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self.max_connections:
            # Nothing read, nothing waited for: the descriptor is free again at once.
            logger.debug("webhook connection over %d open ones refused", self.max_connections)
            with contextlib.suppress(ConnectionError):
                _respond(writer, HTTPStatus.SERVICE_UNAVAILABLE, b"")
            writer.close()
            return
        self._open += 1
        try:
            await self._serve_one(reader, writer)
        finally:
            self._open -= 1

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            status, body = await self._answer(reader, writer)
            _respond(writer, status, body)
            await writer.drain()
            writer.write_eof()
            await _linger(reader)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client left or stalled: nothing to answer
        except Exception:  # a bug here must not take the server down
            logger.exception("webhook request failed")
        finally:
            writer.close()

    async def _answer(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> tuple[HTTPStatus, bytes]:
        try:
            async with asyncio.timeout(HEAD_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, b""
        try:
            method, target, headers = _parse_head(head)
        except ValueError:
            return HTTPStatus.BAD_REQUEST, b""
        path = target.split("?", 1)[0]
        if path == "/healthz" and method == "GET":
            report = await self.health()
            return HTTPStatus.OK, json.dumps(report, ensure_ascii=False).encode()
        if path != self.path:
            return HTTPStatus.NOT_FOUND, b""
        if method != "POST":
            return HTTPStatus.METHOD_NOT_ALLOWED, b""
        # The secret first, from the headers alone: a stranger's body is never read.
        if not hmac.compare_digest(headers.get(SECRET_HEADER, "").encode(), self.secret):
            logger.debug("webhook request without the right secret refused")
            return HTTPStatus.FORBIDDEN, b""
        length = headers.get("content-length")
        if length is None:
            return HTTPStatus.LENGTH_REQUIRED, b""
        if not _LENGTH.fullmatch(length):
            logger.warning("webhook request with a Content-Length that is no number refused")
            return HTTPStatus.BAD_REQUEST, b""
        if int(length) > self.max_body_bytes:
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b""
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        async with asyncio.timeout(BODY_SECONDS):
            body = await reader.readexactly(int(length))
        try:
            update = Update.de_json(json.loads(body), self.application.bot)
        # RecursionError: JSON nested deeper than Python's stack (a 200 KB body suffices).
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
            logger.warning("webhook request with a body that is not an update refused")
            return HTTPStatus.BAD_REQUEST, b""
        await self.application.update_queue.put(update)
        return HTTPStatus.OK, b""


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, target and headers (lower-case names) of an HTTP/1.x request head."""
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(version)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(line)
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


async def _linger(reader: asyncio.StreamReader) -> None:
    dropped = 0
    try:
        async with asyncio.timeout(LINGER_SECONDS):
            while dropped < LINGER_BYTES and (chunk := await reader.read(65536)):
                dropped += len(chunk)
    except TimeoutError:
        pass


def _respond(writer: asyncio.StreamWriter, status: HTTPStatus, body: bytes) -> None:
    content_type = "application/json" if body else "text/plain"
    writer.write(
        (
            f"HTTP/1.1 {status.value} {status.phrase}\r\n"
            f"Content-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        + body
    )
