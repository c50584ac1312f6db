"""Hostile seed files (issue 12, items 5–8): each takes at most itself out of the index.

Seed files are built with `seedfile.render`; the command line runs as a real process."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from retrieval import IndexKeeper, seedfile
from retrieval.articles import parse_article, passages_of, split_long
from retrieval.feeds import ingest_feeds
from retrieval.index.parsing import Workers
from retrieval.models import Article, Paragraph

ROOT = Path(__file__).resolve().parents[1]
MS = 1_739_228_342_000
PARAGRAPH = "日本首相石破茂与美国总统特朗普在白宫举行首次会谈，双方重申美日同盟。"


def seed(title: str, url: str, body_html: str) -> str:
    return seedfile.render(title, url, MS, body_html)


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    """A seeds directory holding one ordinary article."""
    directory = tmp_path / "seeds"
    directory.mkdir()
    (directory / "good.txt").write_text(
        seed("石破首访特朗普", "https://news.example.org/a/1.html", f"<p>{PARAGRAPH}</p>"),
        encoding="utf-8",
    )
    return directory


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m retrieval …` from this worktree, as users run it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "retrieval", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=timeout,
    )


def nested(depth: int, inner: str, tag: str = "div") -> str:
    return f"<{tag}>" * depth + inner + f"</{tag}>" * depth


# ---- 5. nesting: parsed without recursion -----------------------------------------------------


def test_a_file_nested_1000_divs_deep_is_indexed_and_stats_succeeds(
    seeds: Path, tmp_path: Path
) -> None:
    deep = seed(
        "深层嵌套", "https://news.example.org/a/deep.html", nested(1000, "<p>深处的段落。</p>")
    )
    assert len(deep.encode()) < 12_000  # the 11 KB file
    (seeds / "deep.txt").write_text(deep, encoding="utf-8")

    result = cli("stats", "--seeds", str(seeds), "--index-dir", str(tmp_path / "index"))

    assert result.returncode == 0, result.stderr
    assert "articles: 2" in result.stdout and "skipped:  0" in result.stdout
    assert "RecursionError" not in result.stderr


@pytest.mark.parametrize("tag", ["div", "span", "blockquote"])
def test_deep_nesting_of_any_element_keeps_its_text(tag: str) -> None:
    text = seed(
        "t", "https://news.example.org/a/x.html", nested(20_000, "<p>最深处的一段正文。</p>", tag)
    )
    article = parse_article(text)
    assert [p.text for p in article.paragraphs] == ["最深处的一段正文。"]


def test_a_deeply_nested_feed_item_is_written_and_then_indexed(seeds: Path, tmp_path: Path) -> None:
    body = nested(1000, "<p>经由订阅源到达的深层段落。</p>")
    feed = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>深层条目</title><link>https://feed.example.org/deep.html</link>"
        f"<pubDate>Tue, 11 Feb 2025 01:30:00 GMT</pubDate><description><![CDATA[{body}]]>"
        "</description></item></channel></rss>"
    ).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=feed))
    with httpx.Client(transport=transport) as client:
        [report] = ingest_feeds(["https://feed.example.org/rss"], seeds, client=client)
    assert (report.error, report.new) == (None, 1)

    keeper = IndexKeeper.open(seeds, tmp_path / "index")
    library = keeper.library

    assert library.stats().skipped == ()
    [hit] = library.search("经由订阅源到达的深层段落", k=1).hits
    assert hit.article.url == "https://feed.example.org/deep.html"


def test_a_seed_whose_url_urllib_cannot_split_is_no_crash(seeds: Path, tmp_path: Path) -> None:
    (seeds / "bad-url.txt").write_text(
        seed("坏链接", "http://[x/a.html", "<p>链接无法解析的文章。</p>"), encoding="utf-8"
    )
    result = cli("stats", "--seeds", str(seeds), "--index-dir", str(tmp_path / "index"))
    assert result.returncode == 0, result.stderr
    assert "articles: 2" in result.stdout


# ---- 6. only regular files inside the seeds directory are read --------------------------------


def test_stats_with_a_fifo_named_x_txt_finishes_and_lists_it_or_ignores_it(
    seeds: Path, tmp_path: Path
) -> None:
    os.mkfifo(seeds / "x.txt")  # opened for reading, it would block until a writer came

    result = cli("stats", "--seeds", str(seeds), "--index-dir", str(tmp_path / "index"), timeout=60)

    assert result.returncode == 0, result.stderr
    assert "articles: 1" in result.stdout
    skipped = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert skipped in ([], ["  x.txt: not a regular file"])


def test_devices_and_symlinks_to_them_are_never_read(seeds: Path, tmp_path: Path) -> None:
    (seeds / "zero.txt").symlink_to("/dev/zero")  # read to its end, it never ends
    (seeds / "null.md").symlink_to("/dev/null")
    os.mkfifo(seeds / ".pipe")
    (seeds / "pipe.txt").symlink_to(seeds / ".pipe")  # a symlink inside, to a FIFO
    if os.geteuid() == 0:  # only root may make a device node
        os.mknod(seeds / "dev.txt", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's

    keeper = IndexKeeper.open(seeds, tmp_path / "index")
    library = keeper.library  # would hang or exhaust memory

    assert library.stats().articles == 1
    skipped = library.stats().skipped
    assert {s.path for s in skipped} <= {"dev.txt", "pipe.txt"}  # listed or left out
    assert {s.reason for s in skipped} <= {"not a regular file"}
    # and read directly, none is read: refused after a non-blocking open
    for name in ("zero.txt", "null.md", "pipe.txt", "dev.txt"):
        if os.path.lexists(seeds / name):
            with pytest.raises(seedfile.SeedFormatError, match="not a regular file"):
                seedfile.read_text(seeds / name)


def test_a_symlink_leading_outside_the_seeds_directory_is_not_served(
    seeds: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "private" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text(
        seed("机密", "https://intranet.example.org/secret", "<p>内部口令是蓝鲸四十二号。</p>"),
        encoding="utf-8",
    )
    (seeds / "leak.txt").symlink_to(secret)
    (seeds / "folder").symlink_to(secret.parent, target_is_directory=True)
    inside = seeds / "archive" / "copy.txt"
    inside.parent.mkdir()
    inside.write_text(
        seed("存档", "https://news.example.org/a/2.html", "<p>存档文章讲述樱花季节。</p>"),
        encoding="utf-8",
    )
    (seeds / "alias.txt").symlink_to(inside)  # inside the directory: still read

    keeper = IndexKeeper.open(seeds, tmp_path / "index")
    library = keeper.library

    assert library.search("蓝鲸四十二号口令", k=5).hits == ()
    urls = {ref.url for ref in library.article_refs()}
    assert "https://intranet.example.org/secret" not in urls
    assert "https://news.example.org/a/2.html" in urls
    result = cli("search", "--seeds", str(seeds), "--index-dir", str(tmp_path / "i2"), "蓝鲸")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1] == "  (no matching passage)"


# ---- 7. long text is split in linear time -----------------------------------------------------


def best_seconds(work: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def test_a_run_on_paragraph_is_split_in_linear_time() -> None:
    # 8x the text should take about 8x the time; the quadratic split took 40–50x here.
    def run_on(chars: int) -> str:
        return ("这是一段没有句号的长文" * (chars // 11 + 1))[:chars]

    small, big = run_on(500_000), run_on(4_000_000)
    ratio = best_seconds(lambda: split_long(big)) / best_seconds(lambda: split_long(small))
    assert ratio < 20, f"8x the text took {ratio:.0f}x the time"
    pieces = split_long(big)
    assert "".join(pieces) == big and max(map(len, pieces)) <= 400


def test_a_run_of_tiny_paragraphs_is_merged_in_linear_time_into_short_passages() -> None:
    def article(n: int) -> Article:
        paragraphs = tuple(Paragraph("短句。", None) for _ in range(n))
        return Article("x", "t", "https://news.example.org/x", datetime.now(UTC), paragraphs)

    small, big = article(40_000), article(320_000)
    ratio = best_seconds(lambda: passages_of(big)) / best_seconds(lambda: passages_of(small))
    assert ratio < 20, f"8x the paragraphs took {ratio:.0f}x the time"
    passages = passages_of(big)
    assert max(len(p.text) for p in passages) <= 400 + 8  # not one passage of 1.3 M characters
    assert sum(p.text.count("短句。") for p in passages) == 320_000


def test_a_huge_caption_is_never_split_into_passages() -> None:
    caption = "图片说明没有句号" * 10_000  # captions are article evidence, not answers
    article = Article("x", "t", "https://news.example.org/x", datetime.now(UTC), (), (caption,))
    assert passages_of(article) == []


# ---- 8. worker processes die with their parent ------------------------------------------------

BUILD = textwrap.dedent(
    """
    import sys
    from retrieval import IndexKeeper
    from retrieval.index.parsing import Workers

    if __name__ == "__main__":
        workers = Workers(count=2, from_files=1, start_method=sys.argv[3])
        IndexKeeper.open(sys.argv[1], sys.argv[2], workers=workers)
        print("built", flush=True)
    """
)


def article_files(seeds: Path, count: int, paragraphs: int = 1) -> None:
    """`count` names for one article (hard links: the work of many files, the disk of one)."""
    seeds.mkdir()
    first = seeds / "000.txt"
    body = f"<p>{PARAGRAPH}</p>" * paragraphs
    first.write_text(seed("大文章", "https://news.example.org/big", body), encoding="utf-8")
    for i in range(1, count):
        os.link(first, seeds / f"{i:03}.txt")


@pytest.mark.parametrize("start_method", ["fork", "forkserver", "spawn"])
def test_a_parallel_build_works_with_every_start_method(tmp_path: Path, start_method: str) -> None:
    # forkserver (Python 3.14's default on Linux): a worker's parent is the fork server, so
    # a watchdog that expects the pool's process there ends every worker at once.
    article_files(tmp_path / "seeds", 20)
    workers = Workers(count=2, from_files=1, start_method=start_method)
    keeper = IndexKeeper.open(tmp_path / "seeds", tmp_path / "index", workers=workers)
    library = keeper.library
    assert library.stats().articles == 1 and library.stats().skipped == ()


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if fields[0] != "Z":  # a zombie has exited
                parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    living = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            living.add(pid)
    return living


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_build_workers_die_within_seconds_when_their_parent_is_killed(
    tmp_path: Path, start_method: str
) -> None:
    seeds = tmp_path / "seeds"
    article_files(seeds, 100, paragraphs=4000)  # keeps both workers busy for seconds
    script = tmp_path / "build.py"
    script.write_text(BUILD, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, str(script), str(seeds), str(tmp_path / "index"), start_method]
    parent = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and parent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = descendants(parent.pid)
        assert parent.poll() is None, "the build ended before its workers were seen"
        assert len(workers) >= 2, f"no worker processes appeared: {workers}"
        time.sleep(0.5)  # let them start parsing

        parent.send_signal(signal.SIGKILL)
        parent.wait()

        deadline = time.monotonic() + 10  # the watchdog looks twice a second
        while alive(workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(workers), "worker processes outlived their parent"
    finally:
        parent.kill()
        parent.wait()
        for pid in alive(workers):
            os.kill(pid, signal.SIGKILL)
