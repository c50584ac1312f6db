"""Progress of an index build: counts as time passes (a clock the test moves), a bar at a
terminal, log lines without one, nothing when quiet."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval import IndexKeeper, Library, Workers, progress
from retrieval.feeds import ingest_feeds
from tests.support.http import free_port
from tests.support.seeds import write_articles


class Ticks:
    """A clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Where the progress logger writes, as a CLI's stderr (not a terminal) would get it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    progress.log.addHandler(handler)
    level = progress.log.level
    progress.show()
    yield out
    progress.log.removeHandler(handler)
    progress.log.setLevel(level)


@pytest.fixture
def eight_files(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    write_articles(seeds, 1, 8)
    return seeds


def build(seeds: Path, index: Path, reporter: progress.Reporter) -> Library:
    return IndexKeeper.open(seeds, index, workers=Workers(count=1, progress=reporter)).library


def test_a_build_logs_its_counts_as_ticks_pass_without_a_terminal(eight_files, tmp_path, stream):
    reporter = progress.Reporter(stream=stream, clock=Ticks(), every=3.0, delay=2.0)
    library = build(eight_files, tmp_path / "index", reporter)
    assert library.stats().articles == 8
    lines = stream.getvalue().splitlines()
    # read at 1 (start), then once a file: a line at 3 (2 files), at 6 (5), and at the end
    assert [line.split(",")[0] for line in lines] == [
        "indexing seed files: 2/8 files (25%)",
        "indexing seed files: 5/8 files (62%)",
        "indexing seed files: 8/8 files (100%)",
    ]
    assert lines[0].endswith("1.0 files/s, 00:06 left")
    assert lines[-1].endswith("done in 00:09")


def test_quick_work_and_a_quiet_build_report_nothing(eight_files, tmp_path, stream):
    build(eight_files, tmp_path / "quick", progress.Reporter(stream=stream, delay=3600.0))
    progress.show(False)  # what --quiet does, and LOG_LEVEL=WARNING in the bot
    build(eight_files, tmp_path / "quiet", progress.Reporter(stream=stream, clock=Ticks()))
    terminal = Terminal()
    build(eight_files, tmp_path / "quiet-bar", progress.Reporter(stream=terminal, delay=0.0))
    assert stream.getvalue() == "" and terminal.getvalue() == ""


def test_at_a_terminal_the_build_draws_a_bar_with_counts(eight_files, tmp_path, stream):
    terminal = Terminal()
    build(eight_files, tmp_path / "index", progress.Reporter(stream=terminal, delay=0.0))
    bar = terminal.getvalue()
    assert "indexing seed files: 100%" in bar and "8/8 files" in bar and "files/s" in bar
    assert stream.getvalue() == ""  # the bar instead of the log lines


def test_a_feed_ingest_logs_the_feeds_done_as_ticks_pass(tmp_path, stream):
    urls = [f"http://127.0.0.1:{free_port()}/feed.xml" for _ in range(3)]  # refused at once
    reporter = progress.Reporter(stream=stream, clock=Ticks(), every=1.0, delay=1.0)
    reports = ingest_feeds(urls, tmp_path, progress=reporter)
    assert all(report.error for report in reports)
    assert [line.split(",")[0] for line in stream.getvalue().splitlines()] == [
        "fetching feeds: 1/3 feeds (33%)",
        "fetching feeds: 2/3 feeds (66%)",
        "fetching feeds: 3/3 feeds (100%)",
    ]
