"""Fairness under load (issue 12, item 13): another chat is answered while one floods, each
chat's answers come in the order asked, and a user past QUESTIONS_PER_MINUTE gets one notice
while the rest of their flood is dropped. Ordering is checked structurally (who was answered
before whom), never against the clock; the figures are benchmarks/bot_load.py's."""

from __future__ import annotations

from bot.app import RetryingRateLimiter
from bot.fairness import Admission, UserRate
from tests.support.harness import running_bot
from tests.support.seeds import TYPHOON


def _unlimited() -> RetryingRateLimiter:
    """No Telegram flood limits: the test is about the bot's own queueing, and fast."""
    return RetryingRateLimiter(0, 1, 0, 60, max_retries=3)


def _order(fake_api, chat_id: int) -> list[int]:
    """The message ids the bot's replies in a chat answered, in the order they were sent."""
    return [
        c.params["reply_parameters"]["message_id"]
        for c in fake_api.calls_to("sendMessage")
        if int(c.params["chat_id"]) == chat_id and "reply_parameters" in c.params
    ]


async def test_another_chat_is_answered_while_one_chat_floods_and_each_keeps_its_order(
    fake_api, bot_keeper
):
    flooder, flood_chat = fake_api.user_in_private_chat(5001)
    other, other_chat = fake_api.user_in_private_chat(5002)
    env = {"QUESTIONS_PER_MINUTE": "0"}  # no per-user limit: the flood is all answered
    async with running_bot(fake_api, bot_keeper, rate_limiter=_unlimited(), **env):
        flood = [fake_api.send_text(flood_chat, flooder, "台风海葵登陆") for _ in range(150)]
        question = fake_api.send_text(other_chat, other, "特朗普")
        await fake_api.wait_for_reply(question, timeout=60)
        answered_first = len(_order(fake_api, flood_chat["id"]))
        await fake_api.wait_for(lambda: all(fake_api.replies_to(q) for q in flood), timeout=120)
        await fake_api.settle()
    # Arrival order alone would have answered the whole flood first.
    assert answered_first < 50, answered_first
    assert _order(fake_api, flood_chat["id"]) == [q["message_id"] for q in flood]


async def test_past_the_rate_one_notice_and_the_rest_is_dropped(fake_api, bot_keeper):
    flooder, flood_chat = fake_api.user_in_private_chat(5101, "en")
    other, other_chat = fake_api.user_in_private_chat(5102)
    async with running_bot(fake_api, bot_keeper, QUESTIONS_PER_MINUTE="5"):
        flood = [fake_api.send_text(flood_chat, flooder, "特朗普") for _ in range(30)]
        question = fake_api.send_text(other_chat, other, "台风海葵登陆")
        reply = await fake_api.wait_for_reply(question)
        await fake_api.settle()
        [[button]] = fake_api.replies_to(flood[0])[0].params["reply_markup"]["inline_keyboard"]
        # A page turn counts too: dropped without a word (the notice was given).
        fake_api.press_button(
            fake_api.sent_to(flood_chat["id"])[0], flooder, button["callback_data"]
        )
        await fake_api.settle()
    assert TYPHOON.title in reply.params["text"]
    answered = [q for q in flood if fake_api.replies_to(q)]
    assert answered == flood[:6]  # five answers, then the notice, in the order asked
    notice = fake_api.replies_to(flood[5])[0].params["text"]
    assert "at most 5 a minute" in notice
    assert fake_api.calls_to("editMessageText") == []
    assert fake_api.calls_to("answerCallbackQuery") == []


def test_the_rate_is_a_bucket_with_a_notice_at_most_once_a_minute():
    now = [0.0]
    rate = UserRate(3, clock=lambda: now[0])
    answer, notice, drop = Admission.ANSWER, Admission.NOTICE, Admission.DROP
    assert [rate.check("a") for _ in range(6)] == [answer] * 3 + [notice, drop, drop]
    assert rate.check("b") is answer  # every user has their own bucket
    now[0] = 20.0  # a third of a minute: one question's worth
    assert [rate.check("a") for _ in range(2)] == [answer, drop]  # told 20 s ago
    now[0] = 80.0  # a minute after the notice, refilled to the burst size
    assert [rate.check("a") for _ in range(5)] == [answer] * 3 + [notice, drop]
    assert all(UserRate(0).check("a") is answer for _ in range(100))


def test_forgotten_users_start_afresh():
    rate = UserRate(1, clock=lambda: 0.0, max_users=10)
    rate.check("first")
    for i in range(10):
        rate.check(i)
    assert rate.check("first") is Admission.ANSWER  # its bucket was the least recent
