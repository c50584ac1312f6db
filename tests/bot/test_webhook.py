"""The webhook server: the secret checked before any body is read, a body size limit, and
GET /healthz; the real Application against the fake Bot API, requests on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
from datetime import datetime

import httpx
import pytest

from bot.webhook import MAX_CONNECTIONS
from retrieval import IndexKeeper
from tests.support import FEEDS
from tests.support.harness import running_bot
from tests.support.http import LoopbackServer, free_port, reply
from tests.support.seeds import TYPHOON, write_seeds

SECRET = "hook-Secret_42"
HOOK = "/telegram-hook"


def webhook_env(port: int) -> dict[str, str]:
    return {
        "WEBHOOK_URL": f"https://bot.example.org{HOOK}",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_SECRET": SECRET,
    }


def raw_request(port: int, head: str, body: bytes = b"") -> str:
    """Send a request head (and maybe part of a body); the status line of the answer, which
    must come without the rest of the body ever being sent. Blocking: run it in a thread."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(head.encode() + b"\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode("latin-1").split("\r\n", 1)[0]


@pytest.fixture
def port() -> int:
    return free_port()


async def test_requests_without_the_secret_are_refused_before_their_body_is_read(
    fake_api, bot_keeper, port
):
    async with running_bot(fake_api, bot_keeper, webhook=True, **webhook_env(port)):
        # 90 MB announced, 1 KB sent: the 403 comes anyway, so the body was never waited for.
        head = (
            f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {90 * 1024 * 1024}\r\n"
        )
        assert (
            await asyncio.to_thread(raw_request, port, head, b"{" * 1024)
            == "HTTP/1.1 403 Forbidden"
        )
        wrong = head + "X-Telegram-Bot-Api-Secret-Token: not-it\r\n"
        assert (
            await asyncio.to_thread(raw_request, port, wrong, b"{" * 1024)
            == "HTTP/1.1 403 Forbidden"
        )
        # With the secret, a body over the limit is refused from its announced length.
        right = head + f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
        assert (
            await asyncio.to_thread(raw_request, port, right)
            == "HTTP/1.1 413 Request Entity Too Large"
        )
        # ... and a body of unknown length is not read at all.
        chunked = (
            f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
        )
        assert await asyncio.to_thread(raw_request, port, chunked) == "HTTP/1.1 411 Length Required"
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}"
            assert (await client.get(url + "/elsewhere")).status_code == 404
            assert (await client.get(url + HOOK)).status_code == 405
            bad = await client.post(
                url + HOOK, content=b"not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            )
            assert bad.status_code == 400
        # Still serving updates.
        user, chat = fake_api.user_in_private_chat()
        message = fake_api.make_message(chat, user, "台风海葵")
        async with httpx.AsyncClient() as client:
            ok = await client.post(
                f"http://127.0.0.1:{port}{HOOK}",
                json={"update_id": 1, "message": message},
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
        assert ok.status_code == 200
        assert TYPHOON.title in (await fake_api.wait_for_reply(message)).params["text"]


# ---- issue 23: a connection cap, and 400 (one log line) for what cannot be read -------------


def status_line(port: int, request: bytes) -> str:
    """Send raw bytes; the status line answered ("" if the server closed without one)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(request)
        answer = b""
        while b"\r\n" not in answer and (chunk := conn.recv(4096)):
            answer += chunk
    return answer.decode("latin-1").split("\r\n", 1)[0]


async def test_connections_past_the_cap_are_answered_503_and_closed_at_once(
    fake_api, bot_keeper, port
):
    """200 slow connections used to be held open (10 s each for their headers) and could
    exhaust the file descriptors; past MAX_CONNECTIONS a new one is closed right away."""
    async with running_bot(fake_api, bot_keeper, webhook=True, **webhook_env(port)):
        idle = [
            await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 10)
            for _ in range(MAX_CONNECTIONS)
        ]
        try:
            extra = await asyncio.to_thread(status_line, port, b"")
        finally:
            for conn in idle:
                conn.close()
        assert extra == "HTTP/1.1 503 Service Unavailable"
        async with httpx.AsyncClient() as client:  # the slots come back once they close
            deadline = time.monotonic() + 10
            while (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code != 200:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    ("length", "body"),
    [
        ("\xb2".encode("latin-1"), b"{}"),  # "²": str.isdigit() says yes, int() says no
        (b"\xd9\xa1", b"{}"),  # an Arabic-Indic digit, as UTF-8
        (b"", b""),
        (b"200000", b"[" * 100_000 + b"]" * 100_000),  # nested past Python's recursion limit
    ],
    ids=["superscript-two", "arabic-indic-one", "empty", "nested-100000-deep"],
)
async def test_an_unreadable_request_with_the_secret_gets_400_and_one_log_line(
    fake_api, bot_keeper, port, caplog, length, body
):
    head = (
        f"POST {HOOK} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"X-Telegram-Bot-Api-Secret-Token: {SECRET}\r\n"
    ).encode()
    request = head + b"Content-Length: " + length + b"\r\n\r\n" + body
    async with running_bot(fake_api, bot_keeper, webhook=True, **webhook_env(port)):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="bot.webhook"):
            assert await asyncio.to_thread(status_line, port, request) == "HTTP/1.1 400 Bad Request"
        records = [r for r in caplog.records if r.name == "bot.webhook"]
    assert [(r.levelno, r.exc_info) for r in records] == [(logging.WARNING, None)]
    assert "\n" not in records[0].getMessage()


def serve_feed(request) -> None:
    if request.path.startswith("/bot_news.xml"):
        reply(request, 200, (FEEDS / "bot_news.xml").read_bytes(), "application/rss+xml")
    else:
        reply(request, 404, b"no such feed", "text/plain")


async def test_healthz_reports_the_library_and_each_feed_by_number_and_host_only(
    fake_api, tmp_path, port
):
    """Issue 23: /healthz gave a failing feed's URL whole (user:password@, ?token=) and the
    raw error text to anyone who could reach the port."""
    keeper = IndexKeeper.open(write_seeds(tmp_path / "seeds", TYPHOON), tmp_path / "index")
    with LoopbackServer(serve_feed) as feeds:
        good = feeds.url("/bot_news.xml")
        secret = feeds.url("/private.xml?token=s3cret-Token-99").replace(
            "http://", "http://feeduser:pa55-Word@"
        )
        env = webhook_env(port) | {"FEED_URLS": f"{good} {secret}", "FEED_ALLOW_PRIVATE": "1"}
        async with (
            running_bot(fake_api, keeper, webhook=True, **env),
            httpx.AsyncClient() as client,
        ):
            deadline = time.monotonic() + 15
            while True:  # the first fetches run right after start; then the refresh
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
                assert answer.status_code == 200
                assert answer.headers["content-type"] == "application/json"
                report = answer.json()
                fetched = all(feed["last_fetch"] for feed in report["feeds"])
                if fetched and report["articles"] > 1:
                    break
                assert time.monotonic() < deadline, report
                await asyncio.sleep(0.05)
    for leak in ("feeduser", "pa55-Word", "s3cret-Token-99", "token", "private.xml", "404"):
        assert leak not in answer.text
    read, failed = report["feeds"]
    assert read["feed"] == 1 and failed["feed"] == 2
    assert read["host"] == failed["host"] == "127.0.0.1"
    assert read["ok"] is True and failed["ok"] is False
    assert read["last_success"] == read["last_fetch"] and failed["last_success"] is None
    assert set(read) == {"feed", "host", "ok", "last_fetch", "last_success"}
    datetime.fromisoformat(read["last_success"])
    assert report["status"] == "ok"
    assert report["articles"] >= 2 and report["passages"] > report["articles"]
    assert report["newest_article"].startswith("20")
    assert json.dumps(report)  # plain JSON all the way


async def test_a_flood_of_health_checks_counts_the_library_once_and_leaves_the_threads_alone(
    fake_api, bot_keeper, port, monkeypatch
):
    """Issue 23: ~300 /healthz a second raised the answers' p50 from 30 to 160 ms: each check
    counted the library again in a thread, queued with the answers' searches."""
    from retrieval import library

    counted = []
    real_stats_of = library.stats_of
    monkeypatch.setattr(
        library, "stats_of", lambda state: counted.append(state) or real_stats_of(state)
    )
    threads = []
    real_to_thread = asyncio.to_thread

    async def to_thread(func, /, *args, **kwargs):
        threads.append(func)
        return await real_to_thread(func, *args, **kwargs)

    async with running_bot(fake_api, bot_keeper, webhook=True, **webhook_env(port)):
        monkeypatch.setattr(asyncio, "to_thread", to_thread)
        async with httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{port}/healthz"
            answers = await asyncio.gather(*(client.get(url) for _ in range(200)))
    assert {a.status_code for a in answers} == {200}
    assert {a.json()["passages"] for a in answers} == {bot_keeper.library.stats().passages}
    assert len(counted) <= 1  # once for the state being served (0 if counted at start)
    assert [f for f in threads if getattr(f, "__name__", "") == "stats"] == []
