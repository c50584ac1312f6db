"""`python -m retrieval`, run as users run it: a real process, real stdin and stdout."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from retrieval.question.ranking import SHIPPED
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
    "speaker",
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


def search_json(corpus: Path, index: Path, stdin: str, k: int = 5) -> list[dict]:
    """`search --json` over stdin: one parsed result a line."""
    result = run(
        "search", "--seeds", str(corpus), "--index-dir", str(index), "-k", str(k), "--json",
        stdin=stdin,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


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
    lines = search_json(corpus, tmp_path / "i", stdin, k=2)
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


def test_search_reads_json_lines_with_context_beside_plain_lines(
    corpus: Path, tmp_path: Path
) -> None:
    lines_in = [
        "德地秀士怎么看联合声明",
        json.dumps({"query": "那他还说了什么", "context": ["德地秀士怎么看联合声明"]}),
        json.dumps({"query": "天问一号着陆了吗", "context": ["德地秀士怎么看联合声明"]}),
        json.dumps({"query": "天问一号着陆", "context": "not a list", "extra": 1}),
        json.dumps({"query": "天问一号", "context": [7, None, "天问一号"]}),
        '{"query": "broken json',
        json.dumps({"query": 5}),
        json.dumps(["天问一号"]),
        json.dumps({"query": "那他还说了什么"}),  # no context: nothing to lean on
    ]
    out = search_json(corpus, tmp_path / "i", "\n".join(lines_in) + "\n", k=3)
    assert len(out) == len(lines_in), "every input line gives exactly one output line"
    standalone, followup, new_topic, odd_context, mixed_context, *plain, alone = out
    assert followup["query"] == "那他还说了什么"
    assert followup["context"] == ["德地秀士怎么看联合声明"]
    assert followup["read_with"] == "德地秀士怎么看联合声明"
    assert followup["hits"][0]["article_id"] == standalone["hits"][0]["article_id"]
    # a question that does not lean on the earlier one is read alone, whatever the context
    assert new_topic["read_with"] is None
    assert new_topic["hits"][0]["title"] == "火星探测"
    assert odd_context["query"] == "天问一号着陆" and "context" not in odd_context
    assert mixed_context["context"] == ["天问一号"]
    # anything that is not such an object is a plain query, searched as written
    assert [line["query"] for line in plain] == lines_in[5:8]
    assert alone["read_with"] is None
    for line in out:
        assert isinstance(line["confident"], bool) and isinstance(line["missing"], list)


def test_search_skips_a_bad_line_with_one_error_line_and_goes_on(
    corpus: Path, tmp_path: Path
) -> None:
    """Issue 23: a line nested 100,000 deep (RecursionError) or a lone surrogate (OpenCC's
    UnicodeEncodeError) ended the run with nothing printed; so did a line not in UTF-8."""
    lines = [
        "天问一号着陆".encode(),
        b'{"query": ' * 100_000 + b'"x"' + b"}" * 100_000,
        b'{"query": "\\ud800 \xe5\xa4\xa9\xe9\x97\xae"}',
        b'{"query": "\xe5\xa4\xa9", "context": ["\\udfff"]}',
        b"\xff\xfe not UTF-8",
        b'{"query": "\xe7\x81\xab\xe6\x98\x9f\xe6\x8e\xa2\xe6\xb5\x8b"}',
    ]
    result = subprocess.run(
        [sys.executable, "-m", "retrieval", "search", "--seeds", str(corpus), "--json",
         "--index-dir", str(tmp_path / "i"), "-k", "1"],
        input=b"\n".join(lines) + b"\n", capture_output=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: line 2, JSON nested too deeply",
        "error: line 3, not valid Unicode text (a lone surrogate such as \\ud800)",
        "error: line 4, not valid Unicode text (a lone surrogate such as \\ud800)",
        "error: line 5, not UTF-8",
    ]
    answered = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [a["query"] for a in answered] == ["天问一号着陆", "火星探测"]
    assert all(a["hits"] for a in answered)


def test_search_cuts_a_query_to_the_bots_bound_before_analysing_it(
    corpus: Path, tmp_path: Path
) -> None:
    """A 1 MB query took 56 s to analyse; it is cut to MAX_QUERY_CHARS first, as the bot cuts
    questions (and so is each earlier question of its context)."""
    from bot.replies import MAX_QUERY_CHARS as BOT_BOUND
    from retrieval.models import MAX_QUERY_CHARS

    assert MAX_QUERY_CHARS == BOT_BOUND == 1000
    huge = "天问一号着陆" + "火星" * 500_000
    line = json.dumps({"query": huge, "context": ["着陆" * 500_000] * 3}, ensure_ascii=False)
    [answer] = search_json(corpus, tmp_path / "i", line + "\n", k=1)
    assert answer["query"] == huge[:1000]
    assert answer["hits"][0]["url"] == "https://x.test/mars"
    assert [len(c) for c in answer["context"]] == [1000] * 3


def test_search_says_when_the_archive_does_not_answer(corpus: Path, tmp_path: Path) -> None:
    stdin = "2024年美国大选谁赢了\n石破茂和特朗普会谈了什么\n"
    unanswered, answered = search_json(corpus, tmp_path / "i", stdin)
    assert unanswered["hits"], "close passages are still listed"
    assert unanswered["confident"] is False
    assert "2024" in unanswered["missing"]
    assert answered["confident"] is True
    assert answered["missing"] == []
    # the learned judgement's probability, beside its verdict
    threshold = SHIPPED.judgement.threshold
    assert 0.0 <= unanswered["probability"] <= 1.0
    assert answered["probability"] >= threshold
    listing = run(
        "search", "--seeds", str(corpus), "--index-dir", str(tmp_path / "i"), "2024年美国大选谁赢了"
    )
    assert "not confident" in listing.stdout and "2024" in listing.stdout


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
    assert "passages: 21" in result.stdout  # the seed's 20 and the new one
    assert SHIPPED.ranker is not None and SHIPPED.judgement is not None
    # which models answer
    assert f"ranker:   {SHIPPED.ranker.identity}" in result.stdout
    assert f"judgement: {SHIPPED.judgement.identity}" in result.stdout
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


def test_a_quote_of_someone_the_passage_does_not_name_says_who_speaks(seeds_dir: Path) -> None:
    """The seed article's 他说：“…” is 长尾贤's: a hit for a question about Ishiba must not
    read as Ishiba's words."""
    [result] = search_json(seeds_dir, seeds_dir.parent / "index", "石破茂說了什麼關於防衛費\n", k=3)
    [quote] = [h for h in result["hits"] if h["text"].startswith("他说：")]
    assert "长尾贤" in quote["speaker"]
    assert all(h["speaker"] is None for h in result["hits"] if not h["text"].startswith("他"))
    plain = run("search", "--seeds", str(seeds_dir), "--index-dir", str(seeds_dir.parent / "i"),
                "-k", "3", "石破茂說了什麼關於防衛費")  # fmt: skip
    assert "🗣 华盛顿哈德逊研究所" in plain.stdout


SEEDS_FIX = "; pass --seeds DIR or set SEEDS_DIR"


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["search", "--seeds", "/nonexistent/seeds", "x"],
            "error: seeds directory /nonexistent/seeds, it does not exist" + SEEDS_FIX,
        ),
        (
            ["ingest", "--seeds", "/nonexistent/seeds", "http://127.0.0.1:9/feed.xml"],
            "error: seeds directory /nonexistent/seeds, it does not exist" + SEEDS_FIX,
        ),
        (
            ["search", "--seeds", str(REPO / "seeds"), ""],
            "error: the question is empty, there is nothing to search for; put the question "
            "after search, or leave it out to type questions one a line",
        ),
        (["latest", "-n", "0"], "error: -n 0, the count must be a positive number; e.g. -n 5"),
        (
            ["merge", "--index-dir", "/etc/hostname"],
            "error: index directory /etc/hostname is a file, not a directory "
            "(--index-dir, INDEX_DIR)",
        ),
    ],
    ids=["search-seeds", "ingest-seeds", "empty-question", "count", "merge-index"],
)
def test_every_mistake_is_one_error_line_in_one_scheme_and_exit_2(args, line):
    result = run(*args)
    assert (result.returncode, result.stderr, result.stdout) == (2, line + "\n", "")


def test_search_at_a_terminal_without_a_question_says_how_to_type_them(
    seeds_dir: Path, tmp_path: Path
) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "retrieval", "search", "--seeds", str(seeds_dir)],
        cwd=REPO,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = _read_until(controller, process, b"> ")
    os.write(controller, "石破茂访问白宫\n".encode())
    seen += _read_until(controller, process, "石破首访特朗普".encode())
    os.write(controller, b"\x04")  # Ctrl-D: the end
    assert process.wait(timeout=60) == 0
    os.close(controller)
    text = seen.decode("utf-8", errors="replace")
    assert "Type a question and press Enter; Ctrl-D to finish." in text


def _read_until(controller: int, process: subprocess.Popen, wanted: bytes) -> bytes:
    """What the terminal shows until `wanted` (or the process ends, or a minute passes)."""
    seen = b""
    deadline = time.monotonic() + 60
    while wanted not in seen and time.monotonic() < deadline and process.poll() is None:
        if select.select([controller], [], [], 1)[0]:
            seen += os.read(controller, 65536)
    return seen


def test_quiet_is_accepted_by_every_verb(corpus: Path, tmp_path: Path) -> None:
    result = run("stats", "--quiet", "--seeds", str(corpus), "--index-dir", str(tmp_path / "i"))
    assert result.returncode == 0, result.stderr
    assert "articles: 2" in result.stdout
