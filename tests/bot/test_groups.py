"""Groups and supergroups: commands addressed to this bot, replies to it, mentions."""

from __future__ import annotations

from tests.support.harness import running_bot
from tests.support.seeds import TYPHOON


def _group(fake_api):
    return fake_api.user(3001, "zh-hans", "Member"), fake_api.group_chat()


async def test_ask_addressed_to_this_bot_is_answered_in_a_thread(bot, fake_api):
    user, group = _group(fake_api)
    question = fake_api.send_text(group, user, "/ask@ThisBot 台风海葵在哪里登陆？")
    reply = await fake_api.wait_for_reply(question)  # threaded: reply_parameters.message_id
    assert TYPHOON.title in reply.params["text"]
    assert reply.params["reply_parameters"]["allow_sending_without_reply"] is True


async def test_commands_for_other_bots_and_chatter_are_ignored(bot, fake_api):
    user, group = _group(fake_api)
    other = fake_api.send_text(group, user, "/ask@OtherBot 台风海葵在哪里登陆？")
    latest_other = fake_api.send_text(group, user, "/latest@OtherBot")
    chatter = fake_api.send_text(group, user, "今天台风海葵好大，大家注意安全")
    mention_other = fake_api.send_text(group, user, "@OtherBot 台风海葵在哪里登陆？")
    await fake_api.settle()
    for message in (other, latest_other, chatter, mention_other):
        assert fake_api.replies_to(message) == []
    assert fake_api.calls_to("sendMessage") == []


async def test_latest_addressed_to_this_bot(bot, fake_api):
    user, group = _group(fake_api)
    question = fake_api.send_text(group, user, "/latest@ThisBot 2")
    html = (await fake_api.wait_for_reply(question)).params["text"]
    assert TYPHOON.title in html


async def test_a_reply_to_the_bots_message_is_a_question(bot, fake_api):
    user, group = _group(fake_api)
    first = fake_api.send_text(group, user, "/ask@ThisBot 特朗普和石破茂")
    await fake_api.wait_for_reply(first)
    [bot_message] = fake_api.sent_to(group["id"])
    follow_up = fake_api.send_text(group, user, "台风海葵在哪里登陆？", reply_to=bot_message)
    html = (await fake_api.wait_for_reply(follow_up)).params["text"]
    assert TYPHOON.title in html
    # A reply to someone else's message is chatter.
    other = fake_api.send_text(group, user, "台风海葵在哪里登陆？", reply_to=first)
    await fake_api.settle()
    assert fake_api.replies_to(other) == []


async def test_mentions_are_answered_when_privacy_mode_is_off(fake_api, bot_keeper):
    fake_api.privacy_mode = False  # the bot now sees every group message
    async with running_bot(fake_api, bot_keeper):
        user, group = _group(fake_api)
        chatter = fake_api.send_text(group, user, "台风海葵好大")
        question = fake_api.send_text(group, user, "@ThisBot 台风海葵在哪里登陆？")
        html = (await fake_api.wait_for_reply(question)).params["text"]
        assert TYPHOON.title in html
        # The mention is stripped from the question the bot echoes and searches for.
        assert "「台风海葵在哪里登陆？」" in html
        case_and_middle = fake_api.send_text(group, user, "台风海葵 @thisbot 在哪里登陆")
        html = (await fake_api.wait_for_reply(case_and_middle)).params["text"]
        assert "@thisbot" not in html.lower()
        bare = fake_api.send_text(group, user, "@ThisBot")
        html = (await fake_api.wait_for_reply(bare)).params["text"]
        assert "@ThisBot" in html and "问题" in html
        await fake_api.settle()
        assert fake_api.replies_to(chatter) == []
