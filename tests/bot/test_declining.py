"""When the engine is not confident the archive answers: said plainly, the missing words
named, the close passages under a header that says they are not an answer; never presented
as an answer, inline or in /help's examples."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import render
from retrieval import IndexKeeper
from tests.support.fake_bot_api import telegram_html_problems
from tests.support.harness import running_bot
from tests.support.seeds import SEED_TITLE, SeedArticle, write_seeds

UNANSWERED = "2023年日本首相是谁？"  # the archive's Japanese prime minister is 2025's


async def test_a_question_the_archive_does_not_answer_is_declined_plainly(bot, fake_api):
    user, chat = fake_api.user_in_private_chat()
    html = await fake_api.say(chat, user, UNANSWERED)
    header = html.split("<b>1. ", 1)[0]
    assert f"没有找到「{UNANSWERED}」的确切答案：最接近的文章里没有提到「2023」。" in header
    assert "以下段落可能相关，但不是答案（第 1 页）" in header and "🔎" not in header
    assert SEED_TITLE in html  # the close passages follow the header
    english, chat = fake_api.user_in_private_chat(1301, "en")
    html = await fake_api.say(chat, english, UNANSWERED)
    assert "no exact answer" in html and "does not mention “2023”" in html


def test_missing_words_are_escaped_and_shortened():
    missing = ["<b>" + "长" * 100] * 7
    header = render.answer_header("问", "zh-Hans", confident=False, missing=missing)
    assert telegram_html_problems(header) == []
    shown = header.split("没有提到", 1)[1].split("。", 1)[0]
    assert shown.count("「&lt;b&gt;") == render.MISSING_WORDS_SHOWN and shown.endswith("…")
    words = render.visible_text(shown).removesuffix("…").split("、")
    assert all(len(w.strip("「」")) <= render.MISSING_WORD_CHARS for w in words)


async def test_inline_results_for_an_unanswered_question_are_marked_as_related(bot, fake_api):
    fake_api.inline_query(fake_api.user(4101), UNANSWERED)
    [call] = await fake_api.wait_for(lambda: fake_api.calls_to("answerInlineQuery"))
    assert call.params["button"]["text"].startswith("没有确切的答案")
    results = call.params["results"]
    assert results and all(r["title"].startswith("（可能相关）") for r in results)
    for result in results:
        posted = result["input_message_content"]["message_text"]
        assert posted.startswith(f"🤔 没有找到「{UNANSWERED}」的确切答案，这一段可能相关：")
    fake_api.inline_query(fake_api.user(4102), "台风海葵在哪里登陆？")  # answered: no marks
    calls = await fake_api.wait_for(lambda: len(fake_api.calls_to("answerInlineQuery")) == 2)
    answered = fake_api.calls_to("answerInlineQuery")[1].params
    assert calls and "button" not in answered and "可能相关" not in str(answered["results"])


async def test_help_and_ask_suggest_only_questions_the_archive_answers(fake_api, tmp_path):
    # The newest article's only topic is a heading whose year no article holds: its example
    # question finds passages (天气) but is not answered, so it is never suggested.
    weather = SeedArticle(
        title="台风：预警",
        url="https://news.example/a/weather.html",
        published=datetime(2025, 3, 2, tzinfo=UTC),
        heading="2019年天气回顾",
        paragraphs=("气象部门周日发布消息，台风明天到达，天气恶劣。",),
    )
    rail = SeedArticle(
        title="高铁新线通车",
        url="https://news.example/a/rail.html",
        published=datetime(2025, 3, 1, tzinfo=UTC),
        paragraphs=("高铁新线周三正式通车，北京到上海的旅程缩短至四小时。",),
    )
    seeds = write_seeds(tmp_path / "seeds", weather, rail, include_seed_article=False)
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    library = keeper.library
    assert library.search("2019年天气回顾是怎么回事？", k=1).hits  # found, yet not an answer
    async with running_bot(fake_api, keeper):
        user, chat = fake_api.user_in_private_chat()
        html = await fake_api.say(chat, user, "/help")
        assert "<code>高铁新线通车是怎么回事？</code>" in html and "2019" not in html
        html = await fake_api.say(chat, user, "/ask")
        assert html == "用法：/ask 你的问题，例如 /ask 高铁新线通车是怎么回事？"
