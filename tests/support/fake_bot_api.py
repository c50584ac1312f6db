"""A fake Telegram Bot API server on 127.0.0.1 for driving the real Application over HTTP.

It runs on the tests' loopback server (tests.support.http), in a background thread, so it is
independent of the test's event loop. It records every call, serves queued updates through
getUpdates (honouring offset, limit and the long-poll timeout), keeps the messages the bot
sent (edits included), checks every HTML text the way Telegram would (allowed tags, entities,
4,096 UTF-16 units; links and inline results' URLs must be http(s)), accepts one answer per
callback query (a second one gets Telegram's 400, and is recorded as a problem), and can be
told to fail a method: a 429 with retry_after, a 5xx, a 400. It answers getChatMember with a
status the test sets, and can refuse every sendMessage to a chat the way Telegram does once a
user blocked the bot (403) or a chat was deleted (400).
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.http import LoopbackServer, reply

TOKEN = "123456789:TEST-token_abcdefghijklmnopqrstuvwx"
BOT_ID = 123456789
BOT_USERNAME = "ThisBot"
MESSAGE_LIMIT = 4096
# What Telegram answers to a second answerCallbackQuery, or one for a query it never sent.
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query id is invalid"

# JSON-encoded parameters, as PTB sends them in form data.
_JSON_PARAMS = {
    "reply_markup",
    "reply_parameters",
    "link_preview_options",
    "results",
    "commands",
    "scope",
    "allowed_updates",
    "button",
    "entities",
}
_ALLOWED_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
    "blockquote", "tg-spoiler", "span", "tg-emoji",
}  # fmt: skip
_TOKEN_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^<>]*)?)\s*>|<|&(#?\w*;?)?")
_ENTITY_RE = re.compile(r"(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def telegram_html_problems(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """What Telegram would reject in `text` sent with parse_mode=HTML (empty list: valid)."""
    problems: list[str] = []
    stack: list[str] = []
    visible: list[str] = []
    pos = 0
    for match in _TOKEN_RE.finditer(text):
        visible.append(text[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token.startswith("&"):
            entity = match.group(4) or ""
            if not _ENTITY_RE.fullmatch(entity):
                problems.append(f"unescaped or unsupported entity at {match.start()}: {token!r}")
            visible.append(html.unescape(token))
        elif match.group(2) is None:
            problems.append(f"unescaped '<' at {match.start()}")
        else:
            closing, tag, attrs = match.group(1), match.group(2).lower(), match.group(3) or ""
            if tag not in _ALLOWED_TAGS:
                problems.append(f"unsupported tag <{tag}>")
            elif closing:
                if not stack or stack[-1] != tag:
                    problems.append(f"unexpected end tag </{tag}>")
                else:
                    stack.pop()
            else:
                href = re.search(r'href="([^"]+)"', attrs)
                if tag == "a" and not href:
                    problems.append("<a> without href")
                elif tag == "a" and not _is_link_url(html.unescape(href.group(1))):
                    problems.append(
                        f"<a> with a URL that is not a web link: {href.group(1)[:80]!r}"
                    )
                stack.append(tag)
    visible.append(text[pos:])
    if stack:
        problems.append(f"unclosed tags {stack}")
    shown = "".join(visible)
    if not shown.strip():
        problems.append("message text is empty")
    if utf16_len(shown) > limit:
        problems.append(f"message is too long: {utf16_len(shown)} UTF-16 units")
    return problems


def visible_text(text: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", text))


@dataclass
class Call:
    """One request the bot made."""

    method: str
    params: dict[str, Any]
    at: float
    status: int = 200
    # handled: what it did (a message stored, an edit) is in place; set before the reply
    # goes out, so that a test that sees the call also sees its effect
    done: bool = False


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None


@dataclass
class FakeBotApi:
    """The fake server. Use as a context manager or call start()/stop()."""

    token: str = TOKEN
    username: str = BOT_USERNAME
    bot_id: int = BOT_ID
    privacy_mode: bool = True
    calls: list[Call] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what Telegram would have refused
    send_seconds: float = 0.0  # how long each sendMessage takes (a slow network)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()
        self._updates: list[dict] = []
        self._update_ids = itertools.count(1)
        self._message_ids: dict[int, itertools.count] = defaultdict(lambda: itertools.count(1))
        self._failures: dict[str, deque[_Failure]] = defaultdict(deque)
        self.messages: dict[tuple[int, int], dict] = {}  # (chat id, message id) → message
        self.chats: dict[int, dict] = {}
        self.update_handed_out_at: dict[int, float] = {}  # update id → first getUpdates
        self.member_status: dict[tuple[int, int], str] = {}  # (chat id, user id) → status
        self._unreachable: dict[int, _Failure] = {}  # chat id → how sendMessage fails
        self._open_queries: set[str] = set()  # callback queries sent and not answered yet
        self._closing = False
        self._server: LoopbackServer | None = None

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeBotApi:
        self._server = LoopbackServer(self._handle, keep_alive=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        if self._server:
            self._server.stop()

    def __enter__(self) -> FakeBotApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_root(self) -> str:
        assert self._server is not None
        return self._server.url()

    # ---- what the tests do --------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 429,
        retry_after: int | None = None,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with an error."""
        if status == 429 and retry_after is None:
            retry_after = 1
        desc = description or {
            429: f"Too Many Requests: retry after {retry_after}",
            400: "Bad Request: chat not found",
            500: "Internal Server Error",
            502: "Bad Gateway",
        }.get(status, "Error")
        with self._lock:
            for _ in range(times):
                self._failures[method].append(_Failure(status, desc, retry_after))

    def block(
        self,
        chat_id: int,
        *,
        status: int = 403,
        description: str | None = None,
        migrate_to: int | None = None,
    ) -> None:
        """Every later sendMessage to `chat_id` fails: 403 as for a user who blocked the bot,
        status=400 for a chat that no longer exists, or (migrate_to) a group that became a
        supergroup with a new id."""
        if migrate_to is not None:
            status, description = 400, "Bad Request: group chat was upgraded to a supergroup chat"
        desc = description or {
            403: "Forbidden: bot was blocked by the user",
            400: "Bad Request: chat not found",
        }.get(status, "Error")
        with self._lock:
            self._unreachable[chat_id] = _Failure(status, desc, migrate_to_chat_id=migrate_to)

    def set_member_status(self, chat: dict, user: dict, status: str) -> None:
        """What getChatMember says of `user` in `chat`: "creator", "administrator", "member"…"""
        with self._lock:
            self.member_status[(chat["id"], user["id"])] = status

    def push_update(self, payload: dict) -> int:
        """Queue an update ({"message": …}, {"callback_query": …}, …); returns its update_id."""
        with self._lock:
            update_id = next(self._update_ids)
            self._updates.append({"update_id": update_id, **payload})
            self._lock.notify_all()
        return update_id

    def user(
        self, user_id: int, language_code: str | None = "zh-hans", name: str = "Asker"
    ) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": name}
        if language_code:
            user["language_code"] = language_code
        return user

    def private_chat(self, user: dict) -> dict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self.chats[chat["id"]] = chat
        return chat

    def user_in_private_chat(
        self, user_id: int = 1001, language_code: str | None = "zh-hans"
    ) -> tuple[dict, dict]:
        """A user and their private chat with the bot."""
        user = self.user(user_id, language_code)
        return user, self.private_chat(user)

    def group_chat(self, chat_id: int = -1001234567890, title: str = "News fans") -> dict:
        chat = {"id": chat_id, "type": "supergroup", "title": title}
        self.chats[chat_id] = chat
        return chat

    def make_message(
        self, chat: dict, user: dict | None, text: str | None = None, **extra: Any
    ) -> dict:
        """A message as Telegram would deliver it, with bot_command/mention entities."""
        message_id = next(self._message_ids[chat["id"]])
        message: dict[str, Any] = {"message_id": message_id, "date": int(time.time()), "chat": chat}
        if user is not None:
            message["from"] = user
        if text is not None:
            message["text"] = text
            entities = _entities(text)
            if entities:
                message["entities"] = entities
        message.update(extra)
        with self._lock:
            self.messages[(chat["id"], message_id)] = message
        return message

    def send_text(
        self, chat: dict, user: dict, text: str, *, reply_to: dict | None = None, **extra: Any
    ) -> dict:
        """A user sends `text` to the bot (`extra`: other fields, e.g. its "date"); returns the
        message."""
        if reply_to:
            extra["reply_to_message"] = reply_to
        message = self.make_message(chat, user, text, **extra)
        self.push_update({"message": message})
        return message

    def press_button(self, message: dict, user: dict, data: str) -> str:
        query_id = f"cb{next(self._update_ids)}"
        with self._lock:
            self._open_queries.add(query_id)
        self.push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user,
                    "message": message,
                    "chat_instance": "ci",
                    "data": data,
                }
            }
        )
        return query_id

    def inline_query(self, user: dict, query: str) -> str:
        query_id = f"iq{next(self._update_ids)}"
        self.push_update(
            {"inline_query": {"id": query_id, "from": user, "query": query, "offset": ""}}
        )
        return query_id

    # ---- what the tests check -----------------------------------------------------------

    def calls_to(self, method: str, ok_only: bool = True) -> list[Call]:
        with self._lock:
            return [
                c
                for c in self.calls
                if c.method == method and c.done and (c.status == 200 or not ok_only)
            ]

    def sent_to(self, chat_id: int) -> list[dict]:
        """Messages the bot sent to a chat, as they are now (after edits), oldest first."""
        with self._lock:
            return [
                m
                for (cid, _), m in sorted(self.messages.items(), key=lambda kv: kv[0][1])
                if cid == chat_id and m.get("from", {}).get("id") == self.bot_id
            ]

    def replies_to(self, message: dict) -> list[Call]:
        """sendMessage calls threaded to `message`."""
        return [
            c
            for c in self.calls_to("sendMessage")
            if int(c.params["chat_id"]) == message["chat"]["id"]
            and (c.params.get("reply_parameters") or {}).get("message_id") == message["message_id"]
        ]

    async def wait_for(self, predicate, timeout: float = 10.0, message: str = "") -> Any:
        """Poll `predicate` until it returns something truthy; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {message or predicate}")
            await asyncio.sleep(0.02)

    async def wait_for_reply(self, message: dict, timeout: float = 10.0) -> Call:
        calls = await self.wait_for(lambda: self.replies_to(message), timeout, "a reply")
        return calls[0]

    async def say(self, chat: dict, user: dict, text: str, **extra: Any) -> str:
        """A user sends `text`; returns the text (HTML) of the bot's reply to it."""
        message = self.make_message(chat, user, text, **extra)
        self.push_update({"message": message})
        return (await self.wait_for_reply(message)).params["text"]

    async def settle(self, quiet: float = 0.3) -> None:
        """Wait until all pushed updates were fetched and no call came for `quiet` seconds."""
        while True:
            with self._lock:
                pending = bool(self._updates)
                last = self.calls[-1].at if self.calls else 0.0
            if not pending and time.monotonic() - last > quiet:
                return
            await asyncio.sleep(0.05)

    # ---- the server ---------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path.split("?")[0])
        if not match:
            return _reply(
                request, 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            )
        token, method = match.groups()
        params = _parse_params(request.headers.get("Content-Type", ""), body)
        if token != self.token:
            return _reply(
                request, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        call = Call(method, params, time.monotonic())
        with self._lock:
            self.calls.append(call)
            failure = self._failures[method].popleft() if self._failures[method] else None
        if failure is not None:
            call.status, call.done = failure.status, True
            payload: dict[str, Any] = {
                "ok": False,
                "error_code": failure.status,
                "description": failure.description,
            }
            if failure.retry_after is not None:
                payload["parameters"] = {"retry_after": failure.retry_after}
            return _reply(request, failure.status, payload)
        if method == "sendMessage" and self.send_seconds:
            time.sleep(self.send_seconds)  # this request's server thread only
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            call.status, call.done = 404, True
            return _reply(
                request, 404, {"ok": False, "error_code": 404, "description": "Not Found"}
            )
        try:
            result = handler(params)
        except _ApiError as exc:
            call.status, call.done = exc.status, True
            payload = {"ok": False, "error_code": exc.status, "description": exc.description}
            if exc.parameters:
                payload["parameters"] = exc.parameters
            return _reply(request, exc.status, payload)
        call.done = True
        _reply(request, 200, {"ok": True, "result": result})

    def _bot_user(self) -> dict:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "News Q&A",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": True,
        }

    def _api_getMe(self, params: dict) -> dict:
        return self._bot_user()

    def _api_getUpdates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = int(params.get("limit") or 100)
        deadline = time.monotonic() + min(timeout, 5.0)
        with self._lock:
            # Updates below the offset are confirmed: Telegram forgets them.
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            while not self._updates and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            batch = self._updates[:limit]
            now = time.monotonic()
            for update in batch:
                self.update_handed_out_at.setdefault(update["update_id"], now)
            return batch

    def _check_html(self, method: str, text: str, parse_mode: str | None) -> None:
        problems = telegram_html_problems(text) if parse_mode == "HTML" else _plain_problems(text)
        if problems:
            with self._lock:
                self.problems.extend(f"{method}: {p}" for p in problems)
            raise _ApiError(400, f"Bad Request: can't parse entities: {problems[0]}")

    def _bot_message(self, chat_id: int, params: dict, message_id: int | None = None) -> dict:
        chat = self.chats.get(chat_id) or {
            "id": chat_id,
            "type": "private" if chat_id > 0 else "supergroup",
        }
        if message_id is None:
            message_id = next(self._message_ids[chat_id])
        text = params["text"]
        message: dict[str, Any] = {
            "message_id": message_id,
            "date": int(time.time()),
            "chat": chat,
            "from": self._bot_user(),
            "text": visible_text(text) if params.get("parse_mode") == "HTML" else text,
            "html": text,  # not Bot API: what the bot sent, for the tests
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        reply = params.get("reply_parameters")
        if reply:
            original = self.messages.get((chat_id, reply["message_id"]))
            if original is not None:
                message["reply_to_message"] = {
                    k: v for k, v in original.items() if k not in ("reply_to_message", "html")
                }
            elif not reply.get("allow_sending_without_reply"):
                raise _ApiError(400, "Bad Request: message to be replied not found")
        return message

    def _api_sendMessage(self, params: dict) -> dict:
        chat_id = int(params["chat_id"])
        with self._lock:
            unreachable = self._unreachable.get(chat_id)
        if unreachable is not None:
            parameters = None
            if unreachable.migrate_to_chat_id is not None:
                parameters = {"migrate_to_chat_id": unreachable.migrate_to_chat_id}
            raise _ApiError(unreachable.status, unreachable.description, parameters)
        self._check_html("sendMessage", params.get("text", ""), params.get("parse_mode"))
        message = self._bot_message(chat_id, params)
        with self._lock:
            self.messages[(chat_id, message["message_id"])] = message
        return {k: v for k, v in message.items() if k != "html"}

    def _api_editMessageText(self, params: dict) -> dict:
        chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        self._check_html("editMessageText", params.get("text", ""), params.get("parse_mode"))
        with self._lock:
            old = self.messages.get((chat_id, message_id))
        if old is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        if old.get("html") == params["text"] and old.get("reply_markup") == params.get(
            "reply_markup"
        ):
            raise _ApiError(400, "Bad Request: message is not modified")
        message = self._bot_message(chat_id, params, message_id)
        with self._lock:
            self.messages[(chat_id, message_id)] = message
        return {k: v for k, v in message.items() if k != "html"}

    def _api_answerCallbackQuery(self, params: dict) -> bool:
        query_id = params["callback_query_id"]
        with self._lock:
            if query_id not in self._open_queries:
                self.problems.append(f"answerCallbackQuery: {query_id} answered twice or unknown")
                raise _ApiError(400, QUERY_INVALID)
            self._open_queries.remove(query_id)
        return True

    def _api_answerInlineQuery(self, params: dict) -> bool:
        results = params.get("results") or []
        if len(results) > 50:
            raise _ApiError(400, "Bad Request: too many inline query results")
        for result in results:
            content = result.get("input_message_content") or {}
            self._check_html(
                "answerInlineQuery", content.get("message_text", ""), content.get("parse_mode")
            )
            if len(str(result.get("id", "")).encode()) > 64:
                raise _ApiError(400, "Bad Request: RESULT_ID_INVALID")
            if not str(result.get("title", "")).strip():
                raise _ApiError(400, "Bad Request: RESULT_TITLE_EMPTY")
            if "url" in result and not _is_link_url(result["url"]):
                with self._lock:
                    self.problems.append(f"answerInlineQuery: url {result['url'][:80]!r}")
                raise _ApiError(400, "Bad Request: URL_INVALID")
        return True

    def _api_getChatMember(self, params: dict) -> dict:
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        with self._lock:
            status = self.member_status.get((chat_id, user_id), "member")
        member: dict[str, Any] = {
            "status": status,
            "user": {"id": user_id, "is_bot": False, "first_name": "Member"},
        }
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            rights = (
                "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
                "can_restrict_members", "can_promote_members", "can_change_info",
                "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
            )  # fmt: skip
            member.update({"can_be_edited": False, "is_anonymous": False})
            member.update(dict.fromkeys(rights, True))
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _api_setMyCommands(self, params: dict) -> bool:
        return True

    def _api_deleteWebhook(self, params: dict) -> bool:
        return True

    def _api_setWebhook(self, params: dict) -> bool:
        return True


class _ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


def _is_link_url(url: str) -> bool:
    """What the tests accept as a link: http(s) with a host (Telegram also takes tg://, which
    the bot never sends), no whitespace."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and not re.search(r"\s", url)


def _plain_problems(text: str) -> list[str]:
    if not text.strip():
        return ["message text is empty"]
    if utf16_len(text) > MESSAGE_LIMIT:
        return [f"message is too long: {utf16_len(text)} UTF-16 units"]
    return []


def _entities(text: str) -> list[dict]:
    """bot_command at the start and @mentions, with UTF-16 offsets like Telegram's."""
    entities = []
    for match in re.finditer(r"(?:^/\w+(?:@\w+)?)|(?:@\w{3,})", text):
        offset = utf16_len(text[: match.start()])
        kind = "bot_command" if match.group(0).startswith("/") else "mention"
        entities.append({"type": kind, "offset": offset, "length": utf16_len(match.group(0))})
    return entities


def _parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(body)
    raw = {k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
    params: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_PARAMS:
            try:
                params[key] = json.loads(value)
                continue
            except json.JSONDecodeError:
                pass
        params[key] = value
    return params


def _reply(request: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    reply(request, status, json.dumps(payload).encode(), "application/json")
