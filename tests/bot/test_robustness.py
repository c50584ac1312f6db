"""Flood limits, network errors, handler errors, odd updates, webhooks, languages, reloads."""

from __future__ import annotations

import asyncio
import io
import logging
import time

import httpx

from bot.logs import REDACTED, RedactTokenFilter
from bot.settings import Settings
from retrieval import IndexKeeper
from retrieval.feeds import FeedReport, format_report
from tests.support.fake_bot_api import TOKEN, telegram_html_problems
from tests.support.harness import running_bot
from tests.support.http import free_port
from tests.support.seeds import TYPHOON, write_seeds


async def test_a_429_is_waited_out_and_the_reply_still_arrives(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    fake_api.fail("sendMessage", status=429, retry_after=1)
    question = fake_api.send_text(chat, user, "台风海葵")
    reply = await fake_api.wait_for_reply(question)
    attempts = [c for c in fake_api.calls if c.method == "sendMessage"]
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0  # it waited retry_after
    assert TYPHOON.title in reply.params["text"]


async def test_network_errors_are_retried(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    fake_api.fail("sendMessage", status=502, times=2)
    reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "台风海葵"))
    assert TYPHOON.title in reply.params["text"]
    assert [c.status for c in fake_api.calls if c.method == "sendMessage"] == [502, 502, 200]


async def test_a_handler_exception_is_logged_and_reported_and_the_bot_goes_on(
    bot, fake_api, caplog
):
    user, chat = fake_api.user_in_private_chat()
    # Telegram rejects the answer: the handler raises BadRequest.
    fake_api.fail("sendMessage", status=400, description="Bad Request: chat not found")
    question = fake_api.send_text(chat, user, "台风海葵")
    error_reply = await fake_api.wait_for_reply(question)
    assert "出了点问题" in error_reply.params["text"]
    assert any("error while handling update" in r.getMessage() for r in caplog.records)
    # Question texts are not logged above DEBUG.
    assert not any("台风海葵" in r.getMessage() for r in caplog.records if r.levelno > 10)
    # Still alive.
    reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "台风海葵登陆"))
    assert TYPHOON.title in reply.params["text"]


async def test_a_failing_button_handler_answers_the_callback_with_the_error(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "特朗普"))
    data = reply.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    fake_api.fail("editMessageText", status=400, description="Bad Request: message can't be edited")
    fake_api.press_button(fake_api.sent_to(chat["id"])[0], user, data)
    answers = await fake_api.wait_for(lambda: fake_api.calls_to("answerCallbackQuery"))
    await fake_api.settle()
    # One answer (Telegram refuses a second), and it is the one that says what went wrong.
    [answer] = fake_api.calls_to("answerCallbackQuery", ok_only=False)
    assert answers == [answer] and "出了点问题" in answer.params["text"]


async def test_odd_updates_neither_crash_nor_spam(bot, fake_api, caplog):
    user, chat = fake_api.user_in_private_chat()
    group = fake_api.group_chat()
    message = fake_api.make_message(chat, user, "台风海葵")
    fake_api.push_update({"edited_message": {**message, "edit_date": int(time.time())}})
    channel = {"id": -1009999, "type": "channel", "title": "News"}
    fake_api.push_update({"channel_post": fake_api.make_message(channel, None, "台风海葵")})
    fake_api.push_update(
        {"message": fake_api.make_message(group, user, new_chat_members=[fake_api.user(7)])}
    )
    photo = [{"file_id": "p", "file_unique_id": "p", "width": 1, "height": 1}]
    fake_api.push_update({"message": fake_api.make_message(group, user, photo=photo)})
    fake_api.push_update({"my_chat_member": {"chat": group, "from": user, "date": 0,
        "old_chat_member": {"status": "left", "user": fake_api._bot_user()},
        "new_chat_member": {"status": "member", "user": fake_api._bot_user()}}})  # fmt: skip
    await fake_api.settle()
    assert fake_api.calls_to("sendMessage") == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "台风海葵"))
    assert TYPHOON.title in reply.params["text"]


async def test_many_chats_at_once_each_get_exactly_one_answer(bot, fake_api):
    questions = []
    for i in range(40):
        user, chat = fake_api.user_in_private_chat(6000 + i)
        questions.append(fake_api.send_text(chat, user, ["台风海葵", "特朗普", "高铁票价"][i % 3]))
    await fake_api.wait_for(lambda: all(fake_api.replies_to(q) for q in questions), timeout=20)
    await fake_api.settle()
    assert all(len(fake_api.replies_to(q)) == 1 for q in questions)


async def test_set_my_commands_is_called_and_a_failure_is_not_fatal(fake_api, bot_keeper):
    fake_api.fail("setMyCommands", status=500, times=100)
    async with running_bot(fake_api, bot_keeper):
        user, chat = fake_api.user_in_private_chat()
        reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "台风海葵"))
        assert TYPHOON.title in reply.params["text"]
    attempts = fake_api.calls_to("setMyCommands", ok_only=False)
    assert attempts and {c.status for c in attempts} == {500}


async def test_the_command_list_is_registered_in_chinese_and_english(bot, fake_api):
    calls = fake_api.calls_to("setMyCommands")
    by_language = {
        c.params.get("language_code"): c.params["commands"]
        for c in calls
        if c.params["scope"]["type"] == "default"
    }
    assert {c["command"] for c in by_language[None]} == {
        "ask", "latest", "about", "subscribe", "unsubscribe", "follow", "following", "unfollow",
        "autoanswer", "help",
    }  # fmt: skip
    assert by_language["en"][0]["description"] == "Ask a question"


async def test_webhook_mode_accepts_the_secret_and_rejects_the_rest(fake_api, bot_keeper):
    port = free_port()
    env = {
        "WEBHOOK_URL": "https://bot.example.org/telegram-hook",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_SECRET": "s3cret-Token_1",
    }
    async with running_bot(fake_api, bot_keeper, webhook=True, **env):
        [set_webhook] = fake_api.calls_to("setWebhook")
        assert set_webhook.params["url"] == env["WEBHOOK_URL"]
        assert set_webhook.params["secret_token"] == env["WEBHOOK_SECRET"]
        assert fake_api.calls_to("getUpdates") == []

        user, chat = fake_api.user_in_private_chat()
        url = f"http://127.0.0.1:{port}/telegram-hook"
        good = fake_api.make_message(chat, user, "台风海葵")
        bad = fake_api.make_message(chat, user, "特朗普")
        async with httpx.AsyncClient() as client:
            wrong = await client.post(
                url,
                json={"update_id": 2, "message": bad},
                headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"},
            )
            missing = await client.post(url, json={"update_id": 3, "message": bad})
            right = await client.post(
                url,
                json={"update_id": 1, "message": good},
                headers={"X-Telegram-Bot-Api-Secret-Token": env["WEBHOOK_SECRET"]},
            )
        assert (wrong.status_code, missing.status_code, right.status_code) == (403, 403, 200)
        reply = await fake_api.wait_for_reply(good)
        assert TYPHOON.title in reply.params["text"]
        await asyncio.sleep(0.3)
        assert fake_api.replies_to(bad) == []


async def test_the_bots_words_follow_the_users_language(bot, fake_api):
    expectations = {
        "en": ("Try asking", "Next ›", "Nothing found"),
        "zh-TW": ("可以這樣問", "下一頁 ›", "沒有找到"),
        "zh-hant": ("可以這樣問", "下一頁 ›", "沒有找到"),
        "zh-hans": ("可以这样问", "下一页 ›", "没有找到"),
        None: ("可以这样问", "下一页 ›", "没有找到"),
        "ru": ("可以这样问", "下一页 ›", "没有找到"),
    }
    for i, (code, (help_words, button, nothing)) in enumerate(expectations.items()):
        user, chat = fake_api.user_in_private_chat(8000 + i, code)
        html = await fake_api.say(chat, user, "/help")
        assert help_words in html, code
        reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, "特朗普"))
        assert reply.params["reply_markup"]["inline_keyboard"][0][0]["text"] == button, code
        # Passages are shown as written, whatever the user's language.
        assert "特朗普" in reply.params["text"]
        html = await fake_api.say(chat, user, "🙂")
        assert nothing in html, code


async def test_every_message_sent_is_valid_telegram_html_within_4096(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    questions = [
        "高铁票价",  # long passages with emoji
        "台风海葵" * 1024,
        "<b>&amp; & <a href='x'>",
        "/latest 20",
        "/about",
        "/help",
        "不要靠近海边",
        "\u200b\u200b",
    ]
    sent = [fake_api.send_text(chat, user, q) for q in questions]
    await fake_api.wait_for(lambda: all(fake_api.replies_to(m) for m in sent), timeout=15)
    fake_api.inline_query(user, "高铁票价")
    fake_api.inline_query(user, "")
    await fake_api.wait_for(lambda: len(fake_api.calls_to("answerInlineQuery")) == 2)
    texts = [c.params["text"] for c in fake_api.calls_to("sendMessage")]
    texts += [
        r["input_message_content"]["message_text"]
        for c in fake_api.calls_to("answerInlineQuery")
        for r in c.params["results"]
    ]
    assert len(texts) >= len(questions)
    for text in texts:
        assert telegram_html_problems(text) == [], text[:200]
    assert fake_api.problems == []


async def test_new_seed_files_are_picked_up_without_a_restart(fake_api, tmp_path):
    seeds = write_seeds(tmp_path / "seeds")
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    async with running_bot(fake_api, keeper, RELOAD_SECONDS="0.5"):
        user, chat = fake_api.user_in_private_chat()
        html = await fake_api.say(chat, user, "台风海葵")
        assert "没有找到" in html
        TYPHOON.write(seeds, "200_new.txt")

        async def answered() -> bool:
            message = fake_api.send_text(chat, user, "台风海葵")
            reply = await fake_api.wait_for_reply(message)
            return TYPHOON.title in reply.params["text"]

        deadline = time.monotonic() + 10
        while not await answered():
            assert time.monotonic() < deadline, "the new article never showed up"
            await asyncio.sleep(0.3)


def test_the_log_filter_redacts_tokens_in_messages_arguments_and_tracebacks():
    token = "987654321:AAE-secret_secret_secret_secret"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactTokenFilter([token]))
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    try:
        log.warning("GET https://api.telegram.org/bot%s/getMe", token)
        try:
            raise RuntimeError(f"failed: https://api.telegram.org/bot{token}/sendMessage")
        except RuntimeError:
            log.exception("boom %s", "x")
    finally:
        log.removeHandler(handler)
    output = stream.getvalue()
    assert token not in output and "AAE-secret" not in output
    assert output.count(REDACTED) >= 2 and "RuntimeError" in output


def test_the_log_filter_redacts_feed_url_credentials_and_queries_but_keeps_the_error():
    """Issue 23: a failing feed's line kept `?token=…` (and a password holding "@" partly)."""
    url = "https://feeduser:pa55@Word@news.example.org/rss?token=s3cret-Token-99"
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "FEED_URLS": url})
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactTokenFilter(settings.secrets))
    log = logging.getLogger("test.redaction")
    log.addHandler(handler)
    try:
        log.warning("feed %s", format_report(FeedReport(url, error="HTTP 404 Not Found")))
        try:
            raise ValueError(f"cannot fetch {url}")
        except ValueError:
            log.exception("feed %s: ingest failed", url)
    finally:
        log.removeHandler(handler)
    output = stream.getvalue()
    for secret in ("feeduser", "pa55", "Word", "s3cret-Token-99"):
        assert secret not in output
    assert "news.example.org/rss?" in output  # which feed it is stays readable
    assert "HTTP 404 Not Found" in output and "ValueError" in output
