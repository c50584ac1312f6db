"""The index directory is the index's alone: other files are never removed, and a directory
that holds them is refused with one line, through every entry point that opens an index."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval import IndexKeeper
from retrieval.index import store
from tests.support import REPO

# What a user's folder may hold beside an index: hidden files, folders, the seeds themselves.
OTHERS = (".env", ".git/HEAD", "notes.txt", "seeds-backup/a.txt")


def _plant(folder: Path) -> None:
    for name in OTHERS:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine", encoding="utf-8")


def _intact(folder: Path) -> bool:
    return all((folder / name).read_text(encoding="utf-8") == "mine" for name in OTHERS)


def _run(module: str, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
        stdin=subprocess.DEVNULL,
        timeout=180,
    )


@pytest.mark.parametrize(
    "verb",
    [("search", "石破"), ("latest",), ("stats",), ("merge",), ("embed",)],
    ids=lambda v: v[0],
)
def test_every_cli_verb_refuses_a_folder_that_holds_other_files(tmp_path, seeds_dir, verb):
    _plant(tmp_path)
    result = _run(
        "retrieval", verb[0], "--seeds", str(seeds_dir), "--index-dir", ".", *verb[1:],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: index directory") and "holds other files" in line
    assert ".env" in line and not result.stdout
    assert _intact(tmp_path) and not (tmp_path / "CURRENT").exists()


def test_the_bot_refuses_index_dir_dot_beside_its_seeds_and_loses_nothing(tmp_path, seeds_dir):
    _plant(tmp_path)
    result = _run("bot", "--console", cwd=tmp_path, SEEDS_DIR=str(seeds_dir), INDEX_DIR=".")
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "INDEX_DIR" in line and "holds other files" in line
    assert _intact(tmp_path) and sorted(p.name for p in seeds_dir.iterdir()) != []
    check = _run(
        "bot", "--check", cwd=tmp_path, SEEDS_DIR=str(seeds_dir), INDEX_DIR=".",
        TELEGRAM_BOT_TOKEN="123456:" + "A" * 35,
    )  # fmt: skip
    assert check.returncode == 1 and "holds other files" in check.stderr


def test_an_index_directory_that_is_a_file_is_one_line_and_exit_2(tmp_path, seeds_dir):
    (tmp_path / "index").write_text("not a folder", encoding="utf-8")
    result = _run(
        "retrieval", "search", "--seeds", str(seeds_dir), "--index-dir", "index", "石破",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "is a file, not a directory" in line
    assert (tmp_path / "index").read_text(encoding="utf-8") == "not a folder"


def test_an_index_of_its_own_and_an_empty_folder_are_accepted(tmp_path, seeds_dir):
    (tmp_path / "empty").mkdir()
    IndexKeeper.open(seeds_dir, tmp_path / "empty")
    assert (tmp_path / "empty" / "CURRENT").exists()
    IndexKeeper.open(seeds_dir, tmp_path / "empty")  # its own index, opened again
    only_vectors = tmp_path / "vectors"
    only_vectors.mkdir()
    (only_vectors / "meaning.npz").write_bytes(b"")  # an earlier version's vectors file
    store.check_index_dir(only_vectors)
    older = tmp_path / "older"
    (older / "gen-20250101000000-abc").mkdir(parents=True)
    (older / "CURRENT").write_text("gen-20250101000000-abc", encoding="utf-8")
    IndexKeeper.open(seeds_dir, older)  # format 10 and before: rebuilt in place
    assert not (older / "gen-20250101000000-abc").exists()


def _another_article(seeds_dir: Path) -> None:
    text = next(seeds_dir.iterdir()).read_text(encoding="utf-8")
    (seeds_dir / "another.txt").write_text(text.replace("7969986", "7969987"), encoding="utf-8")


def test_files_put_into_an_open_index_stop_its_saves_not_its_answers(tmp_path, seeds_dir):
    index = tmp_path / "index"
    keeper = IndexKeeper.open(seeds_dir, index)
    library = keeper.library
    (index / "keep.txt").write_text("mine", encoding="utf-8")
    saved = store.current_state(index)
    _another_article(seeds_dir)
    assert keeper.refresh()  # served from memory, nothing written
    assert library.stats().articles == 2 and store.current_state(index) == saved
    assert (index / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_clean_up_removes_only_the_index_s_own_names(tmp_path, seeds_dir):
    index = tmp_path / "index"
    IndexKeeper.open(seeds_dir, index)
    # files a user put there, and what a killed writer left
    (index / "keep.txt").write_text("mine", encoding="utf-8")
    (index / ".hidden").mkdir()
    (index / "seg-20250101000000-deadbeef").mkdir()  # a half-written segment
    (index / "state-00000000.json").write_text("{}", encoding="utf-8")
    store.commit(index, store.load(index))  # commits, then collects garbage
    assert (index / "keep.txt").read_text(encoding="utf-8") == "mine"
    assert (index / ".hidden").is_dir()
    assert not (index / "seg-20250101000000-deadbeef").exists()
    assert not (index / "state-00000000.json").exists()


@pytest.mark.parametrize(
    "name",
    ["LOCK", "CURRENT", ".CURRENT.12", "state-00000012.json", "seg-20250101-ab12",
     "gen-20250101-x", "merging-77-20250101-ab", "meaning.npz", "meaning-77.tmp"],
)  # fmt: skip
def test_the_index_s_own_names(name):
    assert store.OWN_NAME.match(name)


@pytest.mark.parametrize(
    "name", [".git", ".env", "seeds", "state-1.json", "seg-Upper", "README.md", "meaning.npz.bak"]
)
def test_names_that_are_not_the_index_s(name):
    assert not store.OWN_NAME.match(name)
