"""Follow-ups: a reply to an answer, or a short message soon after a question in a private
chat, is read with the earlier question when it leans on it; never across chats."""

from __future__ import annotations

import time

import pytest

from bot import render
from bot.console import ConsoleSession
from bot.conversation import FOLLOW_UP_MAX_CHARS, FOLLOW_UP_SECONDS
from retrieval import IndexKeeper
from tests.support.harness import running_bot
from tests.support.seeds import RAIL, SEED_TITLE, TYPHOON, write_seeds

FIRST = "台风海葵在哪里登陆？"
# Leans on the question before it; read alone, the seed article's "他说…" passages come first.
FOLLOW_UP = "他们说了什么"
READ_WITH = f"接着「{FIRST}」来理解"
NEW_TOPIC = "高铁新线什么时候通车？"


@pytest.fixture(scope="module")
def terms_keeper(tmp_path_factory) -> IndexKeeper:
    """The bot's library ranked by terms and characters alone: these tests pin how follow-ups
    reach the engine (which context, when, in which chat). With the model of meaning one of
    these follow-ups is answered from another article: a ranking defect, pinned in
    tests/test_meaning.py."""
    root = tmp_path_factory.mktemp("follow-ups")
    return IndexKeeper.open(write_seeds(root / "seeds", TYPHOON, RAIL), root / "index")


@pytest.fixture
async def bot(fake_api, terms_keeper):
    async with running_bot(fake_api, terms_keeper) as application:
        yield application


def _first_title(html: str) -> str:
    return html.split("<b>1. ", 1)[1].split("</b>", 1)[0]


async def test_a_reply_to_an_answer_follows_up_on_its_question_in_a_group(bot, fake_api):
    asker, other = fake_api.user(3101), fake_api.user(3102)
    group = fake_api.group_chat()
    await fake_api.wait_for_reply(fake_api.send_text(group, asker, f"/ask@ThisBot {FIRST}"))
    [answer] = fake_api.sent_to(group["id"])
    # Another member replying to the bot's answer follows up on it too.
    follow_up = fake_api.send_text(group, other, FOLLOW_UP, reply_to=answer)
    html = (await fake_api.wait_for_reply(follow_up)).params["text"]
    assert READ_WITH in html and _first_title(html) == TYPHOON.title
    # Not replying, the same words by another member are read alone: no context across users.
    alone = fake_api.send_text(group, other, f"/ask@ThisBot {FOLLOW_UP}")
    html = (await fake_api.wait_for_reply(alone)).params["text"]
    assert "接着" not in html and _first_title(html) == SEED_TITLE


async def test_a_short_message_soon_after_a_question_follows_up_in_a_private_chat(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    start = int(time.time())

    async def ask(text: str, at: int) -> str:
        message = fake_api.send_text(chat, user, text, date=at)
        return (await fake_api.wait_for_reply(message)).params["text"]

    await ask(FIRST, start)
    html = await ask(FOLLOW_UP, start + 60)
    assert READ_WITH in html and _first_title(html) == TYPHOON.title
    # A new topic is read alone, whatever came before.
    html = await ask(NEW_TOPIC, start + 70)
    assert "接着" not in html and _first_title(html) == RAIL.title
    # Too late after the last question, or too long: read alone.
    await ask(FIRST, start + 80)
    html = await ask(FOLLOW_UP, start + 80 + FOLLOW_UP_SECONDS + 1)
    assert "接着" not in html and _first_title(html) == SEED_TITLE
    await ask(FIRST, start + 1000)
    long = FOLLOW_UP + "，" + "请详细说说" * (FOLLOW_UP_MAX_CHARS // 5)
    assert "接着" not in await ask(long, start + 1001)


async def test_the_next_page_of_a_follow_up_keeps_its_context(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    await fake_api.say(chat, user, FIRST)
    reply = await fake_api.wait_for_reply(fake_api.send_text(chat, user, FOLLOW_UP))
    assert READ_WITH in reply.params["text"]
    [[button]] = reply.params["reply_markup"]["inline_keyboard"]
    answer = fake_api.sent_to(chat["id"])[-1]
    fake_api.press_button(answer, user, button["callback_data"])
    [edit] = await fake_api.wait_for(lambda: fake_api.calls_to("editMessageText"))
    assert "第 2 页" in edit.params["text"] and READ_WITH in edit.params["text"]


def test_the_earlier_question_is_shown_escaped_and_shortened():
    header = render.answer_header("那呢", "en", read_with="<b>" + "长" * 500)
    line = header.split("\n")[1]
    assert line.startswith("↪️ Read as a follow-up to “&lt;b&gt;长") and "…”" in line
    assert render.visible_len(line) < render.QUESTION_ECHO_CHARS + 40


async def test_context_never_crosses_chats(bot, fake_api):
    user, chat = fake_api.user_in_private_chat(1201)
    stranger, other_chat = fake_api.user_in_private_chat(1202)
    await fake_api.say(chat, user, FIRST)
    html = await fake_api.say(other_chat, stranger, FOLLOW_UP)
    assert "接着" not in html and _first_title(html) == SEED_TITLE


def test_the_console_follows_up_on_its_previous_question(bot_library):
    now = [0.0]
    session = ConsoleSession(bot_library, "zh-Hans", clock=lambda: now[0])
    session.handle(FIRST)
    now[0] = 30
    reply = session.handle(FOLLOW_UP)
    assert READ_WITH in reply and "(/next ›)" in reply
    page_2 = session.handle("/next")
    assert "第 2 页" in page_2 and READ_WITH in page_2
    assert "接着" not in session.handle(NEW_TOPIC)
    now[0] += FOLLOW_UP_SECONDS + 1
    assert "接着" not in session.handle(FOLLOW_UP)


def test_the_follow_up_line_comes_right_under_the_line_naming_the_question():
    """Answered or declined, the ↪️ line is in one place: second, under the question's line."""
    for confident in (True, False):
        header = render.answer_header(
            "那以色列呢", "zh-Hans", confident=confident, missing=["以色列"], read_with="伊朗怎么说"
        )
        first, follow_up, *rest = header.split("\n")
        assert "那以色列呢" in first and follow_up.startswith("↪️ ") and "伊朗怎么说" in follow_up
        assert rest == ([] if confident else ["以下段落可能相关，但不是答案（第 1 页）："])
