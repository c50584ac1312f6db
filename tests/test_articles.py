"""The seed parser and passage splitting, on the real seed and on every awkward input."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from retrieval import Paragraph, Passage, seedfile
from retrieval.articles import (
    PASSAGE_MAX_CHARS,
    boilerplate,
    parse_article,
    passages_of,
    read_article,
    speaker,
    split_long,
)
from retrieval.seedfile import SeedFormatError
from tests.support.seeds import SEED, seed_file

SEED_URL = (
    "https://www.voachinese.com/a/trump-ishiba-summit-paves-way-for-future-us-japan-alliance"
    "/7969986.html"
)


def test_seed_header_date_caption_and_dateline(seed_text: str) -> None:
    article = parse_article(seed_text, "000.txt")
    assert article.title == "石破首访特朗普：巩固美日同盟，打出防卫与贸易“双赢牌”"
    assert article.url == SEED_URL
    # the <div><i> RFC 822 date wins over the comment's epoch ms (which is 22:39:02)
    assert article.published == datetime(2025, 2, 10, 22, 51, 4, tzinfo=UTC)
    assert article.captions == (
        "美国总统唐纳德·特朗普在白宫椭圆形办公室会见日本首相石破茂。(2025年2月7日)",
    )
    assert article.dateline == "台北"
    assert len(article.id) == 16


def test_seed_paragraphs_and_sections(seed_text: str) -> None:
    article = parse_article(seed_text)
    assert len(article.paragraphs) == 20
    first = article.paragraphs[0]
    assert first.section is None
    assert first.text.startswith("日本首相石破茂2月7日与美国总统唐纳德·特朗普(Donald Trump)")
    sections = []
    for paragraph in article.paragraphs:
        if paragraph.section not in sections:
            sections.append(paragraph.section)
    assert sections == [
        None,
        "重申美日同盟 地区战略再强化",
        "会谈过程顺利 日方谨慎应对",
        "防卫预算议题暂缓 未来或面临挑战",
        "贸易合作：推动双赢发展",
        "美日未来合作前景可期",
    ]
    assert all("<" not in p.text for p in article.paragraphs)
    assert article.paragraphs[-1].text.endswith("成功化解了可能的冲突。")


def test_seed_without_div_date_uses_comment_ms() -> None:
    text = "<!--1739228342000-->\n[t](https://x.test/a)\n------\n\n<p>正文内容足够长的一段。</p>"
    assert parse_article(text).published == datetime(2025, 2, 10, 22, 59, 2, tzinfo=UTC)


def test_entities_decoded_tags_stripped_links_keep_text() -> None:
    text = (
        "<!--1700000000000-->\n[A &amp; B](https://x.test/a)\n------\n\n"
        '<p>美国&amp;日本 &lt;同盟&gt; 见<a href="https://x.test/b">这篇报道</a>。</p>'
    )
    article = parse_article(text)
    assert article.paragraphs[0].text == "美国&日本 <同盟> 见这篇报道。"


def test_yaml_front_matter_and_div_wrapped_body(seed_text: str) -> None:
    head, body = seed_text.split("------\n", 1)
    wrapped = f"---\ntitle: x\nlayout: post\n---\n{head}------\n\n<div>\n{body.strip()}\n</div>\n"
    article = parse_article(wrapped)
    assert article.url == SEED_URL
    assert article.paragraphs == parse_article(seed_text).paragraphs


def test_other_feeds_nested_divs_br_chinese_date_no_p() -> None:
    text = (
        "<!--1595030400000-->\n[德国之声 报道](https://www.dw.com/zh/a-1)\n------\n\n"
        "<div><div>2020年 7月 18日</div><div><div>第一段文字，讲述了事件。<br>第二段文字，"
        "补充了细节。<br/><br/>第三段文字。</div></div></div>"
    )
    article = parse_article(text)
    assert article.published == datetime(2020, 7, 18, tzinfo=UTC)
    assert [p.text for p in article.paragraphs][-3:] == [
        "第一段文字，讲述了事件。",
        "第二段文字，补充了细节。",
        "第三段文字。",
    ]


def test_title_with_brackets_and_url_with_parenthesis() -> None:
    text = (
        "<!--1700000000000-->\n[[快讯] 美(日)会谈 [更新]](https://x.test/wiki/Summit_(2025))\n"
        "------\n\n<p>一段正文内容在这里。</p>"
    )
    article = parse_article(text)
    assert article.title == "[快讯] 美(日)会谈 [更新]"
    assert article.url == "https://x.test/wiki/Summit_(2025)"


def test_crlf_bom_and_invalid_utf8(seed_text: str) -> None:
    raw = b"\xef\xbb\xbf" + seed_text.replace("\n", "\r\n").encode("utf-8")
    article = parse_article(seedfile.decode(raw))
    assert article.title.startswith("石破首访特朗普")
    assert len(article.paragraphs) == 20
    broken = seed_text.encode("utf-8").replace("审议官".encode(), b"\xff\xfe")
    article = parse_article(seedfile.decode(broken))
    assert any("\ufffd" in p.text for p in article.paragraphs)


def test_script_and_style_never_kept() -> None:
    text = (
        "<!--1700000000000-->\n[t](https://x.test/a)\n------\n\n"
        "<script>alert('x'); var secret = 1;</script><style>p {color: red}</style>"
        "<p>可见的正文内容。<script>document.write('隐藏')</script></p>"
    )
    article = parse_article(text)
    joined = " ".join(p.text for p in article.paragraphs)
    assert joined == "可见的正文内容。"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty file"),
        (b"   \n\n", "empty file"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
        (b"just some notes, not an article\n", "no [title](url) header"),
        (b"[t](https://x.test/a)\n------\n\n<p>no date anywhere</p>", "no publication date"),
    ],
)
def test_files_that_cannot_be_understood_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(SeedFormatError, match=re.escape(reason)):
        parse_article(seedfile.decode(raw))


def test_ten_megabyte_file_parses(tmp_path: Path) -> None:
    paragraph = "<p>" + "美日同盟在安全领域的合作方向包括加强威慑能力。" * 20 + "</p>"
    head = "<!--1700000000000-->\n[big](https://x.test/big)\n------\n\n"
    copies = 10 * 1024 * 1024 // len(paragraph.encode()) + 1
    body = paragraph * copies
    path = tmp_path / "big.txt"
    path.write_text(head + body, encoding="utf-8")
    assert path.stat().st_size > 10 * 1024 * 1024
    article = read_article(path, "big.txt")
    assert len(article.paragraphs) == copies


def test_unreadable_path_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(SeedFormatError, match="unreadable"):
        read_article(tmp_path / "missing.txt", "missing.txt")


# --- passages ----------------------------------------------------------------------------------


def test_seed_passages_are_its_paragraphs_not_its_caption_nor_its_headings() -> None:
    article = read_article(SEED, SEED.name)
    passages = passages_of(article)
    assert passages[0].text == article.paragraphs[0].text
    assert passages[0].section is None
    texts = [p.text for p in passages]
    assert article.captions[0] not in texts
    assert "重申美日同盟 地区战略再强化" not in texts
    assert passages[1].section == "重申美日同盟 地区战略再强化"
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    assert all(p.id == f"{article.id}:{p.ordinal}" for p in passages)
    # every passage is text the reader sees in the article, unchanged
    for p in passages:
        assert any(p.text in para.text for para in article.paragraphs)


def test_every_small_is_a_caption_and_none_is_a_passage() -> None:
    body = (
        "<div><small>首张图片说明文字。</small></div><p>第一段正文，讲的是一件事情。</p>"
        '<div class="contentImage"><small>文中第二张图片的说明。</small></div>'
        "<p>第二段正文，讲的是另一件事情。</p>"
    )
    article = parse_article(seedfile.render("t", "https://x.test/a", 1_700_000_000_000, body))
    assert article.captions == ("首张图片说明文字。", "文中第二张图片的说明。")
    assert [p.text for p in passages_of(article)] == [
        "第一段正文，讲的是一件事情。",
        "第二段正文，讲的是另一件事情。",
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("获取更多RSS：", "label"),
        ("https://feedx.net", "link"),
        ("《时事大家谈》YouTube播放列表：http://bit.ly/2DbDt7Q", "link"),
        ("请看推文 https://t.co/abc123", "link"),
        ("==========", "separator"),
        ("* * *", "separator"),
        ("（本文依据了路透社的报道）", "note"),
        ("（完）", "note"),
        ("(美国之音记者李逸华对本报道亦有贡献。)", "note"),
        ("美国国务院发言人普赖斯说：", None),
        ("详情请见 https://www.state.gov 上周发布的年度人权报告，其中列出了多个国家的情况。", None),
        (
            "（法新社）美国总统拜登周二在白宫宣布了新的经济刺激计划，包括两万亿美元的基础设施投资。",
            None,
        ),
    ],
)
def test_boilerplate_is_recognised_by_kind(text: str, kind: str | None) -> None:
    assert boilerplate(text) == kind


def test_the_archivers_footer_and_link_lines_are_not_passages() -> None:
    paragraphs = [
        "这是文章的第一段正文，内容相当完整。",
        "《时事大家谈》YouTube播放列表：http://bit.ly/2DbDt7Q",
        "这是文章的第二段正文，内容同样完整。",
        "获取更多RSS：",
        "https://feedx.net",
        "https://feedx.xyz",
    ]
    passages = passages_of(parse_article(seed_file("t", "https://x.test/a", paragraphs)))
    assert [p.text for p in passages] == [paragraphs[0], paragraphs[2]]


def test_bold_lines_between_breaks_and_short_unpunctuated_lines_are_headings() -> None:
    body = (
        "<p>导语这一段是正常的新闻正文，交代了事情的来龙去脉。</p>"
        "<br><strong>疫情冲击经济</strong><br>第一部分的正文很长，讲述疫情对经济造成的影响。<br>"
        "<p>抗议持续升温</p><p>第二部分的正文也很长，讲述各地抗议活动的最新进展，以及警方的回应。</p>"
    )
    article = parse_article(seedfile.render("t", "https://x.test/a", 1_700_000_000_000, body))
    assert [(p.section, p.text[:5]) for p in passages_of(article)] == [
        (None, "导语这一段"),
        ("疫情冲击经济", "第一部分的"),
        ("抗议持续升温", "第二部分的"),
    ]


def test_long_paragraph_split_at_sentence_ends() -> None:
    sentence = "美日两国领导人在白宫举行会谈，讨论了防卫与贸易等多项议题。"
    text = sentence * 30
    pieces = split_long(text)
    assert len(pieces) > 1
    assert "".join(pieces) == text
    assert all(len(p) <= PASSAGE_MAX_CHARS for p in pieces)
    assert all(p.endswith("。") for p in pieces)


def test_run_on_sentence_is_cut_at_commas() -> None:
    text = "，".join(["这是一个没有句号的很长的分句"] * 60)
    pieces = split_long(text)
    assert "".join(pieces) == text
    assert all(len(p) <= PASSAGE_MAX_CHARS for p in pieces)


def test_tiny_fragments_merge_with_a_neighbour() -> None:
    text = seed_file(
        "t",
        "https://x.test/a",
        ["（完）", "这是正常长度的一段正文内容。", "图为。", "另一段正常长度的正文。"],
    )
    passages = passages_of(parse_article(text))
    assert [p.text for p in passages] == [
        "这是正常长度的一段正文内容。\n图为。",
        "另一段正常长度的正文。",
    ]


def test_a_passage_quoting_someone_it_does_not_name_gets_the_words_that_name_them() -> None:
    paragraphs = [
        "会谈在白宫举行。",
        "华盛顿哈德逊研究所研究员长尾贤认为，会谈确认了防卫合作。他表示，美方没有施压。",
        "他说：“日本若内阁稳定，美方就可能要求增加防卫支出。”",
        "“这只会助长分裂，”她说。",
        "我们说，这是一个开始。",
    ]
    passages = [Passage(f"a:{i}", i, text) for i, text in enumerate(paragraphs)]
    # the nearest earlier sentence in which someone named speaks, up to the verb; the
    # sentence after it names nobody (他表示), so it is passed over
    assert speaker(passages, 2) == "华盛顿哈德逊研究所研究员长尾贤认为"
    assert speaker(passages, 3) == "华盛顿哈德逊研究所研究员长尾贤认为"  # a bare quote too
    assert speaker(passages, 1) is None  # it names its speaker itself
    assert speaker(passages, 4) is None and speaker(passages, 0) is None
    lonely = [Passage("b:0", 0, "他说：“没有上文。”")]
    assert speaker(lonely, 0) is None


def test_a_short_quote_is_a_passage_not_a_heading() -> None:
    """A line of someone's words ending in a closing quote ends a sentence: before it was
    read as a heading and dropped (克林顿说：“我将忠实地执行美国总统的职务……”)."""
    paragraphs = (
        Paragraph("在整个美国历史上，新总统的就职呈现了美国民主的独特品质。", None),
        Paragraph("克林顿说：“我将忠实地执行美国总统的职务……”", None),
        Paragraph(
            "通常从一个政党转移到另一个政党，即使经过势均力敌而又艰辛的竞选，权力也和平交接。", None
        ),
    )
    article = parse_article(seed_file("就职典礼", "https://x.test/a", ["占位"]))
    texts = [p.text for p in passages_of(replace(article, paragraphs=paragraphs))]
    assert texts == [p.text for p in paragraphs]
