"""Hostile text in every field of an article (title, section heading, caption, paragraphs, URL
host), through every kind of reply the bot sends: each stays valid Telegram HTML within
4,096 UTF-16 units, shows the markup as text, carries no control character or bidi override,
and links only to http(s) URLs (issue 12, items 1-3)."""

from __future__ import annotations

import pytest

from retrieval import IndexKeeper
from tests.support.fake_bot_api import telegram_html_problems, visible_text
from tests.support.harness import run_bot, running_bot
from tests.support.seeds import UNSAFE_CHARACTERS, hostile_seed, write_hostile_seeds


@pytest.fixture
def hostile_keeper(tmp_path) -> IndexKeeper:
    seeds = write_hostile_seeds(tmp_path / "seeds")
    return IndexKeeper.open(seeds, index_dir=tmp_path / "index")


def _texts(fake_api) -> list[str]:
    """Every HTML text the bot sent: messages, edits, inline results' messages."""
    texts = [c.params["text"] for c in fake_api.calls_to("sendMessage")]
    texts += [c.params["text"] for c in fake_api.calls_to("editMessageText")]
    texts += [
        r["input_message_content"]["message_text"]
        for c in fake_api.calls_to("answerInlineQuery")
        for r in c.params["results"]
    ]
    return texts


async def test_hostile_text_in_every_field_through_every_reply_kind(fake_api, hostile_keeper):
    admin = fake_api.user(9001)
    chat = fake_api.private_chat(admin)
    env = {"RESULTS_PER_PAGE": "10", "ADMIN_USER_IDS": str(admin["id"])}
    async with running_bot(fake_api, hostile_keeper, **env):
        # An answer with 10 results, and its next page.
        question = fake_api.send_text(chat, admin, "台风海葵防卫预算")
        answer = await fake_api.wait_for_reply(question)
        [[button]] = answer.params["reply_markup"]["inline_keyboard"]
        fake_api.press_button(fake_api.sent_to(chat["id"])[-1], admin, button["callback_data"])
        await fake_api.wait_for(lambda: fake_api.calls_to("editMessageText"))
        # Every command that shows articles or is built from them; /ask alone shows an
        # example question made from a title, `<蓝湖21>…`.
        replies = {
            command: await fake_api.say(chat, admin, command)
            for command in ("/latest 20", "/latest", "/help", "/ask", "/about")
        }
        # Inline: passages, and the newest articles for an empty query.
        fake_api.inline_query(admin, "台风海葵")
        fake_api.inline_query(admin, "")
        await fake_api.wait_for(lambda: len(fake_api.calls_to("answerInlineQuery")) == 2)
        # A push of a new hostile article.
        await fake_api.say(chat, admin, "/subscribe")
        (hostile_keeper.seeds_dir / "new.txt").write_text(hostile_seed(99), encoding="utf-8")
        await fake_api.say(chat, admin, "/reload")
        await fake_api.wait_for(
            lambda: any("99" in c.params["text"] for c in fake_api.calls_to("sendMessage"))
        )
        await fake_api.settle()

    assert "&lt;蓝湖21&gt;" in replies["/ask"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.params["text"]
    assert "empty.txt" in replies["/about"]  # the hostile file name, shown to the admin
    texts = _texts(fake_api)
    assert len(texts) >= 10
    for text in texts:
        assert telegram_html_problems(text) == [], text[:300]
        assert "<script>" not in text
        assert not set(visible_text(text)) & set(UNSAFE_CHARACTERS), text[:300]
    results = [r for c in fake_api.calls_to("answerInlineQuery") for r in c.params["results"]]
    assert len(results) == 20
    for result in results:
        assert result.get("url", "https://").startswith(("https://", "http://"))
        for field in ("title", "description"):
            assert not set(result.get(field, "")) & set(UNSAFE_CHARACTERS)
    # The 1,500-character hosts are links (their labels shortened); javascript: is not.
    assert any('<a href="https://bbbb' in text for text in texts)
    assert not any("javascript:" in text for text in texts)
    assert fake_api.problems == []


def test_the_console_prints_no_control_characters(tmp_path):
    seeds = write_hostile_seeds(tmp_path / "seeds", count=4)
    stdin = "台风海葵防卫预算\n/next\n/latest 20\n/about\n/help\n/ask\n"
    result = run_bot(
        "--console", cwd=tmp_path, stdin=stdin, SEEDS_DIR=str(seeds), INDEX_DIR=str(tmp_path / "i")
    )
    assert result.returncode == 0, result.stderr
    assert not set(result.stdout) & set(UNSAFE_CHARACTERS)
    assert "<script>alert(1)</script>" in result.stdout and "[31mRED" in result.stdout
    assert "empty.txt" in result.stdout  # /about names the unreadable file
