"""How questions are read and ranked: answer-type cues, follow-ups, article evidence, and
whether the archive answers them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from retrieval import IndexKeeper, Library
from retrieval.question.analysis import Analyzer
from retrieval.question.cues import (
    NUMBER,
    OVERVIEW,
    SPEECH,
    TIME,
    AskedCues,
    CueGains,
    asked_cues,
    boosts,
    passage_cues,
)
from retrieval.question.ranker import Ranker, relative
from retrieval.question.ranking import (
    SHIPPED,
    RankingSettings,
    Verdict,
    characters_held,
    combine,
    judge,
    leans_on_context,
    read_question,
    words_found,
)
from tests.support.seeds import seed_file, write_articles


@pytest.fixture(scope="module")
def analyzer() -> Analyzer:
    return Analyzer.default()


# --- cues --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("伊朗核专家这十年被暗杀了几个", NUMBER),
        ("川普什么时候上任的", TIME),
        ("德地秀士怎么看联合声明", SPEECH),
        ("这次大选有多少人投票", NUMBER),
        ("石破茂去了白宫", 0),
        ("石破茂和特朗普谈了什么", OVERVIEW),
        ("唐山村民中毒是怎么回事", OVERVIEW),
        ("what happened at the summit?", OVERVIEW),  # normalised: lower case
        ("什么情况下可以开战", 0),  # under what circumstances: not what the story is
    ],
)
def test_a_question_asks_for_a_kind_of_answer(question: str, kinds: int) -> None:
    assert asked_cues(question).kinds == kinds


def test_a_passage_shows_kinds_of_answer_and_the_units_of_its_numbers() -> None:
    passage = passage_cues("他说：“去年12月，已有300人死亡。”")
    people = asked_cues("死了多少人")
    assert passage & NUMBER and passage & TIME and passage & SPEECH
    assert people.units and np.uint64(passage) & np.uint64(people.units)
    assert not np.uint64(passage) & np.uint64(asked_cues("花了多少钱").units)
    assert np.uint64(passage_cues("耗资3万美元")) & np.uint64(asked_cues("花了多少钱").units)
    assert passage_cues("两国领导人在白宫会面") == 0


def test_a_passage_showing_the_asked_kind_of_answer_gains() -> None:
    cues = np.array(
        [passage_cues("共有3万人参加"), passage_cues("很多人参加"), passage_cues("他说很多人参加")],
        dtype=np.uint64,
    )
    factors = boosts(asked_cues("有多少人参加"), cues, CueGains())
    assert factors[0] > factors[1] == 1.0
    assert boosts(AskedCues(), cues, CueGains()).tolist() == [1.0, 1.0, 1.0]
    assert boosts(asked_cues("他怎么说"), cues, CueGains())[2] > 1.0


# --- follow-ups --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "leans"),
    [
        ("那以色列有回应吗", True),
        ("他老婆怎么说", True),
        ("后来呢", True),
        ("美国呢", True),
        ("这次抗议持续了多久", True),
        ("伊朗核科学家是谁杀的", False),
        ("2024年美国大选谁赢了", False),
    ],
)
def test_a_follow_up_is_recognised_by_how_it_leans_on_what_came_before(
    question: str, leans: bool
) -> None:
    assert leans_on_context(question) is leans


def test_context_weighs_on_the_article_more_than_on_the_passage(analyzer: Analyzer) -> None:
    vocab = {t: i for i, t in enumerate(["以色列", "回应", "伊朗", "科学家", "核"])}

    def terms(text: str) -> list[str]:
        return [t for t in analyzer.terms(text) if t in vocab]

    followup = read_question(analyzer, "那以色列有回应吗", ["伊朗核科学家是谁"], terms, vocab)
    assert followup.read_with == ("伊朗核科学家是谁",)
    iran = vocab["伊朗"]
    assert followup.article_weights[iran] > followup.passage_weights[iran] > 0
    assert followup.passage_weights[vocab["以色列"]] == 1
    standalone = read_question(analyzer, "以色列有回应吗", ["伊朗核科学家是谁"], terms, vocab)
    assert standalone.read_with == ()
    assert iran not in standalone.passage_weights and iran not in standalone.article_weights


# --- knowing when it does not know -------------------------------------------------------------


def test_missing_words_are_the_questions_own_words_as_written(analyzer: Analyzer) -> None:
    article = analyzer.normalize("2020年美国大选，拜登击败特朗普赢得选举。")
    present, missing = words_found(analyzer, "2024年美國大選誰贏了", article)
    assert missing == ["2024"]
    assert any("美國大選" in words for words in present)  # as written: traditional
    present, missing = words_found(analyzer, "ChatGPT是哪家公司做的", article)
    assert missing == ["ChatGPT", "公司"]


def test_judgement_wants_the_rare_words_and_every_number(analyzer: Analyzer) -> None:
    article = analyzer.normalize("2020年美国大选，拜登击败特朗普赢得选举。")

    def idf(word: str) -> float:
        return {"美国": 1.0, "大选": 2.0}.get(analyzer.normalize(word), 5.0)

    def verdict(question: str, text: str | None = article) -> Verdict:
        return judge(analyzer, question, (), text, idf, SHIPPED.judgement)

    answered = verdict("2020年美国大选谁赢了")
    assert answered.confident and answered.missing == ()
    assert answered.probability is not None and answered.probability >= SHIPPED.judgement.threshold
    assert verdict("2024年美国大选谁赢了").confident is False  # a number the article lacks
    assert verdict("纳瓦尔尼在哪个监狱").confident is False
    assert verdict("美国大选", None) == Verdict(False, ("美国", "大选"))  # no hit
    # without a judgement (for measuring), every hit is an answer
    assert judge(analyzer, "纳瓦尔尼在哪个监狱", (), article, idf, None).confident


def test_the_judgement_learned_which_kinds_of_question_the_archive_lacks(
    analyzer: Analyzer,
) -> None:
    """The article holds the words of each question but 后来 or 最后: asking what happened
    later is what an archive often lacks, however well it names the people (a rule of
    coverage alone answered these); asking what someone said is what it holds."""
    article = analyzer.normalize("孟晚舟在温哥华被捕后，引渡听证会开庭，中国外交部批评加拿大。")

    def verdict(question: str) -> Verdict:
        return judge(analyzer, question, (), article, lambda _: 1.0, SHIPPED.judgement)

    for later in ("孟晚舟后来被引渡了吗", "孟晚舟的引渡听证会最后怎么判的"):
        assert verdict(later).evidence.coverage >= 0.6
        assert verdict(later).confident is False, later
        assert verdict(later).missing == ()  # 后来 and 最后 are not what it is about
    # the subject's words are still named
    assert verdict("孟晚舟后来被引渡到美国了吗").missing == ("美国",)
    for said in ("中国外交部怎么批评加拿大", "孟晚舟引渡听证会开庭 中国怎么说"):
        assert verdict(said).missing == ()
        assert verdict(said).confident is True, said


def test_a_passage_holds_a_share_of_the_questions_distinct_characters() -> None:
    question = frozenset("死伤多少")
    assert characters_held(question, "造成一百人死亡，四千人受伤。") == 0.5
    assert characters_held(question, "爆炸后多国援助，多方表示") == 0.25
    assert characters_held(question, "") == 0.0
    assert characters_held(frozenset(), "造成一百人死亡") == 0.0  # 🙂🙂 holds none


def test_the_ranker_weighs_score_and_cosine_against_the_best_candidates() -> None:
    ranker = Ranker(with_meaning=(1.0, 1.0, 10.0), by_words=(1.0, 1.0))
    # score, share of the question's characters held, cosine
    features = np.array([[10.0, 0.25, 0.80], [9.0, 0.5, 0.85], [8.0, 0.5, 0.95]])
    # read as: scores 0, .1, .2 of the best one below it; cosines .15, .10, 0 below the best
    assert relative(features) == pytest.approx(
        np.array([[0.0, 0.25, -0.15], [-0.1, 0.5, -0.1], [-0.2, 0.5, 0.0]])
    )
    # in a library of one article every score is negative: still measured below the best,
    # as a share of the largest size (not of the best's, which may be near 0)
    negative = relative(np.array([[-8.0, 0.5, 0.9], [-0.1, 0.5, 0.9], [-4.0, 0.5, 0.9]]))
    assert negative[:, 0] == pytest.approx([-7.9 / 8, 0.0, -3.9 / 8])
    ranked = ranker.ranked([10.0, 9.0, 8.0], features, floor=3.0)
    assert [i for i, _ in ranked] == [2, 1, 0]  # values -1.25, -.6, .3
    # new scores: the floor plus each value above the lowest, in the spread of the scores
    spread = np.std([10.0, 9.0, 8.0])
    assert dict(ranked) == pytest.approx({0: 3.0, 1: 3.0 + 0.65 * spread, 2: 3.0 + 1.55 * spread})
    # a question's scale does not matter, a gap does: a fourfold lead by terms is kept
    # against a small lead in meaning (z-scores among few candidates lost it)
    assert [i for i, _ in ranker.ranked([100.0, 90.0, 80.0], features * [10, 1, 1], 0.0)] == [
        2,
        1,
        0,
    ]
    lead = np.array([[20.0, 0.0, 0.86], [5.0, 0.33, 0.87], [5.0, 0.33, 0.85]])
    assert ranker.ranked([20.0, 5.0, 5.0], lead, 0.0)[0][0] == 0
    # without a model of meaning: the second set of weights, over score and characters
    by_words = features[:, :2]  # values .25, .4, .3
    assert [i for i, _ in ranker.ranked([10.0, 9.0, 8.0], by_words, floor=0.0)] == [1, 2, 0]
    by_score = Ranker(with_meaning=(0.0, 0.0, 1.0), by_words=(1.0, 0.0))
    assert [i for i, _ in by_score.ranked([10.0, 9.0, 8.0], by_words, 0.0)] == [0, 1, 2]


def test_the_ranker_keeps_the_order_where_nothing_tells_candidates_apart() -> None:
    ranker = Ranker(with_meaning=(1.0, 1.0, 1.0), by_words=(1.0, 1.0))
    same = np.array([[5.0, 0.5, 0.5], [5.0, 0.5, 0.5], [5.0, 0.5, 0.5]])
    assert ranker.ranked([5.0, 5.0, 5.0], same, floor=5.0) == [(0, 5.0), (1, 5.0), (2, 5.0)]
    assert ranker.ranked([], np.zeros((0, 3)), floor=0.0) == []
    # a question whose words score nothing (only the nearest by meaning) is ranked by meaning
    nothing = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.9]])
    assert [i for i, _ in ranker.ranked([0.0, 0.0], nothing, 0.0)] == [1, 0]
    with pytest.raises(ValueError, match="4 features"):
        ranker.values(np.zeros((2, 4)))


def test_a_ranker_is_stored_as_json_and_known_by_its_weights() -> None:
    ranker = Ranker(with_meaning=(0.5, 0.7, 1.2), by_words=(0.7, 0.9), about={"trained_on": "x"})
    again = Ranker.from_json(ranker.to_json())
    assert again == ranker and again.about == {"trained_on": "x"}
    assert again.identity == ranker.identity
    assert Ranker((0.5, 0.7, 1.3), (0.7, 0.9)).identity != ranker.identity
    # what it was trained on is no part of what it is
    assert Ranker((0.5, 0.7, 1.2), (0.7, 0.9), about={"other": 1}).identity == ranker.identity
    shipped = SHIPPED.ranker
    assert shipped is not None and shipped.about["command"] == "python -m benchmarks.ranker"


# --- the ranking as a whole --------------------------------------------------------------------


@pytest.fixture
def keeper(seeds_dir: Path, tmp_path: Path) -> IndexKeeper:
    articles = {
        "iran.txt": (
            "伊朗核科学家遇刺身亡 鲁哈尼指责以色列",
            [
                "伊朗顶尖核科学家法赫里扎德周五在德黑兰以东遇刺身亡。",
                "伊朗总统鲁哈尼将法赫里扎德之死归咎于以色列。",
                "以色列对此尚未发表任何评论。",
                "法赫里扎德是过去十年中被暗杀的第五位伊朗核专家。",
            ],
        ),
        "gaza.txt": (
            "以色列回应停火提议",
            ["以色列政府周日回应了埃及提出的加沙停火方案，表示将认真研究。"],
        ),
        "budget.txt": (
            "国会通过年度预算",
            ["国会周四通过了新的年度预算，总额为1.4万亿美元。", "议员们说预算将用于基础设施。"],
        ),
    }
    for name, (title, paragraphs) in articles.items():
        url = f"https://news.example/{name}"
        (seeds_dir / name).write_text(seed_file(title, url, paragraphs), encoding="utf-8")
    write_articles(seeds_dir, 0, 30)  # a library's worth of other news, for realistic idf
    return IndexKeeper.open(seeds_dir, tmp_path / "index")


@pytest.fixture
def library(keeper: IndexKeeper) -> Library:
    return keeper.library


def test_a_follow_up_finds_its_answer_in_the_earlier_questions_article(library: Library) -> None:
    result = library.search("那以色列有回应吗", k=1, context=["伊朗核科学家是谁杀的"])
    assert result.read_with == "伊朗核科学家是谁杀的"
    assert result.hits[0].article.title.startswith("伊朗核科学家")
    alone = library.search("那以色列有回应吗", k=1)
    assert alone.read_with is None
    assert alone.hits[0].article.title == "以色列回应停火提议"


def test_an_overview_question_gets_the_articles_lead(
    keeper: IndexKeeper, seeds_dir: Path, tmp_path: Path
) -> None:
    """Issue 19: 石破和特朗普见面谈了什么 did not reach the paragraph that says what the meeting
    was; a news article's first paragraph says what the story is."""
    lead = "伊朗顶尖核科学家法赫里扎德周五在德黑兰以东遇刺身亡。"
    assert keeper.library.search("法赫里扎德是怎么回事", k=1).hits[0].passage.text == lead
    assert keeper.library.search("法赫里扎德说了什么", k=1).hits[0].passage.text != lead
    without = RankingSettings(cues=CueGains(overview=0.0))
    other = IndexKeeper.open(seeds_dir, tmp_path / "index", ranking=without).library
    assert other.search("法赫里扎德是怎么回事", k=1).hits[0].passage.text != lead


def test_a_number_question_prefers_the_passage_with_the_number(library: Library) -> None:
    hit = library.search("伊朗这十年有几个核专家被暗杀", k=1).hits[0]
    assert hit.passage.text.startswith("法赫里扎德是过去十年中被暗杀的第五位")


def test_passage_scores_hold_rank_bm25s_bm25okapi_exactly(keeper: IndexKeeper) -> None:
    library = keeper.library
    reference = BM25Okapi(list(keeper.indexed_terms()))
    for query in ["伊朗核科学家", "国会预算 基础设施", "以色列 评论", "石破茂 特朗普 防卫"]:
        expected = reference.get_scores(library.query_terms(query))
        ranked = library.rank(query, k=50)
        assert ranked, query
        for passage in ranked:
            position = keeper.passage_position(passage)
            assert passage.bm25 == pytest.approx(expected[position], abs=1e-9)


def test_confidence_and_missing_words_come_with_every_search(library: Library) -> None:
    answered = library.search("伊朗核科学家在哪里遇刺", k=3)
    assert answered.confident and answered.missing == ()
    unanswered = library.search("2023年日本首相是谁", k=3)
    assert not unanswered.confident
    assert "2023" in unanswered.missing
    nothing = library.search("完全无关的词语组合xyz", k=3)
    assert nothing.hits == () and not nothing.confident


def test_a_follow_up_about_something_the_article_lacks_is_not_confident(
    library: Library,
) -> None:
    on_topic = library.search("那以色列有回应吗", k=1, context=["伊朗核科学家是谁杀的"])
    assert on_topic.confident
    off_topic = library.search("那高铁呢", k=1, context=["伊朗核科学家是谁杀的"])
    assert off_topic.read_with == "伊朗核科学家是谁杀的"
    assert not off_topic.confident and off_topic.missing == ("高铁",)
    # pointing back with a pronoun, it asks more of the same subject in its own words
    more = library.search("那他们怎么反驳的", k=1, context=["伊朗核科学家是谁杀的"])
    assert more.read_with == "伊朗核科学家是谁杀的" and more.missing == ("反驳",)
    assert more.evidence is not None and not more.evidence.off_topic
    # 其他 (others) is no pronoun
    others = library.search("那其他高铁呢", k=1, context=["伊朗核科学家是谁杀的"])
    assert others.evidence is not None and others.evidence.off_topic


def test_characters_the_question_shares_decide_between_close_passages(
    seeds_dir: Path, tmp_path: Path
) -> None:
    """死伤 is no term of 死亡…受伤, but its characters are the passage's."""
    paragraphs = ["贝鲁特爆炸后，多国表示将提供援助。", "贝鲁特爆炸造成一百人死亡，四千人受伤。"]
    title = "黎巴嫩首都贝鲁特港口发生大爆炸"
    (seeds_dir / "beirut.txt").write_text(
        seed_file(title, "https://news.example/beirut", paragraphs), encoding="utf-8"
    )
    write_articles(seeds_dir, 0, 30)
    keeper = IndexKeeper.open(seeds_dir, tmp_path / "index")
    library = keeper.library
    question = "贝鲁特爆炸的死伤情况"
    # by terms, the shorter passage leads; the longer holds more of the question's characters
    # (贝鲁特爆炸死伤: 7 of 10, 贝鲁特爆炸: 5), and the ranker puts it first
    hits = library.search(question, k=2).hits
    assert [h.passage.text for h in hits] == paragraphs[::-1]
    assert hits[0].score > hits[1].score  # the score shown is the one that ranked
    assert [c.features[1] for c in library.candidates(question)[:2]] == [0.5, 0.7]
    blind = Ranker(with_meaning=(1.0, 0.0, 1.0), by_words=(1.0, 0.0))
    without = IndexKeeper.open(
        seeds_dir, tmp_path / "index", ranking=replace(SHIPPED, ranker=blind)
    ).library
    assert [h.passage.text for h in without.search(question, k=2).hits] == paragraphs


def test_a_cue_raises_a_passage_whatever_the_sign_of_its_score() -> None:
    scores = combine(np.array([-3.0, 2.0, 2.0]), np.zeros(3), np.array([1.4, 1.4, 1.0]), 1.0)
    assert scores == pytest.approx([-1.8, 2.8, 2.0])


def test_a_number_question_prefers_the_number_in_a_library_of_one_article(tmp_path: Path) -> None:
    """In a small library rank_bm25's idf of a term in most documents is negative, and so is
    every score: multiplied by the number cue (× 1.4), the passage with the number lost."""
    paragraphs = [
        "台积电宣布在美国亚利桑那州建厂，台积电表示将扩大投资。",
        "台积电在美国亚利桑那州建厂，投资约120亿美元。",
    ]
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "tsmc.txt").write_text(
        seed_file("台积电赴美建厂", "https://news.example/tsmc", paragraphs), encoding="utf-8"
    )
    library = IndexKeeper.open(seeds, tmp_path / "index").library
    ranked = library.rank("台积电在美国建厂投资多少", k=2)
    assert all(r.bm25 < 0 for r in ranked)
    assert [r.passage for r in ranked] == [1, 0]
    assert library.search("台积电在美国建厂投资多少", k=1).hits[0].passage.text == paragraphs[1]
