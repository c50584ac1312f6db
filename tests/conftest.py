"""Fixtures for every test: an isolated cache, no proxies, the seed article, ../shared data."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from tests.support import SHARED
from tests.support.seeds import SEED

VOA_TARBALL = SHARED / "corpus" / "voa-zh-2020.tar.xz"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test writes an index into the real cache directory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("SEEDS_DIR", raising=False)
    monkeypatch.delenv("INDEX_DIR", raising=False)
    monkeypatch.delenv("ALIASES_FILE", raising=False)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx honours proxy variables; loopback requests must never leave the machine.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def seed_text() -> str:
    return SEED.read_text(encoding="utf-8")


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    """A seeds directory holding a copy of the seed article."""
    directory = tmp_path / "seeds"
    directory.mkdir()
    shutil.copy(SEED, directory / SEED.name)
    return directory


@pytest.fixture(scope="session")
def voa_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The VOA corpus from ../shared, extracted once per test session."""
    if not VOA_TARBALL.exists():
        pytest.skip("../shared/corpus is not available")
    out = tmp_path_factory.mktemp("voa")
    with tarfile.open(VOA_TARBALL) as tar:
        tar.extractall(out, filter="data")
    return out / "voa-zh-2020"
