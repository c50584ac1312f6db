"""The command table: every command answered, listed alike in the menu and /help, its scope
enforced."""

from __future__ import annotations

import logging
import re

from bot import app, commands
from bot.commands import COMMANDS
from bot.console import ConsoleSession
from bot.handlers import BotHandlers
from bot.i18n import LANGUAGES
from tests.support.fake_bot_api import telegram_html_problems
from tests.support.harness import running_bot


def test_every_command_has_a_handler_and_console_commands_a_console_method():
    for command in COMMANDS:
        assert callable(getattr(BotHandlers, command.name, None)), command.name
        if command.console:
            assert callable(getattr(ConsoleSession, command.name, None)), command.name
    names = [name for command in COMMANDS for name in command.names]
    assert len(names) == len(set(names))


def test_listed_commands_have_their_words_in_every_language():
    assert [c.name for c in commands.listed()] == [
        "ask", "latest", "about", "subscribe", "unsubscribe", "follow", "following", "unfollow",
        "autoanswer", "help",
    ]  # fmt: skip
    for command in commands.listed():
        for lang in LANGUAGES:
            assert 1 <= len(command.menu[lang]) <= 256, (command.name, lang)
            assert "<" not in command.menu[lang]  # the menu is plain text
            line = command.help[lang].format(bot="ThisBot")
            assert telegram_html_problems(line) == [], (command.name, lang)


async def test_the_menu_and_help_list_the_same_commands(bot, fake_api):
    user, chat = fake_api.user_in_private_chat(language_code="en")
    html = await fake_api.say(chat, user, "/help")
    in_help = re.findall(r"^/(\w+)", html, re.M)
    menus = {
        (call.params["scope"]["type"], call.params.get("language_code")): [
            c["command"] for c in call.params["commands"]
        ]
        for call in fake_api.calls_to("setMyCommands")
    }
    assert set(menus) == {
        (scope, code)
        for scope in ("default", "all_group_chats", "all_chat_administrators")
        for code in (None, "en")
    }
    for code in (None, "en"):
        assert menus["default", code] == in_help  # private chats
        assert menus["all_chat_administrators", code] == in_help
        # group members see only what they may use: not the administrators' commands
        assert menus["all_group_chats", code] == ["ask", "latest", "about", "following", "help"]
    assert "reload" not in in_help


async def test_an_admin_only_command_refuses_everyone_else(fake_api, bot_keeper):
    admin = fake_api.user(9101, "en")
    async with running_bot(fake_api, bot_keeper, ADMIN_USER_IDS=str(admin["id"])):
        stranger, chat = fake_api.user_in_private_chat(9102, "en")
        assert await fake_api.say(chat, stranger, "/reload") == "Only admins can use this command."
        reply = await fake_api.say(fake_api.private_chat(admin), admin, "/reload")
        assert reply.startswith("Rescanned the articles")


async def test_a_failing_command_menu_is_one_log_line_per_attempt(
    fake_api, bot_keeper, caplog, monkeypatch
):
    monkeypatch.setattr(app, "NETWORK_RETRY_DELAY", 0.01)
    fake_api.fail("setMyCommands", status=500, times=100)  # a network error, to PTB
    with caplog.at_level(logging.WARNING):
        async with running_bot(fake_api, bot_keeper):
            pass
    menus = len(commands.MENU_LANGUAGES) * 3  # three scopes
    lines = [r.getMessage() for r in caplog.records if "setMyCommands" in r.getMessage()]
    assert len(lines) == app.NETWORK_RETRIES + 1, lines
    assert all(f"setMyCommands failed for {menus} menus" in line for line in lines)
    assert lines[-1].endswith("the command menu may be outdated")
    attempts = fake_api.calls_to("setMyCommands", ok_only=False)
    assert len(attempts) == menus * (app.NETWORK_RETRIES + 1)
