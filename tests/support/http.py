"""A loopback HTTP server for the tests: 127.0.0.1, a free port, requests answered in threads.

The server records every request (method, path, headers) and hands each to a `respond`
function, which writes the answer (`reply` does the usual case). It runs in a background
thread, so it is independent of the test's event loop.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    headers: Message


Respond = Callable[[BaseHTTPRequestHandler], None]


class _Handler(BaseHTTPRequestHandler):
    server: LoopbackServer

    def do_GET(self) -> None:
        self.server.requests.append(Request(self.command, self.path, self.headers))
        self.server.respond(self)

    do_POST = do_GET

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass


class _KeepAliveHandler(_Handler):
    protocol_version = "HTTP/1.1"


class LoopbackServer(ThreadingHTTPServer):
    """`with LoopbackServer(respond) as server:` serves until the block ends."""

    daemon_threads = True
    # The bot opens up to 256 connections at once; the default backlog of 5 resets them.
    request_queue_size = 1024

    def __init__(self, respond: Respond, *, keep_alive: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _KeepAliveHandler if keep_alive else _Handler)
        self.respond = respond
        self.requests: list[Request] = []

    def start(self) -> LoopbackServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up early (a timeout, a size cap, the bot shutting down mid
        # long-poll) is part of the tests, not a failure.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def reply(
    request: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    **headers: str,
) -> None:
    """Answer with `body`; header names are given with "_" for "-" (Retry_After=…)."""
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        request.send_header(name.replace("_", "-"), value)
    request.end_headers()
    request.wfile.write(body)


def free_port() -> int:
    """A port nothing listens on (for a server to bind, or a connection to be refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
