"""`python -m bot --check`: settings, the saved index read-only, getMe; one line, exit 0 or 1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from retrieval import IndexKeeper
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.harness import run_bot
from tests.support.http import free_port
from tests.support.seeds import RAIL, TYPHOON, write_seeds


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    return write_seeds(tmp_path / "seeds", TYPHOON)


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file below `directory` with its size and modification time."""
    return {
        str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
    }


def check(tmp_path: Path, seeds: Path, index: Path, fake: FakeBotApi | None = None, **env: str):
    env.setdefault("TELEGRAM_BOT_TOKEN", TOKEN)
    if fake is not None:
        env.setdefault("TELEGRAM_API_BASE_URL", fake.api_root)
    return run_bot("--check", cwd=tmp_path, SEEDS_DIR=str(seeds), INDEX_DIR=str(index), **env)


def test_healthy_is_one_line_and_exit_0_and_nothing_is_written(tmp_path, seeds):
    index = tmp_path / "index"
    IndexKeeper.open(seeds, index_dir=index)
    RAIL.write(seeds, "200_new_since.txt")  # the bot would add it; --check must not
    before = snapshot(index)
    with FakeBotApi() as fake:
        result = check(tmp_path, seeds, index, fake, LOG_LEVEL="DEBUG")
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("ok: @ThisBot") and "2 articles" in line and str(index) in line
    assert result.stderr == ""
    assert snapshot(index) == before
    # Only getMe: getUpdates would take updates away from the running bot.
    assert [c.method for c in fake.calls] == ["getMe"]


def test_no_index_yet_is_reported_not_built(tmp_path, seeds):
    index = tmp_path / "index"
    with FakeBotApi() as fake:
        result = check(tmp_path, seeds, index, fake)
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    assert "no index yet" in line
    assert not index.exists()


def test_a_broken_index_is_unhealthy(tmp_path, seeds):
    index = tmp_path / "index"
    IndexKeeper.open(seeds, index_dir=index)
    state = index / (index / "CURRENT").read_text().strip()
    state.write_text("{}")
    with FakeBotApi() as fake:
        result = check(tmp_path, seeds, index, fake)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("unhealthy:") and "index" in line
    assert fake.calls == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"TELEGRAM_BOT_TOKEN": ""}, "TELEGRAM_BOT_TOKEN"),
        ({"RESULTS_PER_PAGE": "lots"}, "RESULTS_PER_PAGE"),  # exit 1 too: Docker reserves 2
        ({"TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{free_port()}"}, "cannot reach"),
        ({"TELEGRAM_BOT_TOKEN": "987654321:AAE-someone-elses_token-xyz"}, "rejected the token"),
    ],
)
def test_each_failure_is_one_line_and_exit_1(tmp_path, seeds, env, expected):
    index = tmp_path / "index"
    with FakeBotApi() as fake:
        result = check(tmp_path, seeds, index, fake, **env)
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("unhealthy:") and expected in line, line
    for secret in (TOKEN, "AAE-someone-elses_token-xyz"):
        assert secret not in result.stderr
    assert not index.exists()


def test_it_checks_through_telegram_proxy(tmp_path, seeds):
    from tests.support.socks import SocksProxy

    with FakeBotApi() as fake, SocksProxy() as proxy:
        result = check(tmp_path, seeds, tmp_path / "index", fake, TELEGRAM_PROXY=proxy.url())
    assert result.returncode == 0, result.stderr
    assert b"/getMe" in proxy.sent()


def test_it_does_not_fall_into_the_terminal_console_without_a_token(tmp_path, seeds):
    """--check is for scripts: no token is a failure even at a terminal, never a console."""
    result = run_bot("--check", cwd=tmp_path, stdin="", SEEDS_DIR=str(seeds))
    assert result.returncode == 1 and "TELEGRAM_BOT_TOKEN" in result.stderr
    assert os.listdir(tmp_path) == ["seeds"]
