"""The passages' vectors beside the index: embedded ahead of questions (newest first, going on
after a restart, new articles first), written by searches, carried over by merges, checked
when read. A ranking depends on the articles alone, and on whether every live passage is
embedded yet: only then do the passages nearest by meaning over the whole archive join it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from retrieval import IndexKeeper, Meaning
from retrieval.index import merging, store, vectors
from retrieval.library import SearchResult, read_for_meaning
from tests.support.seeds import seed_file, write_articles
from tests.test_meaning import BEIRUT, QUESTION, CountingModel

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN rows are pending rows


@pytest.fixture
def seeds(seeds_dir: Path) -> Path:
    title, paragraphs = BEIRUT
    (seeds_dir / "beirut.txt").write_text(
        seed_file(title, "https://news.example/beirut", paragraphs, ms=1_900_000_000_000),
        encoding="utf-8",
    )
    write_articles(seeds_dir, 0, 12)
    return seeds_dir


def _open(seeds: Path, index: Path, model: CountingModel | None = None) -> IndexKeeper:
    return IndexKeeper.open(seeds, index, meaning=Meaning(model or CountingModel(), "model-a"))


def _files(index: Path) -> list[Path]:
    return sorted(index.glob("seg-*/vectors-*.npy"))


def test_every_passage_is_embedded_ahead_newest_article_first(seeds: Path, tmp_path: Path):
    model = CountingModel()
    keeper = _open(seeds, tmp_path / "index", model)
    total = keeper.library.stats().passages
    assert keeper.embed_ahead() == total == len(model.embedded)
    newest = keeper.library.latest(1)[0]
    assert newest.title == BEIRUT[0]
    assert model.embedded[: len(BEIRUT[1])] == [f"{BEIRUT[0]}。{p}" for p in BEIRUT[1]]
    keeper.library.search(QUESTION, k=3)
    assert len(model.embedded) == total  # a question pays only for its own embedding
    assert keeper.embed_ahead() == 0
    assert IndexKeeper.open(seeds, tmp_path / "terms").embed_ahead() == 0  # no model


class StoppingModel(CountingModel):
    """A model that sets `stop` once it has embedded `after` passages: the bot stops."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after = after
        self.stop = threading.Event()

    def passage(self, texts: str | list[str]) -> np.ndarray:
        if len(self.embedded) >= self.after:
            self.stop.set()
        return super().passage(texts)


def test_a_restart_goes_on_where_embedding_stopped(seeds: Path, tmp_path: Path):
    first = StoppingModel(after=9)
    keeper = _open(seeds, tmp_path / "index", first)
    done = keeper.embed_ahead(first.stop)
    keeper.close()
    total = keeper.library.stats().passages
    assert 0 < done < total
    second = CountingModel()
    restarted = _open(seeds, tmp_path / "index", second)
    assert restarted.embed_ahead() == total - done
    assert not set(second.embedded) & set(first.embedded)


def test_rows_a_search_embedded_are_read_after_a_restart_with_the_same_ranking(
    seeds: Path, tmp_path: Path
):
    keeper = _open(seeds, tmp_path / "index")
    first = keeper.library.search(QUESTION, k=5)
    keeper.close()
    model = CountingModel()
    again = _open(seeds, tmp_path / "index", model).library.search(QUESTION, k=5)
    assert again == first and model.embedded == []
    stopping = StoppingModel(after=9)
    ahead = _open(seeds, tmp_path / "ahead", stopping)
    assert 0 < ahead.embed_ahead(stopping.stop) < ahead.library.stats().passages
    assert ahead.library.search(QUESTION, k=5) == first  # embedded ahead or on demand: the same
    ahead.embed_ahead()  # all of it: the nearest by meaning join, the same after a restart
    whole = ahead.library.search(QUESTION, k=5)
    ahead.close()
    assert _open(seeds, tmp_path / "ahead").library.search(QUESTION, k=5) == whole


def test_new_articles_are_embedded_first_after_a_refresh(seeds: Path, tmp_path: Path):
    model = CountingModel()
    keeper = _open(seeds, tmp_path / "index", model)
    keeper.embed_ahead()
    write_articles(seeds, 100, 2)
    assert keeper.refresh()
    before = len(model.embedded)
    assert keeper.embed_ahead() == 12  # two articles of six passages
    assert all("测试文章10" in text for text in model.embedded[before:])


def test_a_merge_carries_the_rows_over(
    seeds: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(merging, "MERGE_FACTOR", 2)  # the merge policy, not the ranking
    monkeypatch.setattr(merging, "FLOOR_PASSAGES", 1_000_000)
    index = tmp_path / "index"
    model = CountingModel()
    keeper = _open(seeds, index, model)
    for start in (100, 200):
        write_articles(seeds, start, 1)
        keeper.refresh()
    (seeds / "00003.txt").unlink()  # a deleted article's rows are not carried over
    keeper.refresh()
    keeper.embed_ahead()
    embedded = len(model.embedded)
    before = keeper.library.search(QUESTION, k=5)
    assert keeper.merge() >= 1
    [merged] = [s for s in store.load(index).segments if s.n_passages > 20]
    rows = np.load(index / f"seg-{merged.name}" / f"vectors-{vectors.model_key('model-a')}.npy")
    assert rows.shape[0] == merged.n_passages and vectors.usable(rows).all()
    assert keeper.embed_ahead() == 0 and len(model.embedded) == embedded
    assert keeper.library.search(QUESTION, k=5) == before


@pytest.mark.parametrize(
    "damage",
    ["nan", "inf", "boosted", "zero", "one-bit", "sealed-boost", "header", "truncated", "shape"],
)
def test_damaged_vectors_are_embedded_again_and_never_change_a_ranking(
    seeds: Path, tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
):
    index = tmp_path / "index"
    keeper = _open(seeds, index)
    words = keeper.library.search(QUESTION, k=5)  # nothing embedded ahead
    keeper.embed_ahead()
    expected = keeper.library.search(QUESTION, k=5)
    keeper.close()
    [path] = _files(index)
    if damage in ("nan", "inf", "boosted", "zero"):
        rows = np.load(path, mmap_mode="r+")
        rows[3, :-2] = {"nan": np.nan, "inf": np.inf, "boosted": 40.0, "zero": 0.0}[damage]
        rows.flush()
        del rows
    elif damage == "one-bit":  # the lowest bit of one number: still nearly a unit vector
        rows = np.load(path, mmap_mode="r+")
        rows.view(np.uint16)[3, 0] ^= 1
        rows.flush()
        del rows
    elif damage == "sealed-boost":  # a planted row, sealed as the bot seals: not a unit vector
        rows = np.load(path, mmap_mode="r+")
        rows[3] = vectors.seal(np.full(rows.shape[1] - 2, 3.0, np.float16))
        rows.flush()
        del rows
    elif damage == "header":
        data = bytearray(path.read_bytes())
        data[12] ^= 0xFF  # inside the header's dictionary
        path.write_bytes(bytes(data))
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.save(path, np.ones((3, 2), np.float16))
    model = CountingModel()
    reopened = _open(seeds, index, model)
    with caplog.at_level(logging.WARNING):
        # by words until the damaged rows are embedded again, then as before
        assert reopened.library.search(QUESTION, k=5) == _as_embedded(reopened, words, expected)
        reopened.embed_ahead()
        assert reopened.library.search(QUESTION, k=5) == expected
    if damage in ("nan", "inf", "boosted", "zero", "one-bit", "sealed-boost"):
        assert len(model.embedded) == 1  # the one bad row, embedded again
    elif damage == "truncated":
        assert model.embedded  # the lost rows read as zeros: not vectors, embedded again
    else:
        assert "unreadable" in caplog.text
    assert vectors.usable(np.load(_files(index)[0])).all()


def test_a_killed_creators_half_made_file_goes_with_the_next_change(seeds: Path, tmp_path: Path):
    index = tmp_path / "index"
    keeper = _open(seeds, index)
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True)  # fmt: skip
    [segment] = index.glob("seg-*")
    killed = segment / f"vectors-{'0' * 12}.npy.{ended.stdout.strip()}.tmp"
    killed.write_bytes(b"half a file")
    making = segment / f"vectors-{'0' * 12}.npy.{os.getpid()}.tmp"  # this process, right now
    making.write_bytes(b"being made")
    old_cache = index / "meaning.npz"  # what versions before these files kept
    old_cache.write_bytes(b"old")
    write_articles(seeds, 300, 1)
    keeper.refresh()  # commits a new state, and collects what is no longer wanted
    assert making.exists() and not killed.exists() and not old_cache.exists()


async def test_the_bot_embeds_ahead_from_its_start_and_stops_with_it(seeds: Path, tmp_path: Path):
    from bot.news import NewsService
    from bot.subscriptions import SubscriptionStore

    model = CountingModel()
    keeper = _open(seeds, tmp_path / "index", model)
    news = NewsService(keeper, SubscriptionStore(tmp_path / "db.sqlite3"), (), None)
    await news.start()
    assert news._embedding is not None
    news._embedding.join(60)
    assert len(model.embedded) == keeper.library.stats().passages
    await news.close()
    assert not news._embedding.is_alive()


def test_the_command_line_embeds_ahead_and_says_what_it_did(seeds: Path, tmp_path: Path):
    from tests.test_cli import run

    index = tmp_path / "index"
    done = run("embed", "--seeds", str(seeds), "--index-dir", str(index))
    assert done.returncode == 0, done.stderr
    passages = IndexKeeper.open(seeds, tmp_path / "terms").library.stats().passages
    assert f"embedded: {passages} passages" in done.stdout
    assert "embedding passages ahead" in done.stderr  # how far it is, as it goes
    again = run("embed", "--seeds", str(seeds), "--index-dir", str(index))
    assert "embedded: 0 passages" in again.stdout


def test_the_command_line_stops_on_sigterm_as_on_ctrl_c_and_keeps_what_it_embedded(
    seeds: Path, tmp_path: Path
):
    """`systemctl stop` (SIGTERM), or a job started with & (which ignores Ctrl-C), ended it
    without a word."""
    import signal
    import time

    from tests.test_cli import REPO

    write_articles(seeds, 100, 40)  # enough that it is still embedding when stopped
    index = tmp_path / "index"
    embedding = subprocess.Popen(
        [sys.executable, "-m", "retrieval", "embed", "--seeds", str(seeds),
         "--index-dir", str(index)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not _files(index) and time.monotonic() < deadline:  # the first rows are written
        time.sleep(0.05)
    embedding.send_signal(signal.SIGTERM)
    out, err = embedding.communicate(timeout=60)
    assert embedding.returncode == 143, err
    assert "stopped: embedded passages are kept; run it again to go on" in err
    assert "Traceback" not in err and "embedded:" not in out
    kept = sum(int(vectors.usable(np.load(path)).sum()) for path in _files(index))
    passages = IndexKeeper.open(seeds, tmp_path / "terms").library.stats().passages
    assert 0 < kept < passages


def test_a_flipped_bit_anywhere_is_rebuilt_or_harmless_and_the_bot_still_starts(
    seeds: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """One bit of each kind of file the index and its vectors write, as a disk or a careless
    hand damages them (benchmarks.bitflips does 300 random ones)."""
    import random
    import shutil

    index = tmp_path / "index"
    keeper = _open(seeds, index)
    write_articles(seeds, 50, 1)
    (seeds / "00002.txt").unlink()  # a second segment, and a deletions file
    keeper.refresh()
    words = keeper.library.search(QUESTION, k=10)
    keeper.embed_ahead()
    keeper.close()
    expected = keeper.library.search(QUESTION, k=10)
    rng = random.Random(7)
    kinds: dict[str, Path] = {}
    for path in sorted(index.rglob("*")):
        if path.is_file() and path.stat().st_size and path.name != "LOCK":
            kinds.setdefault(path.suffix or path.name, path)
    assert {".npy", ".json", ".txt", ".npz", "CURRENT"} <= set(kinds)
    for trial, path in enumerate(kinds.values()):
        damaged = tmp_path / f"damaged-{trial}"
        shutil.copytree(index, damaged)
        target = damaged / path.relative_to(index)
        data = bytearray(target.read_bytes())
        at = rng.randrange(len(data) * 8)
        data[at // 8] ^= 1 << (at % 8)
        target.write_bytes(bytes(data))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            reopened = _open(seeds, damaged)  # never raises: the bot starts
        found = reopened.library.search(QUESTION, k=10)
        assert found == _as_embedded(reopened, words, expected), path.name
        reopened.embed_ahead()
        assert reopened.library.search(QUESTION, k=10) == expected, path.name


def _segments(keeper: IndexKeeper) -> Sequence[store.Segment]:
    return keeper.library._current.index.segments


def _as_embedded(keeper: IndexKeeper, words: SearchResult, whole: SearchResult) -> SearchResult:
    """What a search must give now: as by `words` (the meaning of their candidates included)
    until every live passage is embedded, then as with the whole archive embedded."""
    assert keeper.library.vectors is not None
    return whole if keeper.library.vectors.complete(_segments(keeper)) else words


def _cosines(keeper: IndexKeeper, question: np.ndarray) -> dict[tuple[int, int], float]:
    """Every live passage's cosine with `question` as the model gives it: (segment position,
    passage number) → cosine."""
    index = keeper.library._current.index
    cosines = {}
    for i, segment in enumerate(index.segments):
        for number in range(segment.n_articles):
            article, passages = segment.article(number)
            start = int(segment.arrays["article_passage_start"][number])
            for row, passage in enumerate(passages, start):
                if segment.live_passages[row]:
                    meant = CountingModel()._vector(read_for_meaning(article, passage))
                    cosines[(i, row)] = float(meant @ question)
    return cosines


def test_the_nearest_by_meaning_are_the_live_passages_nearest_once_all_are_embedded(
    seeds: Path, tmp_path: Path
):
    stopping = StoppingModel(after=9)
    keeper = _open(seeds, tmp_path / "index", stopping)
    passage_vectors = keeper.library.vectors
    assert passage_vectors is not None
    question = CountingModel()._vector("问" * 30)
    keeper.embed_ahead(stopping.stop)
    assert passage_vectors.nearest(question, 5, _segments(keeper)) == []  # not all embedded
    keeper.embed_ahead()
    (seeds / "beirut.txt").unlink()  # a deleted article's passages are never among them
    keeper.refresh()
    nearest = passage_vectors.nearest(question, 5, _segments(keeper))
    cosines = _cosines(keeper, question)
    assert len(nearest) >= 5 and len(cosines) > len(nearest)
    assert [c for c, _, _ in nearest] == sorted((c for c, _, _ in nearest), reverse=True)
    chosen = {(i, p) for _, i, p in nearest}
    assert chosen <= set(cosines)
    for cosine, i, passage in nearest:
        assert cosine == pytest.approx(cosines[(i, passage)], abs=2e-3)  # stored as float16
    assert (
        min(cosines[p] for p in chosen)
        >= max(c for p, c in cosines.items() if p not in chosen) - 2e-3
    )


def test_a_new_article_joins_the_nearest_once_it_is_embedded(seeds: Path, tmp_path: Path):
    keeper = _open(seeds, tmp_path / "index")
    passage_vectors = keeper.library.vectors
    assert passage_vectors is not None
    question = CountingModel()._vector("问" * 30)
    keeper.embed_ahead()
    assert passage_vectors.nearest(question, 3, _segments(keeper))
    write_articles(seeds, 100, 1)
    keeper.refresh()
    assert passage_vectors.nearest(question, 3, _segments(keeper)) == []  # not embedded yet
    keeper.embed_ahead()
    # the rows it compares with were read as embedding finished, not by the next question
    assert set(passage_vectors._float_rows) == {s.name for s in _segments(keeper)}
    every = passage_vectors.nearest(question, 1000, _segments(keeper))
    assert len(every) == keeper.library.stats().passages
    assert {i for _, i, _ in every} == set(range(len(_segments(keeper))))
