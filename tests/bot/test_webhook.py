"""The webhook server: the secret checked before any body is read, a body size limit, and
GET /healthz; the real Application against the fake Bot API, requests on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import datetime

import httpx
import pytest

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


def serve_feed(request) -> None:
    reply(request, 200, (FEEDS / "bot_news.xml").read_bytes(), "application/rss+xml")


async def test_healthz_reports_the_library_and_the_last_feed_fetch(fake_api, tmp_path, port):
    keeper = IndexKeeper.open(write_seeds(tmp_path / "seeds", TYPHOON), tmp_path / "index")
    with LoopbackServer(serve_feed) as feeds:
        env = webhook_env(port) | {"FEED_URLS": feeds.url("/bot_news.xml")}
        async with (
            running_bot(fake_api, keeper, webhook=True, **env),
            httpx.AsyncClient() as client,
        ):
            deadline = time.monotonic() + 15
            while True:  # the first fetch runs right after start; then the refresh
                answer = await client.get(f"http://127.0.0.1:{port}/healthz")
                assert answer.status_code == 200
                assert answer.headers["content-type"] == "application/json"
                report = answer.json()
                if report["last_feed_fetch"] and report["articles"] > 1:
                    break
                assert time.monotonic() < deadline, report
                await asyncio.sleep(0.05)
    fetch = report["last_feed_fetch"]
    assert fetch["ok"] is True and fetch["error"] is None
    assert fetch["feed"] == feeds.url("/bot_news.xml")
    assert fetch["new"] >= 1
    datetime.fromisoformat(fetch["at"])
    assert report["status"] == "ok"
    assert report["articles"] >= 2 and report["passages"] > report["articles"]
    assert report["newest_article"].startswith("20")
    assert json.dumps(report)  # plain JSON all the way
