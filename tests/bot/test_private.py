"""Private chats through the real Application: questions, commands, pagination, odd input."""

from __future__ import annotations

from tests.support.fake_bot_api import utf16_len, visible_text
from tests.support.seeds import RAIL, SEED_TITLE, SEED_URL, TYPHOON


async def test_private_question_gets_passages_with_title_and_source_link(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    question = fake_api.send_text(chat, user, "石破茂和特朗普会谈讨论了防卫预算吗？")
    reply = await fake_api.wait_for_reply(question)
    html = reply.params["text"]
    assert reply.params["parse_mode"] == "HTML"
    assert f"<b>1. {SEED_TITLE}" in html
    assert f'<a href="{SEED_URL}">voachinese.com</a> · 2025-02-10' in html
    assert "<b>防卫" in html  # matched words in bold
    assert reply.params["link_preview_options"] == {"is_disabled": True}


async def test_section_heading_is_shown_in_bold_next_to_the_title(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    question = fake_api.send_text(chat, user, "台风海葵什么时候进入台湾海峡")
    html = (await fake_api.wait_for_reply(question)).params["text"]
    assert f"<b>1. {TYPHOON.title}</b> · <b>{TYPHOON.heading}</b>" in html


async def test_no_match_emoji_punctuation_and_stopwords_get_a_rephrase_hint(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    for text in ["🙂🙂🙂", "？？！！……", "的了吗呢是什么", "zzzzqqqq"]:
        question = fake_api.send_text(chat, user, text)
        html = (await fake_api.wait_for_reply(question)).params["text"]
        assert "没有找到" in html and "/latest" in html, text


async def test_markup_in_a_question_is_shown_as_text(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    question = fake_api.send_text(chat, user, "<b>台风</b> & <i>海葵")
    html = (await fake_api.wait_for_reply(question)).params["text"]
    assert "&lt;b&gt;台风&lt;/b&gt; &amp; &lt;i&gt;海葵" in html
    # Article text with markup characters is escaped as well.
    question = fake_api.send_text(chat, user, "不要靠近海边和河川")
    html = (await fake_api.wait_for_reply(question)).params["text"]
    assert "&lt;最新&gt;" in html and "&amp;" in html


async def test_a_4096_character_question_gets_a_reply_within_the_limit(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    question = fake_api.send_text(chat, user, ("台风海葵登陆台东" * 512)[:4096])
    html = (await fake_api.wait_for_reply(question)).params["text"]
    assert TYPHOON.title in html
    assert utf16_len(visible_text(html)) <= 4096


async def test_latest_lists_newest_first_and_caps_n(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    html = await fake_api.say(chat, user, "/latest")
    titles = [TYPHOON.title, SEED_TITLE, RAIL.title]
    positions = [html.index(t) for t in titles]
    assert positions == sorted(positions)
    assert "<b>2025-03-01</b>" in html and f'<a href="{TYPHOON.url}">' in html
    assert "强烈台风海葵周日下午在台湾东部台东县登陆" in html  # the first sentence

    html = await fake_api.say(chat, user, "/latest 1")
    assert TYPHOON.title in html and SEED_TITLE not in html
    html = await fake_api.say(chat, user, "/latest 100000")
    assert RAIL.title in html
    html = await fake_api.say(chat, user, "/latest abc")
    assert "用法" in html


async def test_start_and_help_explain_in_chinese_with_examples_from_the_articles(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    for command in ("/start", "/help"):
        html = await fake_api.say(chat, user, command)
        assert "可以这样问" in html and "/latest" in html and "@ThisBot" in html
        examples = [line for line in html.split("\n") if line.startswith("• ")]
        assert examples, html
        # Each example comes from an article the bot has, and finds something.
        assert any(
            "石破首访特朗普" in e or "登陆台湾东部" in e or "高铁新线" in e for e in examples
        )


async def test_about_counts_articles_and_passages(bot, fake_api, bot_library):
    user, chat = fake_api.user_in_private_chat()
    html = await fake_api.say(chat, user, "/about")
    stats = bot_library.stats()
    assert f"{stats.articles} 篇文章" in html and f"{stats.passages} 个段落" in html
    assert "2025-03-01" in html


async def test_ask_without_a_question_gets_a_usage_hint(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    html = await fake_api.say(chat, user, "/ask")
    assert "用法：/ask" in html
    html = await fake_api.say(chat, user, "/ask 台风海葵")
    assert TYPHOON.title in html


async def test_next_page_button_edits_the_message(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    question = fake_api.send_text(chat, user, "特朗普")
    reply = await fake_api.wait_for_reply(question)
    assert "第 1 页" in reply.params["text"]
    assert "<b>3. " in reply.params["text"] and "<b>4. " not in reply.params["text"]
    [[button]] = reply.params["reply_markup"]["inline_keyboard"]
    assert button["text"] == "下一页 ›"
    assert len(button["callback_data"].encode()) <= 64
    [bot_message] = fake_api.sent_to(chat["id"])

    fake_api.press_button(bot_message, user, button["callback_data"])
    edit = await fake_api.wait_for(lambda: fake_api.calls_to("editMessageText"))
    assert int(edit[0].params["message_id"]) == bot_message["message_id"]
    html = edit[0].params["text"]
    assert "第 2 页" in html and "<b>4. " in html
    answered = await fake_api.wait_for(lambda: fake_api.calls_to("answerCallbackQuery"))
    assert "text" not in answered[0].params  # a silent answer: the edit is the feedback
    buttons = edit[0].params["reply_markup"]["inline_keyboard"][0]
    assert buttons[0]["text"] == "‹ 上一页"

    # Back to page 1.
    edited = fake_api.sent_to(chat["id"])[0]
    fake_api.press_button(edited, user, buttons[0]["callback_data"])
    await fake_api.wait_for(lambda: len(fake_api.calls_to("editMessageText")) == 2)
    assert "第 1 页" in fake_api.calls_to("editMessageText")[1].params["text"]
    assert len(fake_api.sent_to(chat["id"])) == 1  # pages edit, never add messages


async def test_stale_foreign_and_unknown_buttons_get_polite_answers(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    question = fake_api.send_text(chat, user, "特朗普")
    reply = await fake_api.wait_for_reply(question)
    data = reply.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    [bot_message] = fake_api.sent_to(chat["id"])

    fake_api.press_button(bot_message, user, "p:nosuchkey:1")  # e.g. from before a restart
    fake_api.press_button(bot_message, user, "garbage that is not ours")
    stranger = fake_api.user(2002, "zh-hans", "Stranger")
    fake_api.press_button(bot_message, stranger, data)
    answers = await fake_api.wait_for(
        lambda: (c := fake_api.calls_to("answerCallbackQuery")) and len(c) == 3 and c
    )
    texts = sorted(c.params.get("text", "") for c in answers)
    assert sum("过期" in t for t in texts) == 2
    assert sum("只有提问的人" in t for t in texts) == 1
    assert fake_api.calls_to("editMessageText") == []


async def test_unknown_commands_and_stickers_get_one_short_hint(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    html = await fake_api.say(chat, user, "/weather")
    assert "/help" in html
    for _ in range(3):
        sticker = fake_api.make_message(
            chat, user, sticker={"file_id": "s", "file_unique_id": "s", "type": "regular",
                                 "width": 512, "height": 512, "is_animated": False,
                                 "is_video": False}
        )  # fmt: skip
        fake_api.push_update({"message": sticker})
    await fake_api.settle()
    hints = [c for c in fake_api.calls_to("sendMessage") if "文字" in c.params["text"]]
    assert len(hints) == 1
