"""Settings, and `python -m bot` / `python -m bot --console` as a user runs them."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.settings import DEFAULT_API_ROOT, Settings, SettingsError
from tests.support import REPO
from tests.support.fake_bot_api import TOKEN, FakeBotApi
from tests.support.harness import (
    bot_environ,
    bot_process,
    run_bot,
    setting_names,
    wait_while_running,
)
from tests.support.seeds import SEED_TITLE, SEED_URL, TYPHOON, write_seeds


def test_defaults():
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert settings.seeds_dir == Path("seeds")
    assert settings.index_dir is None
    assert settings.api_root == DEFAULT_API_ROOT
    assert settings.base_url == "https://api.telegram.org/bot"
    assert (settings.results_per_page, settings.reload_seconds) == (3, 30.0)
    assert settings.questions_per_minute == 20
    assert settings.admin_user_ids == frozenset()
    assert settings.log_level == "INFO"
    assert settings.webhook_url is None
    assert TOKEN not in repr(settings)


def test_values_are_read():
    settings = Settings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "SEEDS_DIR": "/data/seeds",
            "INDEX_DIR": "/cache/idx",
            "TELEGRAM_API_BASE_URL": "http://localhost:8081/bot/",
            "RESULTS_PER_PAGE": "5",
            "ADMIN_USER_IDS": "1, 2 3",
            "LOG_LEVEL": "debug",
            "RELOAD_SECONDS": "0",
            "WEBHOOK_URL": "https://bot.example.org/hook",
            "WEBHOOK_PORT": "8080",
            "WEBHOOK_SECRET": "abc_DEF-1",
        }
    )
    assert settings.api_root == "http://localhost:8081"
    assert settings.base_url == "http://localhost:8081/bot"
    assert settings.index_dir == Path("/cache/idx")
    assert settings.admin_user_ids == {1, 2, 3}
    assert (settings.log_level, settings.reload_seconds) == ("DEBUG", 0.0)
    assert (settings.webhook_path, settings.webhook_port) == ("hook", 8080)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RESULTS_PER_PAGE", "zero"),
        ("RESULTS_PER_PAGE", "0"),
        ("RESULTS_PER_PAGE", "50"),
        ("QUESTIONS_PER_MINUTE", "-1"),
        ("QUESTIONS_PER_MINUTE", "lots"),
        ("ADMIN_USER_IDS", "12,bob"),
        ("LOG_LEVEL", "LOUD"),
        ("RELOAD_SECONDS", "-1"),
        ("TELEGRAM_API_BASE_URL", "localhost:8081"),
        ("WEBHOOK_URL", "http://insecure.example.org/hook"),
        ("WEBHOOK_PORT", "70000"),
        ("WEBHOOK_SECRET", "has spaces"),
        ("WEBHOOK_LISTEN", "999.1.1.1"),
        ("WEBHOOK_LISTEN", "no-such-host.invalid"),
        ("TELEGRAM_PROXY", "ftp://proxy.example:21"),
        ("TELEGRAM_PROXY", "socks5://proxy.example"),
        ("FEED_PROXY", "proxy.example:3128"),
        ("START_RETRY_SECONDS", "soon"),
        ("FEED_ALLOW_PRIVATE", "maybe"),
    ],
)
def test_an_invalid_value_is_reported_on_one_line_naming_the_setting(name, value):
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "WEBHOOK_URL": "https://bot.example.org/hook",
        "WEBHOOK_SECRET": "s",
        name: value,
    }
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    assert str(error.value).startswith(name)
    assert "\n" not in str(error.value)


def test_webhook_needs_a_secret():
    with pytest.raises(SettingsError, match=r"^WEBHOOK_SECRET"):
        Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_URL": "https://x.org/h"})


def test_a_malformed_token_is_rejected_without_echoing_it():
    bad = "123456789:short"
    with pytest.raises(SettingsError, match=r"^TELEGRAM_BOT_TOKEN") as error:
        Settings.from_env({"TELEGRAM_BOT_TOKEN": bad})
    assert bad not in str(error.value)


def test_every_setting_is_in_env_example_and_in_the_readme_table():
    names = setting_names()
    assert {"TELEGRAM_BOT_TOKEN", "ALIASES_FILE", "SUBSCRIPTIONS_DB"} <= names
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for name in sorted(names):
        assert re.search(rf"^{name}=", example, re.M), f"{name} is not in .env.example"
        assert f"\n| `{name}` |" in readme, f"{name} is not in the README's settings table"


def test_without_a_token_it_exits_2_and_says_how_to_get_one(tmp_path):
    result = run_bot(cwd=tmp_path)
    assert result.returncode == 2
    assert "BotFather" in result.stderr and ".env" in result.stderr
    assert result.stdout == ""


def test_without_a_token_at_a_terminal_it_says_how_and_lets_you_try_it(tmp_path):
    """The README's run command on a fresh machine: no token, a person at a terminal."""
    seeds = write_seeds(tmp_path / "seeds", TYPHOON)
    environ = bot_environ(SEEDS_DIR=str(seeds), INDEX_DIR=str(tmp_path / "i"))
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,
        env=environ,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while b"> " not in seen and time.monotonic() < deadline and proc.poll() is None:
        if select.select([controller], [], [], 1)[0]:
            seen += os.read(controller, 65536)
    os.write(controller, "石破茂访问白宫\n/quit\n".encode())
    while time.monotonic() < deadline and proc.poll() is None:
        if select.select([controller], [], [], 1)[0]:
            try:
                seen += os.read(controller, 65536)
            except OSError:  # the terminal closed with the process
                break
    assert proc.wait(timeout=30) == 0
    os.close(controller)
    text = seen.decode("utf-8", errors="replace")
    assert "BotFather" in text
    assert SEED_TITLE in text


def test_settings_come_from_a_dotenv_file_and_errors_exit_2(tmp_path):
    (tmp_path / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nRESULTS_PER_PAGE=many\n")
    result = run_bot(cwd=tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "RESULTS_PER_PAGE" in line and TOKEN not in result.stderr
    result = run_bot(cwd=tmp_path, RESULTS_PER_PAGE="2", SEEDS_DIR="missing")
    assert result.returncode == 2 and "SEEDS_DIR" in result.stderr


def test_console_mode_answers_questions_without_a_token(tmp_path):
    seeds = write_seeds(tmp_path / "seeds", TYPHOON)
    stdin = "石破茂访问白宫\n/latest 2\n🙂\n/about\n"
    result = run_bot(
        "--console",
        cwd=tmp_path,
        stdin=stdin,
        SEEDS_DIR=str(seeds),
        INDEX_DIR=str(tmp_path / "i"),
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert SEED_TITLE in out and f"voachinese.com ({SEED_URL})" in out
    assert out.index(TYPHOON.title, out.index("🗞")) < out.index(SEED_TITLE, out.index("🗞"))
    assert "没有找到" in out and "2 篇文章" in out
    assert "<b>" not in out and "&amp;" not in out


def test_python_m_bot_polls_registers_commands_and_stops_cleanly_on_sigterm(tmp_path):
    seeds = write_seeds(tmp_path / "seeds")
    with FakeBotApi() as fake:
        environ = bot_environ(
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=fake.api_root,
            SEEDS_DIR=str(seeds),
            INDEX_DIR=str(tmp_path / "index"),
            LOG_LEVEL="DEBUG",  # even debug logs must not contain the token
        )
        with bot_process(tmp_path, environ) as process:
            deadline = time.monotonic() + 30
            wait_while_running(process, lambda: fake.calls_to("getUpdates"), deadline)
            user = fake.user(9001)
            question = fake.send_text(fake.private_chat(user), user, "石破茂访问白宫")
            wait_while_running(process, lambda: fake.replies_to(question), deadline)
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert fake.calls_to("setMyCommands")
    assert TOKEN not in stderr and TOKEN.split(":")[1] not in stderr
    assert "stopped" in stderr


def test_the_webhook_server_listens_on_loopback_unless_told_otherwise():
    """Issue 23: it listened on every interface by default; a TLS proxy on the same host is
    what the README describes (the Docker image and compose set 0.0.0.0 themselves)."""
    assert Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}).webhook_listen == "127.0.0.1"
    assert Settings().webhook_listen == "127.0.0.1"
    chosen = {"TELEGRAM_BOT_TOKEN": TOKEN, "WEBHOOK_LISTEN": "0.0.0.0"}
    assert Settings.from_env(chosen).webhook_listen == "0.0.0.0"


def test_a_missing_env_file_is_an_error_not_ignored(tmp_path):
    seeds = write_seeds(tmp_path / "seeds")
    missing = tmp_path / "no-such.env"
    result = run_bot("--console", "--env-file", str(missing), cwd=tmp_path, stdin="",
                     SEEDS_DIR=str(seeds), INDEX_DIR=str(tmp_path / "i"))  # fmt: skip
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: --env-file {missing}, it does not exist; ")
    check = run_bot("--check", "--env-file", str(missing), cwd=tmp_path)
    assert check.returncode == 1 and check.stderr.startswith("unhealthy: --env-file")


def test_every_bad_setting_is_reported_together_one_line_each(tmp_path):
    env = {"RESULTS_PER_PAGE": "three", "WEBHOOK_URL": "http://x.org/h", "WEBHOOK_SECRET": "s"}
    with pytest.raises(SettingsError) as error:
        Settings.from_env(env)
    names = [problem.split(" ", 1)[0] for problem in error.value.problems]
    assert names == ["TELEGRAM_BOT_TOKEN", "WEBHOOK_URL", "RESULTS_PER_PAGE"]
    assert "WEBHOOK_URL must be an https:// URL, got 'http://x.org/h'" in error.value.problems
    for args, prefix, status in ((), "error: ", 2), (("--check",), "unhealthy: ", 1):
        result = run_bot(*args, cwd=tmp_path, **env)
        assert result.returncode == status
        lines = result.stderr.splitlines()
        assert [line.split(" ", 2)[1] for line in lines] == names, result.stderr
        assert all(line.startswith(prefix) for line in lines)


def test_the_bot_says_it_builds_the_index_before_it_starts(tmp_path):
    seeds = write_seeds(tmp_path / "seeds")
    result = run_bot("--console", cwd=tmp_path, stdin="", SEEDS_DIR=str(seeds),
                     INDEX_DIR=str(tmp_path / "index"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    building, built = result.stderr.splitlines()[:2]
    assert f"INFO bot: building the index of {seeds} in {tmp_path / 'index'}" in building
    assert built.endswith("INFO retrieval.index.keeper: index: 1 article, 20 passages")
    again = run_bot("--console", "--quiet", cwd=tmp_path, stdin="", SEEDS_DIR=str(seeds),
                    INDEX_DIR=str(tmp_path / "index"))  # fmt: skip
    assert again.returncode == 0 and "loading the index in" in again.stderr
