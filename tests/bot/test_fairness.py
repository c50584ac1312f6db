"""Fairness under load (issue 12, item 13): another chat is answered while one floods, each
chat's answers come in the order asked, and a user past QUESTIONS_PER_MINUTE gets one notice
while the rest of their flood is dropped. Ordering is checked structurally (who was answered
before whom), never against the clock; the figures are benchmarks/bot_load.py's."""

from __future__ import annotations

from telegram import Update

from bot.app import RetryingRateLimiter
from bot.arrival import Cost, cost
from bot.fairness import Admission, UserRate
from tests.support.fake_bot_api import BOT_ID, BOT_USERNAME
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


# ---- counted on arrival (issue 23) ------------------------------------------------------


async def test_a_flood_is_counted_as_it_arrives_per_user_across_chats(fake_api, bot_keeper):
    """One member's `/help@bot` flood waited in the group's lane (here: behind a 429) while
    the bucket went uncounted, and their private question was answered meanwhile; counted
    on arrival, the flood spends the rate at once and the question is past it."""
    user, private = fake_api.user_in_private_chat(5201, "en")
    group = fake_api.group_chat(-1005201)
    async with running_bot(
        fake_api, bot_keeper, rate_limiter=_unlimited(), QUESTIONS_PER_MINUTE="5"
    ):
        fake_api.fail("sendMessage", status=429, retry_after=2)
        first = fake_api.send_text(group, user, "/help@ThisBot")
        await fake_api.wait_for(lambda: fake_api.calls_to("sendMessage", ok_only=False))
        # The group's lane is held up by the 429 now: everything below waits behind it.
        flood = [first] + [fake_api.send_text(group, user, "/help@ThisBot") for _ in range(11)]
        question = fake_api.send_text(private, user, "台风海葵")
        notice = "at most 5 a minute"
        await fake_api.wait_for(
            lambda: any(notice in m["html"] for m in fake_api.sent_to(group["id"])),
            timeout=20,
        )
        await fake_api.settle()
    answered = [m for m in flood if fake_api.replies_to(m)]
    assert fake_api.replies_to(question) == []  # past the rate: dropped, told once
    assert answered == flood[:6]  # five answers and the notice, in the order asked
    assert notice in fake_api.replies_to(flood[5])[0].params["text"]


async def test_autoanswer_candidates_count_against_the_senders_rate(fake_api, bot_keeper):
    """Each question-like message in an /autoanswer group is looked up; they were never
    counted. Past the rate they are dropped untold, and the notice waits for a real ask."""
    fake_api.privacy_mode = False  # the bot sees every group message
    group = fake_api.group_chat(-1005301)
    admin, member = fake_api.user(5301, "en", "Admin"), fake_api.user(5302, "en", "Member")
    fake_api.set_member_status(group, admin, "administrator")
    async with running_bot(fake_api, bot_keeper, QUESTIONS_PER_MINUTE="4"):
        assert "on" in await fake_api.say(group, admin, "/autoanswer@ThisBot on")
        candidates = [fake_api.send_text(group, member, f"第{i}列高铁几点到？") for i in range(5)]
        await fake_api.settle()
        reply = await fake_api.say(group, member, "/ask@ThisBot 台风海葵")
    assert sum(bool(fake_api.replies_to(m)) for m in candidates) <= 1  # the group's pace
    assert "at most 4 a minute" in reply and TYPHOON.title not in reply


async def test_inline_queries_count_and_past_the_rate_get_a_cheap_answer_once(fake_api, bot_keeper):
    user = fake_api.user(5401, "en")
    async with running_bot(fake_api, bot_keeper, QUESTIONS_PER_MINUTE="3"):
        for _ in range(6):
            fake_api.inline_query(user, "台风海葵")
        await fake_api.wait_for(lambda: len(fake_api.calls_to("answerInlineQuery")) >= 4)
        await fake_api.settle()
    answers = fake_api.calls_to("answerInlineQuery")
    assert len(answers) == 4  # three answered, one told, two dropped
    assert all(TYPHOON.title in a.params["results"][0]["title"] for a in answers[:3])
    told = answers[3].params
    assert told["results"] == [] and told["button"]["text"].startswith("🐢 Too many")
    assert told["is_personal"] in (True, "true", "True")


def _update(message: dict) -> Update:
    return Update.de_json({"update_id": 1, "message": message}, None)


def test_what_an_update_costs(fake_api):
    """Counted: what makes the bot work for someone. Free: what the handlers ignore."""
    user, private = fake_api.user_in_private_chat(5501)
    group = fake_api.group_chat(-1005501)
    bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "News Q&A", "username": BOT_USERNAME}
    answer = fake_api.make_message(group, bot_user, "答案")

    def priced(chat: dict, text: str | None, **extra) -> Cost:
        return cost(_update(fake_api.make_message(chat, user, text, **extra)), "ThisBot", BOT_ID)

    assert priced(private, "台风海葵") is Cost.ASKED
    assert priced(private, "/nosuchcommand") is Cost.ASKED  # answered: "unknown command"
    assert priced(private, None, location={"latitude": 1.0, "longitude": 2.0}) is Cost.FREE
    assert priced(group, "/help@ThisBot") is Cost.ASKED
    assert priced(group, "/HELP@thisbot") is Cost.ASKED
    assert priced(group, "/help") is Cost.ASKED
    assert priced(group, "/help@OtherBot") is Cost.FREE
    assert priced(group, "/nosuchcommand@ThisBot") is Cost.FREE
    assert priced(group, "@ThisBot 台风海葵") is Cost.ASKED
    assert priced(group, "还有呢", reply_to_message=answer) is Cost.ASKED
    assert priced(group, "台风海葵在哪里登陆？") is Cost.UNASKED
    assert priced(group, "今天台风好大，大家注意安全") is Cost.FREE
    assert priced(group, None, new_chat_members=[user]) is Cost.FREE


async def test_a_question_past_its_deadline_is_told_to_ask_again_not_answered_late(
    fake_api, bot_keeper
):
    """A burst (here: a 429 holding up the chat's lane) must not end in answers minutes late:
    past ANSWER_DEADLINE_SECONDS, counted from arrival, the asker hears to ask again."""
    user, chat = fake_api.user_in_private_chat(5401, "en")
    env = {"ANSWER_DEADLINE_SECONDS": "1", "QUESTIONS_PER_MINUTE": "0"}
    async with running_bot(fake_api, bot_keeper, rate_limiter=_unlimited(), **env):
        fake_api.fail("sendMessage", status=429, retry_after=3)
        first = fake_api.send_text(chat, user, "台风海葵")
        await fake_api.wait_for(lambda: fake_api.calls_to("sendMessage", ok_only=False))
        second = fake_api.send_text(chat, user, "高铁新线什么时候通车？")  # waits behind it
        late = await fake_api.wait_for_reply(second, timeout=20)
        answered = fake_api.replies_to(first)
    assert "ask again" in late.params["text"] and "<b>1." not in late.params["text"]
    # the first, held up by the 429 after it was answered in time, is still delivered
    assert answered and "<b>1." in answered[0].params["text"]
