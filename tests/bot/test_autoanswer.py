"""/autoanswer: group administrators let the bot answer question-like messages unasked, when
it is confident, at most once per interval per group, remembered across restarts."""

from __future__ import annotations

import pytest

from bot.autoanswer import QUESTION_MAX_CHARS, GroupPace, question_like
from tests.support.fake_bot_api import BOT_ID
from tests.support.harness import running_bot
from tests.support.seeds import RAIL, TYPHOON

ANSWERED = "台风海葵在哪里登陆？"


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("台风海葵在哪里登陆？", True),
        ("高铁票价多少", True),
        ("石破茂会去美国吗", True),
        ("那日本呢", True),
        ("Who won?", True),
        ("今天台风好大，大家注意安全", False),
        ("/ask 台风在哪里登陆？", False),
        ("哪" + "很长的讨论" * (QUESTION_MAX_CHARS // 5), False),
        ("   ", False),
    ],
)
def test_question_like(text, question):
    assert question_like(text) is question


def test_one_automatic_answer_per_group_per_interval():
    now = [0.0]
    pace = GroupPace(120, clock=lambda: now[0])
    assert pace.ready(-1) and pace.ready(-2)
    pace.answered(-1)
    now[0] = 119.9
    assert not pace.ready(-1) and pace.ready(-2)
    now[0] = 120
    assert pace.ready(-1)


def _admin_and_member(fake_api, group):
    admin, member = fake_api.user(5001, name="Admin"), fake_api.user(5002, name="Member")
    fake_api.set_member_status(group, admin, "administrator")
    return admin, member


async def test_admins_turn_it_on_and_the_bot_answers_what_it_can_once_an_interval(
    fake_api, bot_keeper
):
    fake_api.privacy_mode = False  # the bot sees every group message
    async with running_bot(fake_api, bot_keeper, AUTOANSWER_INTERVAL_SECONDS="3600"):
        group, other_group = fake_api.group_chat(-1005001), fake_api.group_chat(-1005002)
        admin, member = _admin_and_member(fake_api, group)
        fake_api.set_member_status(other_group, admin, "administrator")
        before = fake_api.send_text(group, member, ANSWERED)  # off by default
        html = await fake_api.say(group, member, "/autoanswer@ThisBot on")
        assert html == "抱歉，只有群组管理员可以更改这个群组的设置。"
        for chat in (group, other_group):
            html = await fake_api.say(chat, admin, "/autoanswer@ThisBot on")
            assert html.startswith("✅ 自动回答已开启") and "3600 秒" in html

        # Not answered: chatter, what the archive does not answer (which leaves the group's
        # turn unused), a bot's question.
        chatter = fake_api.send_text(group, member, "今天台风好大，大家注意安全")
        unanswered = fake_api.send_text(group, member, "2023年日本首相是谁？")
        other_bot = {"id": 777, "is_bot": True, "first_name": "OtherBot"}
        from_bot = fake_api.send_text(group, other_bot, ANSWERED)
        question = fake_api.send_text(group, member, ANSWERED)
        reply = await fake_api.wait_for_reply(question)  # threaded to the question
        assert TYPHOON.title in reply.params["text"]
        # The group's next automatic answer waits for the interval; another group's does not.
        too_soon = fake_api.send_text(group, member, "北京到上海的高铁要多久？")
        elsewhere = fake_api.send_text(other_group, member, "北京到上海的高铁要多久？")
        assert RAIL.title in (await fake_api.wait_for_reply(elsewhere)).params["text"]
        # Addressed to the bot, a question is answered whatever the interval.
        asked = fake_api.send_text(group, member, "/ask@ThisBot 北京到上海的高铁要多久？")
        await fake_api.wait_for_reply(asked)
        await fake_api.settle()
        for message in (before, chatter, unanswered, from_bot, too_soon):
            assert fake_api.replies_to(message) == [], message["text"]


async def test_it_is_remembered_across_a_restart(fake_api, bot_keeper, tmp_path):
    fake_api.privacy_mode = False
    db = str(tmp_path / "bot.sqlite3")
    group = fake_api.group_chat()
    admin, member = _admin_and_member(fake_api, group)
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=db):
        assert "已开启" in await fake_api.say(group, admin, "/autoanswer@ThisBot on")
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=db):
        question = fake_api.send_text(group, member, ANSWERED)
        assert TYPHOON.title in (await fake_api.wait_for_reply(question)).params["text"]
        assert "已关闭" in await fake_api.say(group, admin, "/autoanswer@ThisBot off")
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=db):
        html = await fake_api.say(group, admin, "/autoanswer@ThisBot")
        assert html == "用法：/autoanswer on 或 /autoanswer off（现在是 off）。"


async def test_in_privacy_mode_it_says_what_to_change_in_botfather(bot, fake_api):
    group = fake_api.group_chat()
    admin, _ = _admin_and_member(fake_api, group)
    html = await fake_api.say(group, admin, "/autoanswer@ThisBot on")
    assert "隐私模式" in html and "/setprivacy" in html and "Disable" in html
    assert "@ThisBot" in html and "移出这个群组再重新加进来" in html
    # An administrator bot sees every message even in privacy mode.
    fake_api.set_member_status(group, {"id": BOT_ID}, "administrator")
    html = await fake_api.say(group, admin, "/autoanswer@ThisBot on")
    assert html.startswith("✅ 自动回答已开启")
    user, chat = fake_api.user_in_private_chat()
    assert "用于群组" in await fake_api.say(chat, user, "/autoanswer on")


async def test_a_group_that_becomes_a_supergroup_keeps_it_on(fake_api, bot_keeper):
    fake_api.privacy_mode = False
    group = {"id": -5003, "type": "group", "title": "News fans"}
    fake_api.chats[group["id"]] = group
    admin, member = _admin_and_member(fake_api, group)
    async with running_bot(fake_api, bot_keeper):
        assert "已开启" in await fake_api.say(group, admin, "/autoanswer@ThisBot on")
        supergroup = fake_api.group_chat(-1005003)
        fake_api.set_member_status(supergroup, admin, "administrator")
        # Telegram tells both chats, the old one first
        fake_api.push_update(
            {"message": fake_api.make_message(group, admin, migrate_to_chat_id=supergroup["id"])}
        )
        fake_api.push_update(
            {"message": fake_api.make_message(supergroup, None, migrate_from_chat_id=group["id"])}
        )
        question = fake_api.send_text(supergroup, member, ANSWERED)
        assert TYPHOON.title in (await fake_api.wait_for_reply(question)).params["text"]
        html = await fake_api.say(supergroup, admin, "/autoanswer@ThisBot")
        assert html == "用法：/autoanswer on 或 /autoanswer off（现在是 on）。"
