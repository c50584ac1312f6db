"""`python -m retrieval`, run as users run it: a real process, real stdin and stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.seeds import HOSTILE, UNSAFE_CHARACTERS, seed_file, write_hostile_seeds

HIT_KEYS = {
    "rank",
    "score",
    "text",
    "section",
    "title",
    "url",
    "published",
    "article_id",
    "passage_id",
}


def run(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "retrieval", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture
def corpus(seeds_dir: Path) -> Path:
    (seeds_dir / "mars.txt").write_text(
        seed_file(
            "火星探测",
            "https://x.test/mars",
            ["中国火星探测器天问一号成功着陆。"],
            ms=1_800_000_000_000,
        ),
        encoding="utf-8",
    )
    (seeds_dir / "broken.txt").write_text("not a seed file\n", encoding="utf-8")
    return seeds_dir


def test_search_json_one_line_per_stdin_query_in_order(corpus: Path, tmp_path: Path) -> None:
    stdin = "天问一号着陆\n\n德地秀士 延伸威慑的可信度\n完全无关的词语组合xyz\n"
    result = run(
        "search",
        "--seeds",
        str(corpus),
        "--index-dir",
        str(tmp_path / "i"),
        "-k",
        "2",
        "--json",
        stdin=stdin,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query"] for line in lines] == [
        "天问一号着陆",
        "",
        "德地秀士 延伸威慑的可信度",
        "完全无关的词语组合xyz",
    ]
    assert lines[0]["hits"][0]["title"] == "火星探测"
    assert lines[1]["hits"] == []
    assert lines[3]["hits"] == []
    hit = lines[2]["hits"][0]
    assert set(hit) == HIT_KEYS
    assert hit["rank"] == 1 and hit["score"] > 0
    assert "德地秀士" in hit["text"]
    assert hit["section"] == "重申美日同盟 地区战略再强化"
    assert hit["published"] == "2025-02-10T22:51:04+00:00"
    assert hit["passage_id"].startswith(hit["article_id"] + ":")
    assert len(lines[2]["hits"]) == 2


def test_search_readable_listing_from_arguments(corpus: Path) -> None:
    result = run("search", "--seeds", str(corpus), "天问一号", "着陆")
    assert result.returncode == 0
    assert "? 天问一号 着陆" in result.stdout
    assert "1. [" in result.stdout and "https://x.test/mars" in result.stdout


def test_seeds_dir_from_environment(corpus: Path) -> None:
    result = run("search", "天问一号", "--json", env={"SEEDS_DIR": str(corpus)})
    assert json.loads(result.stdout)["hits"][0]["url"] == "https://x.test/mars"


def test_latest_json_newest_first(corpus: Path) -> None:
    result = run("latest", "--seeds", str(corpus), "-n", "5", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["url"] == "https://x.test/mars"
    assert len(rows) == 2
    assert {"title", "url", "published"} <= set(rows[0])
    assert rows[0]["published"] > rows[1]["published"]


def test_stats_lists_skipped_files_with_reasons(corpus: Path) -> None:
    result = run("stats", "--seeds", str(corpus))
    assert result.returncode == 0
    assert "articles: 2" in result.stdout
    assert "passages: 22" in result.stdout
    assert "broken.txt: no [title](url) header line" in result.stdout
    assert "broken.txt" in result.stderr  # the one warning


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "--seeds", "/nonexistent/seeds", "x"], "does not exist"),
        (["latest", "--seeds", "/etc/hostname"], "is not a directory"),
        (["search", "-k", "0", "x"], "positive"),
    ],
)
def test_expected_errors_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("content", [None, "只有一列\n"])
def test_unusable_alias_file_exits_2_naming_it(seeds_dir: Path, tmp_path: Path, content) -> None:
    aliases = tmp_path / "aliases.tsv"
    if content is not None:
        aliases.write_text(content, encoding="utf-8")
    result = run("search", "--seeds", str(seeds_dir), "x", env={"ALIASES_FILE": str(aliases)})
    assert result.returncode == 2
    assert "ALIASES_FILE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_article_text_never_drives_the_terminal(tmp_path: Path) -> None:
    """ANSI escapes, bells, C1 controls and bidi overrides in every field of an article (and in
    a file name) are not printed by search, latest or stats; --json keeps them, escaped."""
    seeds = write_hostile_seeds(tmp_path / "seeds", count=3)
    common = ["--seeds", str(seeds), "--index-dir", str(tmp_path / "index")]
    outputs = [
        run("search", *common, "-k", "10", "台风海葵防卫预算"),
        run("latest", *common),
        run("stats", *common),
        run("search", *common, "--json", "台风海葵"),
        run("latest", *common, "--json"),
    ]
    for result in outputs:
        assert result.returncode == 0, result.stderr
        for stream in (result.stdout, result.stderr):
            assert not set(stream) & set(UNSAFE_CHARACTERS), stream[:300]
    search, latest, stats, search_json, latest_json = outputs
    assert "<script>alert(1)</script>" in search.stdout and "[31mRED" in search.stdout
    assert "empty.txt: empty file" in stats.stdout
    assert latest.stdout.count("\n") == 2 * 3  # one line each for title and URL
    hit = json.loads(search_json.stdout)["hits"][0]
    assert HOSTILE in hit["title"] + hit["text"]  # the data itself is whole
    assert HOSTILE in json.loads(latest_json.stdout.splitlines()[0])["title"]
