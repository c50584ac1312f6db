"""Followed topics: read once, matched against new articles only, by an inverted match that
finds what judging every topic against every article finds."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from retrieval import IndexKeeper, Topic
from retrieval.index.scoring import Postings, score, score_range
from retrieval.question import ranking, topics
from tests.support import REPO
from tests.support.seeds import seed_file, write_articles
from tests.test_cli import run

QUAKE = (
    "智利北部发生规模七级地震",
    "智利北部周四凌晨发生规模七级地震，当局对沿海地区发布海啸警报。",
)
WINE = ("智利葡萄酒出口创新高", "智利葡萄酒去年出口额创下新高，中国买家的订单增长近三成。")


def _write(seeds: Path, name: str, title: str, text: str, ms: int) -> None:
    url = f"https://news.example/{name}"
    (seeds / f"{name}.txt").write_text(seed_file(title, url, [text], ms=ms), encoding="utf-8")


@pytest.fixture
def keeper(seeds_dir: Path, tmp_path: Path) -> IndexKeeper:
    write_articles(seeds_dir, 1, 40)  # filler: the archive's statistics
    return IndexKeeper.open(seeds_dir, index_dir=tmp_path / "index")


def _new(keeper: IndexKeeper, *articles: tuple[str, str]) -> list[str]:
    """Add articles in one refresh; their ids."""
    before = {ref.id for ref in keeper.library.article_refs()}
    for number, (title, text) in enumerate(articles):
        _write(keeper.seeds_dir, f"new{number}", title, text, 1_900_000_000_000 + number)
    keeper.refresh()
    return [ref.id for ref in keeper.library.article_refs() if ref.id not in before]


def test_a_topic_is_read_once_and_stored_as_one_line_of_json(keeper):
    topic = keeper.library.read_topic("Trump 对日本 关税")
    line = topic.dumps()
    assert "\n" not in line and Topic.loads(line) == topic
    assert ("特朗普", "Trump") in topic.weighed_words  # an alias, as written
    assert Topic.loads(json.dumps({**json.loads(line), "format": 0})) is None
    assert Topic.loads("not json") is None
    assert keeper.library.read_topic("的 了 吗").weighed_words == []


def test_the_article_that_answers_a_topic_is_matched_with_its_best_passage(keeper):
    new = _new(keeper, QUAKE, WINE)
    library = keeper.library
    followed = [library.read_topic(t) for t in ("智利地震 海啸警报", "葡萄酒出口", "火星探测")]
    matches = library.match_topics(followed, new)
    assert [(m.topic, m.hit.article.title) for m in matches] == [(0, QUAKE[0]), (1, WINE[0])]
    assert matches[0].hit.spans  # the topic's words, highlighted as in an answer
    # only the articles given are read
    assert library.match_topics(followed, new[:0]) == []


def test_an_article_that_only_shares_a_name_with_a_topic_is_not_matched(keeper):
    new = _new(keeper, WINE)
    library = keeper.library
    assert library.match_topics([library.read_topic("智利地震 海啸警报")], new) == []


def test_the_inverted_match_finds_what_judging_every_pair_finds(keeper, seed_text):
    new = _new(keeper, QUAKE, WINE)
    library = keeper.library
    texts = [
        "智利地震",
        "石破茂 特朗普 液化天然气",
        "日本 防卫支出 GDP 2%",
        "葡萄酒 中国 订单",
        "第3篇",
        "美日同盟",
        "特朗普 关税",
        "海啸",
    ]
    followed = [library.read_topic(t) for t in texts]
    snap = library._current
    ids = new + [ref.id for ref in library.article_refs()][:20]
    normalized = [snap.normalized_text(*snap.where[i]) for i in ids]
    idf_of = library._topic_idf(snap.index, followed)
    for coverage in (0.3, 0.45, 0.75, 1.0):
        settings = replace(ranking.SHIPPED, topic_coverage=coverage)
        every = [
            (t, a)
            for t, topic in enumerate(followed)
            for a, text in enumerate(normalized)
            if (held := ranking.covered(topic.words, (), text, idf_of)).share >= coverage
            and not held.lacks_a_number
        ]
        assert sorted(topics.answered(followed, normalized, idf_of, settings)) == every
        assert every  # the comparison is not empty


def test_an_articles_passages_score_as_in_a_search_of_everything():
    rng = np.random.default_rng(7)
    n_terms, n_docs = 30, 200
    rows = [np.sort(rng.choice(n_docs, rng.integers(1, 60), replace=False)) for _ in range(n_terms)]
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    postings = Postings(
        indptr, np.concatenate(rows), rng.integers(1, 4, indptr[-1]), rng.uniform(0.5, 2, n_docs)
    )
    boosts = {3: 1.2, 7: 0.4, 11: 2.0, 29: 0.9}
    docs, scores = score(postings, boosts)
    for lo, hi in ((0, 10), (57, 93), (190, 200)):
        inside = (docs >= lo) & (docs < hi)
        got_docs, got = score_range(postings, boosts, lo, hi)
        assert got_docs.tolist() == docs[inside].tolist()
        assert got.tolist() == scores[inside].tolist()  # to the last bit


def test_the_cli_shows_what_a_topic_would_have_matched_lately(seeds_dir, tmp_path):
    day = 86_400_000
    _write(seeds_dir, "quake", *QUAKE, ms=1_900_000_000_000)
    _write(
        seeds_dir,
        "old-quake",
        "智利地震",
        "智利北部地震，沿海发布海啸警报。",
        1_900_000_000_000 - 30 * day,
    )
    index = ["--seeds", str(seeds_dir), "--index-dir", str(tmp_path / "index"), "-q"]
    shown = run("follow", *index, "--since", "7d", "智利地震 海啸警报")
    assert shown.returncode == 0, shown.stderr
    assert QUAKE[0] in shown.stdout and "old-quake" not in shown.stdout
    assert shown.stdout.count("news.example") == 1
    recent = run("follow", *index, "--since", "60d", "--json", stdin="智利地震\n")
    [line] = [json.loads(line) for line in recent.stdout.splitlines()]
    assert line["topic"] == "智利地震" and len(line["hits"]) == 2
    none = run("follow", *index, "火星探测")
    assert "no passage of the last 7 days answers it" in none.stdout
    for bad, message in (("--since", "a week"), ("--since", "0d")):
        wrong = run("follow", *index, bad, message, "智利")
        assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
        assert wrong.stderr.startswith("error: --since")
    assert (REPO / "retrieval" / "cli.py").read_text(encoding="utf-8").count("def _follow") == 1
