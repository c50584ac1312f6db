"""The analyzer: one pipeline for passages and queries, robust to script and spelling."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import jieba
import numpy as np
import pytest

from retrieval.articles import passages_of, read_article
from retrieval.question.analysis import Analyzer, bigram_code, bigram_strings, written_in
from retrieval.text import merge_spans
from tests.support.seeds import SEED


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.default()


def test_traditional_and_simplified_give_the_same_terms(analyzer: Analyzer) -> None:
    assert analyzer.terms("美國與日本的軍事同盟關係") == analyzer.terms("美国与日本的军事同盟关系")


def test_full_width_letters_and_digits_are_folded(analyzer: Analyzer) -> None:
    assert analyzer.terms("ＬＮＧ出口２０２５年") == analyzer.terms("LNG出口2025年")
    assert "lng" in analyzer.terms("ＬＮＧ")
    assert "2025" in analyzer.terms("２０２５年")


def test_regional_name_variants_map_to_one_form(analyzer: Analyzer) -> None:
    assert "特朗普" in analyzer.terms("川普與石破茂會談")
    assert "蓬佩奥" in analyzer.terms("美國國務卿蓬佩奧表示")
    assert "蓬佩奥" in analyzer.terms("美国国务卿蓬佩奥表示")
    assert "朝鲜" in analyzer.terms("北韓發射飛彈")


def test_english_surnames_meet_their_chinese_names(analyzer: Analyzer) -> None:
    assert "特朗普" in analyzer.query_terms("What did Trump and Ishiba agree?")
    assert "石破茂" in analyzer.query_terms("What did Trump and Ishiba agree?")


def test_alias_does_not_fire_inside_other_words(analyzer: Analyzer) -> None:
    # 四川普通话 contains 川普 but is 四川 + 普通话
    assert "特朗普" not in analyzer.terms("他说一口四川普通话")


def test_operator_alias_file_extends_the_table(tmp_path: Path) -> None:
    extra = tmp_path / "aliases.tsv"
    extra.write_text("# ours\n小英\t蔡英文\n", encoding="utf-8")
    extended = Analyzer.default(extra)
    assert "蔡英文" in extended.terms("小英总统说")
    assert extended.fingerprint != Analyzer.default().fingerprint


def test_malformed_alias_line_is_named(tmp_path: Path) -> None:
    extra = tmp_path / "aliases.tsv"
    extra.write_text("小英 蔡英文 多余\n", encoding="utf-8")
    with pytest.raises(ValueError, match="alias line 1"):
        Analyzer.default(extra)


def test_english_words_are_found_case_insensitively(analyzer: Analyzer) -> None:
    terms = analyzer.terms("华盛顿哈德逊研究所(Hudson Institute)研究员")
    assert {"hudson", "institute"} <= set(terms)
    assert analyzer.query_terms("HUDSON institute") == ["hudson", "institute"]


def test_stopwords_and_punctuation_never_become_terms(analyzer: Analyzer) -> None:
    terms = analyzer.query_terms("石破茂是什么时候访问美国的？？！")
    for noise in ("是", "什么", "的", "？", "！", "什么时候"):
        assert noise not in terms
    assert {"石破茂", "访问", "美国"} <= set(terms)
    assert analyzer.query_terms("的了吗？") == []
    assert analyzer.query_terms("😀🎉!!!") == []


def test_chinese_runs_add_character_bigrams(analyzer: Analyzer) -> None:
    terms = analyzer.terms("德地秀士认为")
    assert {"德地", "地秀", "秀士", "认为"} <= set(terms)


def test_glossed_name_stays_one_token(analyzer: Analyzer) -> None:
    text = "和平安全保障研究所理事长德地秀士(Hideshi Tokuchi)认为，合作意义重大。"
    names = analyzer.glossed_names(analyzer.normalize(text))
    assert names == {"德地秀士": "hideshi tokuchi"}
    glossed = analyzer.glossed_names(analyzer.normalize("美国总统唐纳德·特朗普(Donald Trump)"))
    assert glossed == {"唐纳德·特朗普": "donald trump"}
    assert "德地秀士" in analyzer.terms("德地秀士表示", names)
    assert "德地秀士" in analyzer.query_terms("德地秀士是谁", names)


def test_an_english_gloss_in_a_query_brings_the_chinese_name(analyzer: Analyzer) -> None:
    glosses = {"hideshi tokuchi": "德地秀士"}
    terms = analyzer.query_terms("What does Hideshi Tokuchi think?", {"德地秀士"}, glosses)
    assert {"hideshi", "tokuchi", "德地秀士", "德地", "秀士"} <= set(terms)
    assert "德地秀士" not in analyzer.query_terms("Hideshi", {"德地秀士"}, glosses)


def test_same_pipeline_for_passages_and_queries(analyzer: Analyzer) -> None:
    text = "石破茂向美方作出一系列积极承诺"
    assert analyzer.query_terms(text) == analyzer.terms(text)


def test_texts_analysed_together_have_each_text_s_terms(analyzer: Analyzer) -> None:
    """An index analyses an article's texts in one go; each keeps exactly its own terms."""
    texts = [
        "美国与日本的军事同盟关系",
        "",
        "lng 2025 only latin",
        "为什么台风登陆",  # a question word ends a run: no 么台
        "理事长田中一郎说，田中一郎认为",  # a glossed name, counted where it occurs
        "㐀㐁 and 﨎﨏",  # the first and the last blocks of characters a run may hold
        "的是了吗",  # function characters only: bigrams that say nothing
    ]
    together = analyzer.texts_terms(texts, ["田中一郎"])
    for i, text in enumerate(texts):
        alone = analyzer.texts_terms([text], ["田中一郎"]).of(0)
        assert Counter(together.of(i)) == Counter(alone), text
    assert Counter(together.of(4))["田中一郎"] == 2
    assert "么台" not in together.of(3) and {"台风", "登陆", "风登"} <= set(together.of(3))
    assert {"㐀㐁", "﨎﨏"} <= set(together.of(5))
    assert not {"的是", "是了", "了吗"} & set(together.of(6))


def test_a_bigram_s_code_stands_for_it_and_only_for_it() -> None:
    terms = ["美国", "㐀㐁", "﨎﨏", "鿿一", "豈更"]
    codes = np.array([bigram_code(t) for t in terms])
    assert bigram_strings(codes) == terms
    assert len(set(codes.tolist())) == len(terms)
    assert [bigram_code(t) for t in ["美", "美国人", "ab", "美a", ""]] == [None] * 5


def test_rjieba_cuts_exactly_like_jieba_with_hmm_off(analyzer: Analyzer) -> None:
    """rjieba is used for speed; jieba is the reference it must match."""
    article = read_article(SEED, SEED.name)
    plain = Analyzer()  # no aliases: compare the dictionaries alone
    for passage in passages_of(article):
        text = plain.normalize(passage.text)
        assert plain._segmenter.cut(text, False) == jieba.lcut(text, HMM=False)


def test_highlight_spans_point_at_the_original_text(analyzer: Analyzer) -> None:
    text = "美國總統川普與日本首相石破茂在ＬＮＧ議題上達成共識"
    terms = analyzer.query_terms("特朗普 石破茂 lng")
    marked = [text[a:b] for a, b in analyzer.highlight_spans(terms, text)]
    assert "川普" in marked
    assert "石破茂" in marked
    assert "ＬＮＧ" in marked
    assert all(re.fullmatch(r"\S+", m) for m in marked)


def test_merge_spans_sorts_joins_touching_spans_and_clips_to_the_text() -> None:
    assert merge_spans([(5, 7), (0, 2), (2, 3), (6, 9)]) == ((0, 3), (5, 9))
    # Clipped to a 6-character text: what falls outside, or is left empty, is dropped.
    assert merge_spans([(-2, 1), (4, 4), (5, 20), (8, 9)], length=6) == ((0, 1), (5, 6))


def test_a_text_is_written_in_the_script_most_of_it_is(analyzer: Analyzer) -> None:
    def script(text: str) -> str | None:
        return written_in(analyzer.normalize(text))

    assert script("What did Ishiba promise Trump?") == "latin"
    assert script("石破茂 summit tariffs") == "han"  # three characters against two words
    assert script("Ortagus 發推怎麼反駁習近平講的朝鮮戰爭") == "han"
    assert script("２０２４年") == "han" and script("🙂🙂 2024") is None
