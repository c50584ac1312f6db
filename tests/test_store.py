"""The index directory shared by processes, and index builds in worker processes."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from retrieval import IndexKeeper, seedfile
from retrieval.articles import passages_of, read_article
from retrieval.index import parsing, store
from retrieval.question.analysis import Analyzer
from tests.support import REPO
from tests.support.seeds import write_articles

# Each writer adds articles of its own and refreshes after each one, so that both keep saving.
WRITER = """
import logging, sys
from pathlib import Path
from retrieval import IndexKeeper
from tests.support.seeds import write_articles
logging.basicConfig(level=logging.WARNING)
seeds, index_dir, me = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
keeper = IndexKeeper.open(seeds, index_dir)
library = keeper.library
for number in range(25):
    write_articles(seeds, 10000 * me + number, 1)
    keeper.refresh()
print(library.stats().articles)
"""


def test_two_writers_at_once_both_finish_and_leave_one_sound_index(tmp_path: Path) -> None:
    seeds, index_dir = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    write_articles(seeds, 0, 50)
    IndexKeeper.open(seeds, index_dir)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(seeds), str(index_dir), str(me)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me in (1, 2)
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=240)
        assert writer.returncode == 0, err
        # neither removed a segment the other was writing or reading
        assert "could not save" not in err and "unusable" not in err, err
        assert 75 <= int(out) <= 100
    saved = store.load(index_dir)
    assert saved is not None and saved.n_articles == 100
    # nothing beside what the state in force refers to
    assert sorted(p.name for p in index_dir.glob("seg-*")) == sorted(
        f"seg-{s.name}" for s in saved.segments
    )
    assert [p.name for p in index_dir.glob("state-*")] == [saved.name]


def test_a_busy_index_directory_is_answered_from_memory_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seeds, index_dir = tmp_path / "seeds", tmp_path / "index"
    seeds.mkdir()
    write_articles(seeds, 0, 5)
    with store.writer_lock(index_dir, 0), caplog.at_level(logging.WARNING):
        keeper = IndexKeeper.open(seeds, index_dir, lock_wait_seconds=0.2)
        library = keeper.library
    assert library.search("测试文章3", k=1).hits[0].article.title == "测试文章3"
    assert any("serving it unsaved" in r.getMessage() for r in caplog.records)
    assert store.current_state(index_dir) is None


# Loads the index over and over until told to stop; a failure ends it with a traceback.
READER = """
import sys
from pathlib import Path
from retrieval.index import store
index_dir, stop = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
loads = 0
while not stop.exists():
    assert store.load(index_dir) is not None
    loads += 1
print(loads)
"""


def test_readers_never_see_a_segment_vanish_under_a_writer(tmp_path: Path) -> None:
    # The reader is another process, as the command line beside the bot is. (Two threads of
    # one process loading .npy files at once can also trip CPython 3.11's AST bug gh-106905
    # in numpy's header parsing: a SystemError that says nothing about the index.)
    seeds, index_dir, stop = tmp_path / "seeds", tmp_path / "index", tmp_path / "stop"
    seeds.mkdir()
    write_articles(seeds, 0, 20)
    keeper = IndexKeeper.open(seeds, index_dir)
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(index_dir), str(stop)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "ready\n"
        for number in range(100, 130):
            write_articles(seeds, number, 1)
            assert keeper.refresh()
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 0  # it did read while the writer wrote


@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_an_analyzer_that_has_answered_can_be_sent_to_worker_processes(
    tmp_path: Path, start_method: str
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    write_articles(seeds, 0, 6)
    paths = sorted(seedfile.scan(seeds))
    analyzer = Analyzer.default()
    analyzer.terms("石破茂與川普會談")  # builds the native converter and segmenter it caches

    def parsed(workers: parsing.Workers) -> list[list[tuple[str, int]]]:
        vocab = parsing.Vocabulary()
        files = parsing.parse_files(seeds, paths, analyzer, vocab, workers)
        assert [(f.path, f.error) for f in files] == [(p, None) for p in paths]
        terms = vocab.terms()
        return [
            sorted(
                zip([terms[t] for t in f.passages.term_ids], f.passages.tf.tolist(), strict=True)
            )
            for f in files
        ]

    in_workers = parsed(parsing.Workers(count=2, from_files=1, start_method=start_method))
    assert in_workers == parsed(parsing.Workers(count=1))
    assert all(in_workers)


def test_parsed_files_hold_each_passage_s_terms_one_id_a_term(tmp_path: Path) -> None:
    """A word of two characters (会谈) and the bigram 会谈 are one term, as in rank_bm25."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    write_articles(seeds, 0, 3)
    paths = sorted(seedfile.scan(seeds))
    analyzer = Analyzer.default()
    vocab = parsing.Vocabulary()
    files = parsing.parse_files(seeds, paths, analyzer, vocab, parsing.Workers(count=1))
    terms = vocab.terms()
    assert len(set(terms)) == len(terms)
    word_and_bigram = 0  # passages where 会谈 counts twice: as a word and as a bigram
    for f in files:
        article = read_article(seeds / f.path, f.path)
        expected = parsing.article_terms(article, passages_of(article), analyzer).passage_terms()
        starts = np.r_[0, np.cumsum(f.passages.nnz)]
        for i, passage_terms in enumerate(expected):
            row = slice(starts[i], starts[i + 1])
            names = [terms[t] for t in f.passages.term_ids[row]]
            stored = dict(zip(names, f.passages.tf[row].tolist(), strict=True))
            assert stored == Counter(passage_terms)
            assert f.passage_len[i] == len(passage_terms)
            word_and_bigram += stored.get("会谈", 0) == 2
    assert word_and_bigram
