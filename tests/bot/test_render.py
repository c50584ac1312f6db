"""Pure rendering and language picking: escaping, bold spans, the 4,096 limit, plain text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import i18n, render
from bot.i18n import pick_language
from retrieval import Article, Hit, Paragraph, Passage
from tests.support.fake_bot_api import telegram_html_problems


def _article(title="标题 <新闻> & “引号”", url="https://www.voachinese.com/a/x?a=1&b=2", day=1):
    return Article(
        id=f"a{day}",
        title=title,
        url=url,
        published=datetime(2025, 2, day, 12, tzinfo=UTC),
        paragraphs=(Paragraph("第一句话很长很长很长很长。第二句。", None),),
    )


def _hit(text, spans=(), section=None, article=None):
    article = article or _article()
    passage = Passage(id=f"{article.id}:0", ordinal=0, text=text,
                      section=section)  # fmt: skip
    return Hit(score=1.0, passage=passage, article=article, spans=tuple(spans))


def test_everything_is_escaped_and_spans_are_bold():
    hit = _hit("a<b>c & d", spans=[(0, 1), (8, 9)], section="小节 <1>")
    html = render.render_answer([hit], question="<i>问</i>", lang="zh-Hans")
    assert "<b>a</b>&lt;b&gt;c &amp; <b>d</b>" in html
    assert "<b>1. 标题 &lt;新闻&gt; &amp; “引号”</b> · <b>小节 &lt;1&gt;</b>" in html
    assert '<a href="https://www.voachinese.com/a/x?a=1&amp;b=2">voachinese.com</a>' in html
    assert "2025-02-01" in html and "「&lt;i&gt;问&lt;/i&gt;」" in html
    assert telegram_html_problems(html) == []


def test_a_quote_of_an_unnamed_speaker_shows_who_speaks_escaped_above_it():
    passage = Passage(id="a1:3", ordinal=3, text="他说：“会谈很成功。”")
    named = "研究员<长尾贤>认为" + "很长" * 300
    hit = Hit(1.0, passage, _article(), (), speaker=named)
    html = render.render_answer([hit] * 5, question="q", lang="zh-Hans")
    assert "🗣 研究员&lt;长尾贤&gt;认为" in html
    assert html.index("🗣") < html.index("他说：“会谈很成功。”")
    assert telegram_html_problems(html) == [] and render.visible_len(html) <= 4096
    assert "🗣" not in render.render_answer(
        [_hit("他说：“会谈很成功。”")], question="q", lang="zh-Hans"
    )


def test_numbering_continues_across_pages():
    html = render.render_answer([_hit("x"), _hit("y")], question="q", lang="en", page=2, per_page=2)
    assert "<b>5. " in html and "<b>6. " in html and "(page 3)" in html


def test_long_passages_are_shortened_to_fit_4096_utf16_units_keeping_the_match():
    filler = "很长的段落🚄" * 900  # 5,400 code points, 6,300 UTF-16 units
    hits = [
        _hit(filler + "关键词" + filler, spans=[(len(filler), len(filler) + 3)]) for _ in range(5)
    ]
    html = render.render_answer(hits, question="关键词" * 2000, lang="zh-Hans")
    assert telegram_html_problems(html) == []
    assert render.visible_len(html) <= 4096
    assert html.count("<b>关键词</b>") == 5  # every passage kept, its match in view
    assert html.count("…") >= 10


def test_a_cut_never_splits_a_surrogate_pair_or_a_tag():
    text = "🙂" * 3000
    html = render.render_answer([_hit(text, spans=[(100, 2000)])], question="🙂", lang="en")
    assert telegram_html_problems(html) == []
    assert "\ufffd" not in html


def test_excerpt_windows_around_the_first_match():
    text = "甲" * 100 + "目标" + "乙" * 100
    window, spans = render.excerpt(text, [(100, 102)], 40)
    assert window.startswith("…") and window.endswith("…")
    assert window[spans[0][0] : spans[0][1]] == "目标"
    assert render.utf16_len(window) <= 40


def test_latest_renders_date_linked_title_and_first_sentence():
    articles = [_article("新", day=3), _article("旧", day=1)]
    html = render.render_latest(articles, "zh-Hans")
    assert html.index("新") < html.index("旧")
    assert "<b>2025-02-03</b> <a href=" in html and "第一句话很长很长很长很长。" in html
    assert "第二句" not in html
    assert render.render_latest([], "en") == "There are no articles yet."


def test_plain_text_for_the_console():
    html = render.render_answer([_hit("a & b", spans=[(0, 1)])], question="q", lang="en")
    plain = render.to_plain(html, bold=("[", "]"))
    assert "[a] & b" in plain and "voachinese.com (https://www.voachinese.com/a/x?a=1&b=2)" in plain
    assert "<" not in plain.replace("<新闻>", "")


@pytest.mark.parametrize(
    ("code", "lang"),
    [
        (None, "zh-Hans"),
        ("", "zh-Hans"),
        ("zh-hans", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-hk", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh_Hant_TW", "zh-Hant"),
        ("en", "en"),
        ("en-GB", "en"),
        ("ja", "zh-Hans"),
    ],
)
def test_pick_language(code, lang):
    assert pick_language(code) == lang


def test_every_string_exists_in_every_language_and_is_valid_html():
    for key in i18n.string_keys():
        assert set(i18n.translations(key)) == set(i18n.LANGUAGES), key
        for lang in i18n.LANGUAGES:
            text = i18n.t(lang, key, question="q", page=1, example="e", bot="B", max=20, n=3,
                          articles=1, passages=2, newest="d", count=1, result="r", topic="t",
                          examples="x", commands="c", rate=20, missing="m", words="w",
                          word="w", earlier="e", title="t", interval=120,
                          state="on", most=10, number=1, days=7, command="/c")  # fmt: skip
            assert telegram_html_problems(text) == [], (key, lang)


# ---- hostile lengths and URLs (issue 12, items 1-3) ------------------------------------


def _long_hit(n: int, *, title_chars=300, heading_chars=300, host_chars=20, text="台风登陆。" * 80):
    host = "h" * host_chars + ".example"
    article = _article(title=("标题<b>&" * 100)[:title_chars], url=f"https://{host}/a/{n}", day=1)
    section = ("小节<i>&" * 100)[:heading_chars]
    return _hit(text, spans=[(0, 2)], section=section, article=article)


@pytest.mark.parametrize(
    ("hits", "what"),
    [
        ([_long_hit(i) for i in range(10)], "10 results, 300-character titles and headings"),
        ([_long_hit(i, host_chars=1500) for i in range(3)], "3 results at a 1,500-character host"),
        ([_long_hit(i, host_chars=4500) for i in range(10)], "4,500-character hosts"),
    ],
)
def test_titles_headings_and_hosts_shrink_to_fit_a_message(hits, what):
    html = render.render_answer(hits, question="台风" * 100, lang="zh-Hans")
    assert telegram_html_problems(html) == [], what
    for number in range(1, len(hits) + 1):  # every result kept
        assert f"<b>{number}. 标题" in html
    assert html.count("<b>台风</b>") == len(hits)  # each with its match in view


def test_an_inline_result_at_a_4500_character_host_fits():
    html = render.render_inline_message(_long_hit(0, host_chars=4500))
    assert telegram_html_problems(html) == []


def test_latest_20_with_300_character_titles_fits():
    articles = [_article(title=("新闻<标题>&" * 60)[:300], day=1 + i % 28) for i in range(20)]
    html = render.render_latest(articles, "zh-Hans")
    assert telegram_html_problems(html) == []
    assert html.count("<a href=") == 20


def test_a_push_of_an_article_with_a_huge_title_fits():
    html = render.render_new_article(_article(title="长标题<script>" * 1000))
    assert telegram_html_problems(html) == [] and "&lt;script&gt;" in html


def test_the_ask_usage_example_is_escaped():
    html = render.render_ask_usage("<蓝湖> & <script>是怎么回事？", "zh-Hans")
    assert telegram_html_problems(html) == []
    assert "&lt;蓝湖&gt; &amp; &lt;script&gt;" in html


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<b>x</b>",
        "vbscript:msgbox",
        "//no-scheme.example/a",
        "http://[x",
        "https://exa mple.com/a",
        "https://example.com/\x1b[31m",
        "https://" + "a" * 3000 + ".example/",
        "http:///path-only",
    ],
    ids=lambda url: repr(url[:24]),
)
def test_only_http_urls_become_links(url):
    assert render.link_url(url) is None
    html = render.link(url, "标题")
    assert "<a" not in html and html == "标题"


def test_web_urls_become_links_escaped():
    url = 'https://www.voachinese.com/a/x?a=1&b="2"'
    assert render.link_url(url) == url
    assert render.link(url, "<t>") == (
        '<a href="https://www.voachinese.com/a/x?a=1&amp;b=&quot;2&quot;">&lt;t&gt;</a>'
    )


def test_control_characters_and_bidi_overrides_never_reach_a_message():
    hit = _hit(
        "正文\x1b[31m红\x07\u202e反\x9b2J",
        section="小节\x1b]0;t\x07",
        article=_article("题\x1b[1m"),
    )
    html = render.render_answer([hit], question="问\x1b[2J", lang="zh-Hans")
    for bad in "\x1b\x07\x9b\u202e":
        assert bad not in html
    assert "正文[31m红反2J" in html
