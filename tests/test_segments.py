"""An index kept up to date segment by segment answers exactly as a fresh build of the same
files: after additions, deletions, replacements and merges, and after a kill -9 at any moment."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rank_bm25 import BM25Okapi

from retrieval import IndexKeeper, Library
from retrieval.index import merging, store
from tests.support import REPO
from tests.support.seeds import seed_file, write_articles

QUERIES = [
    "德地秀士怎么看联合声明",
    "Ichiro Tanaka",
    "田中一郎的看法",
    "石破茂 特朗普 防卫预算",
    "共同 美日同盟",  # 共同 is in most passages: a negative idf, floored
    "一样的报道 台风",  # identical articles: ties
    "液化天然气 LNG",
    "不存在的词语组合",
]


def write(seeds: Path, name: str, title: str, paragraphs: list[str], day: int) -> None:
    url = f"https://news.example/{name}.html"
    ms = 1_700_000_000_000 + day * 86_400_000
    (seeds / f"{name}.txt").write_text(seed_file(title, url, paragraphs, ms=ms), "utf-8")


def corpus(seeds: Path) -> None:
    """Articles with glossed names, a word in most passages, and identical twins."""
    write_articles(seeds, 0, 12)
    for i in range(6):
        write(seeds, f"common{i}", f"共同{i}", [f"共同的话题第{i}段。", "共同 美日同盟 共同"], i)
    for twin in ("twin-a", "twin-b"):  # the same text, the same day: a tie only ids break
        write(seeds, twin, "一样的报道", ["一样的报道：台风登陆。", "一样的报道：停电。"], 3)
    write(
        seeds,
        "gloss",
        "专家谈同盟",
        ["理事长田中一郎(Ichiro Tanaka)认为联合声明意义重大。", "田中一郎说同盟更稳固。"],
        5,
    )


def answers(library: Library) -> list[list[tuple[str, float]]]:
    return [
        [(h.passage.id, round(h.score, 9)) for h in library.search(q, k=20).hits] for q in QUERIES
    ]


def assert_same_as_a_fresh_build(keeper: IndexKeeper, seeds: Path, tmp_path: Path) -> None:
    library = keeper.library
    fresh = IndexKeeper.open(seeds, tmp_path / f"fresh-{time.monotonic_ns()}").library
    assert answers(library) == answers(fresh)
    # the same, whatever segments hold it
    assert replace(library.stats(), segments=0) == replace(fresh.stats(), segments=0)
    assert [r.id for r in library.article_refs()] == [r.id for r in fresh.article_refs()]
    reference = BM25Okapi(list(keeper.indexed_terms()))
    for query in QUERIES:
        expected = reference.get_scores(library.query_terms(query))
        for ranked in library.rank(query, k=20):
            position = keeper.passage_position(ranked)
            assert ranked.bm25 == pytest.approx(expected[position], abs=1e-9), query


@pytest.fixture
def small_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    """A merge policy that merges the small segments of a small test index."""
    monkeypatch.setattr(merging, "MERGE_FACTOR", 2)
    monkeypatch.setattr(merging, "FLOOR_PASSAGES", 1_000_000)


def test_additions_deletions_replacements_and_merges_equal_a_fresh_build(
    seeds_dir: Path, tmp_path: Path, small_merges: None
) -> None:
    corpus(seeds_dir)
    keeper = IndexKeeper.open(seeds_dir, tmp_path / "index")
    library = keeper.library
    assert library.stats().segments == 1
    write_articles(seeds_dir, 100, 3)  # added
    assert keeper.refresh() and library.stats().segments == 2
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)

    (seeds_dir / "common2.txt").unlink()  # deleted
    (seeds_dir / "00101.txt").unlink()
    write(seeds_dir, "common3", "共同3", ["替换后的共同内容。"], 9)  # replaced
    assert keeper.refresh()
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)

    (seeds_dir / "gloss.txt").unlink()  # its glossed name goes with it
    assert keeper.refresh()
    assert library.search("Ichiro Tanaka").hits == ()
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)

    before = library.stats().segments
    assert keeper.merge() >= 1 and library.stats().segments < before
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)
    reopened = IndexKeeper.open(seeds_dir, tmp_path / "index").library
    assert answers(reopened) == answers(library)


def test_an_older_copy_answers_again_when_the_newest_is_deleted(
    seeds_dir: Path, tmp_path: Path
) -> None:
    write(seeds_dir, "old-copy", "旧稿", ["初版的报道内容。"], 1)
    keeper = IndexKeeper.open(seeds_dir, tmp_path / "index")
    library = keeper.library
    (seeds_dir / "new-copy.txt").write_text(
        seed_file(
            "新稿",
            "https://news.example/old-copy.html",
            ["更新后的报道内容。"],
            ms=1_800_000_000_000,
        ),
        encoding="utf-8",
    )
    keeper.refresh()
    assert library.search("初版").hits == ()
    (seeds_dir / "new-copy.txt").unlink()
    keeper.refresh()
    assert library.search("初版").hits[0].article.title == "旧稿"
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)


def test_merges_reclaim_deleted_passages_and_their_vocabulary(
    seeds_dir: Path, tmp_path: Path, small_merges: None
) -> None:
    corpus(seeds_dir)
    keeper = IndexKeeper.open(seeds_dir, tmp_path / "index")
    write(seeds_dir, "rare", "罕见", ["一个只在这里出现的词：蓝鲸四十二号。"], 7)
    keeper.refresh()
    write_articles(seeds_dir, 200, 2)
    keeper.refresh()
    (seeds_dir / "rare.txt").unlink()
    keeper.refresh()
    keeper.merge()
    state = store.load(tmp_path / "index")
    assert state is not None
    for segment in state.segments:
        assert not segment.deleted.any(), "merged segments hold no deleted article"
        assert "蓝鲸" not in segment.vocab
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)


def test_a_merge_carries_over_what_was_deleted_while_it_ran(
    seeds_dir: Path, tmp_path: Path, small_merges: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus(seeds_dir)
    keeper = IndexKeeper.open(seeds_dir, tmp_path / "index")
    library = keeper.library
    write_articles(seeds_dir, 300, 2)
    keeper.refresh()
    real_merged = merging.build.merged

    def merged_while_a_refresh_deletes(sources):  # type: ignore[no-untyped-def]
        draft = real_merged(sources)
        (seeds_dir / "00300.txt").unlink()
        (seeds_dir / "common0.txt").unlink()
        other = IndexKeeper.open(seeds_dir, tmp_path / "index").library  # another process, say
        assert other.stats().articles == library.stats().articles - 2
        return draft

    monkeypatch.setattr(merging.build, "merged", merged_while_a_refresh_deletes)
    assert keeper.merge() >= 1
    monkeypatch.undo()
    assert all(h.article.title != "测试文章300" for h in library.search("测试文章300", k=20).hits)
    assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)


# --- kill -9 ---------------------------------------------------------------------------------

CHURN = """
import random, sys
from pathlib import Path
from retrieval import IndexKeeper
from retrieval.index import merging
from tests.support.seeds import write_articles

merging.MERGE_FACTOR, merging.FLOOR_PASSAGES = 2, 1_000_000
seeds, index_dir, seed = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
keeper = IndexKeeper.open(seeds, index_dir)
library = keeper.library
print("ready", flush=True)
for step in range(1000):
    write_articles(seeds, 1000 + seed * 1000 + step, 1)
    existing = sorted(seeds.glob("0*.txt"))
    if len(existing) > 5 and rng.random() < 0.4:
        rng.choice(existing).unlink()
    keeper.refresh()
    if step % 2:
        keeper.merge()
"""


def test_kill_9_at_any_moment_of_saves_and_merges_leaves_a_sound_index(
    seeds_dir: Path, tmp_path: Path
) -> None:
    write_articles(seeds_dir, 0, 20)
    index_dir = tmp_path / "index"
    rng = random.Random(20261129)
    for round_ in range(8):
        churn = subprocess.Popen(
            [sys.executable, "-c", CHURN, str(seeds_dir), str(index_dir), str(round_)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert churn.stdout is not None and churn.stdout.readline() == "ready\n"
        time.sleep(rng.uniform(0.05, 1.5))
        churn.send_signal(signal.SIGKILL)
        churn.wait()
        # what the killed writer left is in force as it is: loadable, consistent
        state = store.load(index_dir)
        assert state is not None
        keeper = IndexKeeper.open(seeds_dir, index_dir)
        assert_same_as_a_fresh_build(keeper, seeds_dir, tmp_path)
