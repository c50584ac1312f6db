"""Inline mode: @ThisBot question in any chat."""

from __future__ import annotations

from tests.support.seeds import RAIL, SEED_TITLE, TYPHOON


async def test_inline_question_returns_passages_with_links(bot, fake_api):
    user = fake_api.user(4001)
    fake_api.inline_query(user, "特朗普")
    [call] = await fake_api.wait_for(lambda: fake_api.calls_to("answerInlineQuery"))
    results = call.params["results"]
    assert 1 <= len(results) <= 10
    assert len({r["id"] for r in results}) == len(results)
    for result in results:
        assert result["type"] == "article"
        assert result["title"].startswith(SEED_TITLE[:10])
        assert result["description"]
        content = result["input_message_content"]
        assert content["parse_mode"] == "HTML"
        assert '<a href="https://www.voachinese.com/' in content["message_text"]
        assert content["link_preview_options"] == {"is_disabled": True}


async def test_empty_inline_query_lists_the_newest_articles(bot, fake_api):
    fake_api.inline_query(fake_api.user(4002), "")
    [call] = await fake_api.wait_for(lambda: fake_api.calls_to("answerInlineQuery"))
    titles = [r["title"] for r in call.params["results"]]
    assert titles == [TYPHOON.title, SEED_TITLE, RAIL.title]


async def test_inline_query_without_matches_offers_to_open_the_bot(bot, fake_api):
    fake_api.inline_query(fake_api.user(4003, "en"), "🙂🙂")
    [call] = await fake_api.wait_for(lambda: fake_api.calls_to("answerInlineQuery"))
    assert call.params["results"] == []
    assert call.params["button"]["text"].startswith("Nothing found")
