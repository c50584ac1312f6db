"""The Library: search, latest, stats, and a persistent index that keeps up with the seeds."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from retrieval import Article, ArticleRef, IndexKeeper, SkippedFile
from retrieval.index import parsing, store
from retrieval.index.store import FORMAT_VERSION, load
from tests.support.seeds import SEED, seed_file


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    return tmp_path / "index"


def test_search_returns_hits_with_article_and_passage(seeds_dir: Path, index_dir: Path) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    hits = library.search("德地秀士怎么看美日联合声明", k=3).hits
    assert hits, "expected a hit"
    top = hits[0]
    assert "德地秀士" in top.passage.text
    assert top.article.title.startswith("石破首访特朗普")
    assert top.article.url.endswith("/7969986.html")
    assert top.article.published.tzinfo is not None
    assert top.passage.section == "重申美日同盟 地区战略再强化"
    assert top.score > 0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert any(top.passage.text[a:b] == "德地秀士" for a, b in top.spans)


def test_traditional_query_with_regional_name_finds_the_passage(
    seeds_dir: Path, index_dir: Path
) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    hits = library.search("川普與石破茂會談後的聯合聲明", k=1).hits
    assert "联合声明" in hits[0].passage.text


def test_english_name_finds_chinese_passages_through_the_articles_gloss(
    seeds_dir: Path, index_dir: Path
) -> None:
    # the seed writes 长尾贤(Satoru Nagao) once, and later just 长尾贤
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    texts = [h.passage.text for h in library.search("Satoru Nagao", k=3).hits]
    assert any("长尾贤" in t and "Nagao" not in t for t in texts)


def test_english_query_finds_english_names_inside_articles(
    seeds_dir: Path, index_dir: Path
) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    assert "Hudson Institute" in library.search("Hudson Institute", k=1).hits[0].passage.text
    assert "LNG" in library.search("LNG", k=1).hits[0].passage.text


@pytest.mark.parametrize("query", ["", "   ", "的了吗", "？？？", "😀😀", "xyzzy-nothing"])
def test_queries_that_match_nothing_return_no_hits(
    seeds_dir: Path, index_dir: Path, query: str
) -> None:
    assert IndexKeeper.open(seeds_dir, index_dir).library.search(query).hits == ()


def test_ties_break_deterministically(seeds_dir: Path, index_dir: Path) -> None:
    for i in range(3):  # three articles with identical text: equal scores
        (seeds_dir / f"dup{i}.txt").write_text(
            seed_file(
                f"标题{i}",
                f"https://x.test/{i}",
                ["完全相同的一段关于火星探测的文字。"],
                ms=1_600_000_000_000 + i,
            ),
            encoding="utf-8",
        )
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    first = [h.article.url for h in library.search("火星探测", k=3).hits]
    # newest article first among equals, and the same order every time and after a rebuild
    assert first == ["https://x.test/2", "https://x.test/1", "https://x.test/0"]
    shutil.rmtree(index_dir)
    again = IndexKeeper.open(seeds_dir, index_dir).library
    assert [h.article.url for h in again.search("火星探测", k=3).hits] == first


def test_latest_is_newest_first_and_stats_count(seeds_dir: Path, index_dir: Path) -> None:
    (seeds_dir / "old.txt").write_text(
        seed_file("旧闻", "https://x.test/old", ["很久以前的新闻内容。"], ms=1_500_000_000_000),
        encoding="utf-8",
    )
    (seeds_dir / "sub").mkdir()
    (seeds_dir / "sub" / "new.txt").write_text(
        seed_file("新闻", "https://x.test/new", ["刚刚发生的新闻内容。"], ms=1_800_000_000_000),
        encoding="utf-8",
    )
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    assert [a.title for a in library.latest(5)] == [
        "新闻",
        "石破首访特朗普：巩固美日同盟，打出防卫与贸易“双赢牌”",
        "旧闻",
    ]
    assert len(library.latest(1)) == 1
    stats = library.stats()
    assert stats.articles == 3
    assert stats.passages == 20 + 2  # the seed's paragraphs (not its caption), and two
    assert stats.newest == library.latest(1)[0].published
    assert stats.skipped == ()


def test_article_refs_newest_first_and_lookup(seeds_dir: Path, index_dir: Path) -> None:
    (seeds_dir / "new.txt").write_text(
        seed_file("新闻", "https://x.test/new", ["刚刚发生的新闻内容。"], ms=1_800_000_000_000),
        encoding="utf-8",
    )
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    refs = library.article_refs()
    assert refs == [ArticleRef(a.id, a.url, a.published) for a in library.latest(10)]
    ids = [ref.id for ref in refs]
    assert library.article(ids[0]).title == "新闻"
    assert library.article("0000000000000000") is None


def test_bad_files_are_skipped_with_one_warning_each(
    seeds_dir: Path, index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (seeds_dir / "empty.txt").write_bytes(b"")
    (seeds_dir / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (seeds_dir / "notes.md").write_text("no header here\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        keeper = IndexKeeper.open(seeds_dir, index_dir)
        library = keeper.library
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert any("empty.txt" in w and "empty file" in w for w in warnings)
    assert any("binary.txt" in w and "binary" in w for w in warnings)
    assert {s.path for s in library.stats().skipped} == {"empty.txt", "binary.txt", "notes.md"}
    assert library.stats().articles == 1  # everything else is still indexed
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        IndexKeeper.open(seeds_dir, index_dir)  # unchanged files: no second warning
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("later", ["https://x.test/same", "HTTPS://X.test/same#top"])
def test_same_url_twice_indexed_once_newest_wins(
    seeds_dir: Path, index_dir: Path, later: str
) -> None:
    url = "https://x.test/same"
    (seeds_dir / "a.txt").write_text(
        seed_file("旧版本", url, ["初版的报道内容。"], ms=1_600_000_000_000), encoding="utf-8"
    )
    (seeds_dir / "b.txt").write_text(
        seed_file("新版本", later, ["更新后的报道内容。"], ms=1_600_000_900_000), encoding="utf-8"
    )
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    assert library.stats().articles == 2
    assert [a.title for a in library.latest(5)].count("新版本") == 1
    assert "旧版本" not in [a.title for a in library.latest(5)]
    assert library.search("初版").hits == ()
    # the winner disappears: the other copy comes back
    (seeds_dir / "b.txt").unlink()
    keeper.refresh()
    assert "旧版本" in [a.title for a in library.latest(5)]


def test_missing_or_unusable_seeds_dir_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        IndexKeeper.open(tmp_path / "nope", tmp_path / "i")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError):
        IndexKeeper.open(tmp_path / "file", tmp_path / "i")


# --- the persistent, incremental index ---------------------------------------------------------


def test_restart_loads_the_saved_index_without_parsing(seeds_dir: Path, index_dir: Path) -> None:
    IndexKeeper.open(seeds_dir, index_dir)
    # Same size and mtime but other words: a re-parse would find them, a loaded index does not.
    seed = seeds_dir / SEED.name
    st = seed.stat()
    text = seed.read_text(encoding="utf-8").replace("德地秀士", "某某某某")
    seed.write_text(text, encoding="utf-8")
    os.utime(seed, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert seed.stat().st_size == st.st_size
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    assert library.search("德地秀士").hits
    assert not keeper.refresh()


def test_added_changed_and_deleted_files_are_picked_up(seeds_dir: Path, index_dir: Path) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    added = seeds_dir / "mars.txt"
    added.write_text(
        seed_file("火星", "https://x.test/mars", ["火星探测器成功着陆。"]), encoding="utf-8"
    )
    assert keeper.refresh()
    assert library.search("火星探测器").hits[0].article.title == "火星"
    added.write_text(
        seed_file("月球", "https://x.test/mars", ["月球车开始巡视。"]), encoding="utf-8"
    )
    assert keeper.refresh()
    assert library.search("火星探测器").hits == ()
    assert library.search("月球车").hits[0].article.title == "月球"
    assert library.search("德地秀士").hits, "the unchanged seed is still there"
    added.unlink()
    assert keeper.refresh()
    assert library.search("月球车").hits == ()
    assert library.stats().articles == 1
    # a fresh process sees the same thing from disk
    assert IndexKeeper.open(seeds_dir, index_dir).library.stats().articles == 1


def test_answering_never_waits_for_a_reload(seeds_dir: Path, index_dir: Path) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    (seeds_dir / "mars.txt").write_text(
        seed_file("火星", "https://x.test/mars", ["火星探测器成功着陆。"]), encoding="utf-8"
    )
    done = threading.Event()
    with keeper._changing:  # a reload is in progress (holding the lock it takes)...
        reload = threading.Thread(target=lambda: (keeper.refresh(), done.set()))
        reload.start()
        # ...and questions are still answered, from the snapshot before it
        assert library.search("德地秀士").hits
        assert library.search("火星探测器").hits == ()
        assert not done.is_set()
    reload.join(timeout=60)
    assert done.is_set()
    assert library.search("火星探测器").hits[0].article.title == "火星"


def test_a_vanished_seeds_dir_does_not_empty_the_library(seeds_dir: Path, index_dir: Path) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    moved = seeds_dir.with_name("elsewhere")
    seeds_dir.rename(moved)
    assert not keeper.refresh()
    assert library.search("德地秀士").hits
    moved.rename(seeds_dir)
    (seeds_dir / SEED.name).unlink()  # back, and really emptied: that is picked up
    assert keeper.refresh()
    assert library.search("德地秀士").hits == ()


def test_incremental_scores_equal_a_fresh_build(seeds_dir: Path, tmp_path: Path) -> None:
    keeper = IndexKeeper.open(seeds_dir, tmp_path / "a")
    library = keeper.library
    for i in range(4):
        (seeds_dir / f"n{i}.txt").write_text(
            seed_file(
                f"T{i}", f"https://x.test/{i}", [f"美日同盟第{i}次防卫合作会谈。", "石破茂表示。"]
            ),
            encoding="utf-8",
        )
        keeper.refresh()
    (seeds_dir / "n1.txt").unlink()
    keeper.refresh()
    fresh = IndexKeeper.open(seeds_dir, tmp_path / "b").library
    for query in ("美日同盟 防卫", "石破茂", "会谈"):
        ours = [(h.passage.id, round(h.score, 9)) for h in library.search(query, k=10).hits]
        theirs = [(h.passage.id, round(h.score, 9)) for h in fresh.search(query, k=10).hits]
        assert ours == theirs


def test_analyzer_change_rebuilds(seeds_dir: Path, index_dir: Path, tmp_path: Path) -> None:
    IndexKeeper.open(seeds_dir, index_dir)
    extra = tmp_path / "aliases.tsv"
    extra.write_text("谢博士\t谢文生\n", encoding="utf-8")
    keeper = IndexKeeper.open(seeds_dir, index_dir, aliases_file=extra)
    library = keeper.library
    assert "谢文生" in library.search("谢博士的看法", k=1).hits[0].passage.text
    saved = load(index_dir)
    assert saved is not None and saved.fingerprint == library.analyzer.fingerprint


@pytest.mark.parametrize(
    "damage",
    [
        "truncated-array",
        "segment-without-manifest",
        "segment-gone",
        "garbage-pointer",
        "other-terms",
        "old-format",
        "state-without-segments",
        "state-without-fingerprint",
        "state-not-an-object",
        "file-record-of-another-shape",
        "a-record-naming-no-article",
        "a-segment-name-leading-outside",
        "deletions-of-another-shape",
    ],
)
def test_corrupt_index_is_rebuilt_not_served(
    seeds_dir: Path, index_dir: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    for name in ("gone", "stays"):
        (seeds_dir / f"{name}.txt").write_text(
            seed_file(name, f"https://x.test/{name}", [f"{name}：一篇短短的文章。"]),
            encoding="utf-8",
        )
    keeper.refresh()
    (seeds_dir / "gone.txt").unlink()
    keeper.refresh()  # the second segment has a deletion now
    state_file = index_dir / store.current_state(index_dir)
    state = json.loads(state_file.read_text())
    segment = index_dir / f"seg-{state['segments'][0]['name']}"
    if damage == "truncated-array":
        path = segment / "passage_indices.npy"
        path.write_bytes(path.read_bytes()[:-40])
    elif damage == "segment-without-manifest":
        (segment / "manifest.json").unlink()
    elif damage == "segment-gone":
        shutil.rmtree(segment)
    elif damage == "garbage-pointer":
        (index_dir / "CURRENT").write_text("state-does-not-exist")
    elif damage == "other-terms":
        (segment / "terms.txt").write_text("a\nb", encoding="utf-8")
    elif damage.startswith("state-without-"):
        del state[damage.removeprefix("state-without-")]
    elif damage == "state-not-an-object":
        state = [7]
    elif damage == "file-record-of-another-shape":
        for record in state["files"].values():
            record.append("surprise")
    elif damage == "a-record-naming-no-article":
        for record in state["files"].values():
            record[-1] = 99
    elif damage == "a-segment-name-leading-outside":
        state["segments"][0]["name"] = "../../elsewhere"
    elif damage == "deletions-of-another-shape":
        with_deletions = next(r for r in state["segments"] if r["deletions"])
        path = index_dir / f"seg-{with_deletions['name']}" / with_deletions["deletions"]
        np.savez(path, deleted=np.ones(3, bool), passage_df=np.zeros(1), article_df=np.zeros(1))
    else:  # an index written by an older version of the format
        state["format"] = 1
    if damage.startswith(("state", "file", "a-", "old")):
        state_file.write_text(json.dumps(state))
    with caplog.at_level(logging.WARNING):
        keeper = IndexKeeper.open(seeds_dir, index_dir)
        library = keeper.library
    assert any("rebuilding" in r.getMessage() for r in caplog.records)
    assert "德地秀士" in library.search("德地秀士", k=1).hits[0].passage.text
    assert library.stats().articles == 2
    assert load(index_dir) is not None


def test_an_index_from_before_segments_is_rebuilt_saying_so_and_removed(
    seeds_dir: Path, index_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    IndexKeeper.open(seeds_dir, index_dir)
    # format 10 and before: CURRENT named a generation directory
    old = index_dir / "gen-20250101000000-abcd1234"
    old.mkdir()
    (old / "manifest.json").write_text('{"format": 10}', encoding="utf-8")
    (index_dir / "CURRENT").write_text(old.name, encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        keeper = IndexKeeper.open(seeds_dir, index_dir)
        library = keeper.library
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.endswith(
        f"(index format 10 or older (before segments), expected {FORMAT_VERSION}): rebuilding"
    )
    assert library.search("德地秀士", k=1).hits
    assert not old.exists()  # a million passages' generation does not stay behind


def test_half_written_segments_are_ignored_then_cleared(seeds_dir: Path, index_dir: Path) -> None:
    IndexKeeper.open(seeds_dir, index_dir)
    # a save killed before its segment was named by a state: leftovers, never read
    (index_dir / "seg-crashed").mkdir()
    (index_dir / "seg-crashed" / "passage_indptr.npy").write_bytes(b"junk")
    (index_dir / ".CURRENT.12345").write_text("junk")
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    assert library.search("德地秀士").hits
    assert not keeper.refresh()
    (seeds_dir / "new.txt").write_text(
        seed_file("新", "https://x.test/n", ["新的一篇报道内容。"]), encoding="utf-8"
    )
    assert keeper.refresh()  # the next writer clears them
    assert not (index_dir / "seg-crashed").exists()
    assert not (index_dir / ".CURRENT.12345").exists()


def test_a_file_that_breaks_the_parser_is_skipped_and_the_rest_indexed(
    seeds_dir: Path, index_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (seeds_dir / "odd.txt").write_text(
        seed_file("怪文件", "https://x.test/odd", ["一段会让解析器出错的文字。"]), encoding="utf-8"
    )
    real = parsing.passages_of

    def passages_of(article: Article) -> list:
        if article.title == "怪文件":
            raise RuntimeError("a parser bug")
        return real(article)

    monkeypatch.setattr(parsing, "passages_of", passages_of)
    keeper = IndexKeeper.open(seeds_dir, index_dir)
    library = keeper.library
    assert library.stats().skipped == (
        SkippedFile("odd.txt", "could not be parsed (RuntimeError)"),
    )
    assert library.search("德地秀士", k=1).hits
