"""/help in each place it is shown: example questions a person would ask, made from the
articles' headlines and answered by the engine, worked out once; and only the commands that
work there."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from bot import i18n, render, replies
from bot.console import CONSOLE_BOT_NAME, ConsoleSession
from bot.i18n import t
from retrieval import Article, Library, LibraryStats, SkippedFile


class CountingSearches:
    """The library, counting the searches made through it."""

    def __init__(self, library: Library) -> None:
        self.library = library
        self.searches = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.library, name)

    def search(self, *args, **kwargs):
        self.searches += 1
        return self.library.search(*args, **kwargs)


def _title_starts(question: str, library: Library) -> bool:
    """Whether the question asks about the start of one of the library's headlines."""
    topic = question.removesuffix("是怎么回事？")
    titles = [re.sub(r"[“”]", "", a.title) for a in library.latest(10)]
    return any(title.startswith(topic) for title in titles)


def test_examples_are_whole_questions_from_headlines_that_the_engine_answers(bot_library):
    examples = replies.example_questions(bot_library, "zh-Hans")
    assert examples == [
        "台风海葵登陆台湾东部是怎么回事？",
        "石破首访特朗普是怎么回事？",
        "高铁新线通车是怎么回事？",
    ]
    for question in examples:
        assert _title_starts(question, bot_library), question  # never a middle fragment
        assert bot_library.search(question, k=1).confident


def test_examples_are_worked_out_once_per_set_of_newest_articles(bot_library):
    counting = CountingSearches(bot_library)
    first = replies.help_text(counting, "en", "ThisBot")  # type: ignore[arg-type]
    searches = counting.searches
    again = replies.help_text(counting, "en", "ThisBot")  # type: ignore[arg-type]
    replies.ask_usage(counting, "en")  # type: ignore[arg-type]
    assert searches > 0 and counting.searches == searches
    assert again == first


def test_a_headline_becomes_a_whole_question_or_none():
    def asked(title: str) -> str | None:
        return render.example_question(title, "zh-Hans")

    question = "军犬通过训练可以帮助识别新冠病毒感染者吗？"
    assert asked(question) == question  # a headline that asks is asked as it is
    assert asked("倒计时开始：特朗普限期要求完成收购抖音海外版的谈判") == (
        "特朗普限期要求完成收购抖音海外版的谈判是怎么回事？"  # past the teaser
    )
    assert asked("武汉封城一周年 作家方方依然面临网络暴力") == "武汉封城一周年是怎么回事？"
    assert asked("专访") is None


def test_the_console_help_lists_only_the_commands_the_console_answers(bot_library):
    session = ConsoleSession(bot_library, "en")
    shown = session.handle("/help") or ""
    listed = re.findall(r"^/(\w+)", shown, re.M)
    assert {"ask", "latest", "about", "help", "next", "quit"} <= set(listed)
    unknown = render.to_plain(t("en", "unknown_command"))
    for name in listed:
        if name != "quit":  # run_console ends there, before the session sees it
            assert session.handle(f"/{name}") != unknown, name
    assert "In groups" not in shown and CONSOLE_BOT_NAME not in shown


def test_counts_read_right_in_each_language():
    for key in i18n.counted_keys():
        assert set(i18n.counted_translations(key)) == set(i18n.LANGUAGES), key
    one = datetime(2025, 2, 10, tzinfo=UTC)
    article = Article("a" * 16, "标题", "https://x.test/a", one, paragraphs=())
    help_en = render.render_help("en", examples=[], articles=1, bot_username="B")
    assert "in 1 news article (mostly" in help_en
    assert render.render_latest([article], "en").startswith("🗞 The newest article:")
    stats = LibraryStats(1, 1, one, (SkippedFile("x.txt", "empty"),))
    assert render.render_about(stats, "en", show_skipped=True).startswith(
        "📚 1 article, 1 passage; newest article: 2025-02-10.\n\n⚠️ 1 file could not be read:"
    )
    assert render.render_about(stats, "zh-Hans", show_skipped=True).startswith(
        "📚 收录了 1 篇文章、1 个段落，最新文章日期：2025-02-10。\n\n⚠️ 有 1 个文件无法读取："
    )
