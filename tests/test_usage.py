"""What the CLIs tell a person: hints name the command that works on this machine, and every
mistake is one `error: <what>, <why>; <fix>` line."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from retrieval.usage import command, counted, error_line
from tests.support.harness import bot_environ


def _program(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    return str(path)


@pytest.fixture
def machine(tmp_path: Path) -> dict[str, str]:
    """A project with an unactivated venv, on a system whose only python is python3."""
    return {
        "venv": _program(tmp_path / "project" / ".venv" / "bin" / "python"),
        "script": _program(tmp_path / "project" / ".venv" / "bin" / "news-qa-bot"),
        "system": _program(tmp_path / "usr" / "bin" / "python3"),
        "project": str(tmp_path / "project"),
    }


def test_an_unactivated_venv_is_named_by_its_path_from_where_the_user_is(machine):
    def which(name: str) -> str | None:
        return machine["system"] if name == "python3" else None  # a Debian: no `python`

    project = Path(machine["project"])
    ran = {"argv0": "-m", "executable": machine["venv"], "which": which}
    assert command("bot", cwd=project, **ran) == ".venv/bin/python -m bot"
    assert command("retrieval", cwd=project / "sub", **ran) == f"{machine['venv']} -m retrieval"


def test_python_on_path_and_the_installed_script_are_named_as_typed(machine):
    on_path = {"python": machine["venv"], "news-qa-bot": machine["script"]}
    project = Path(machine["project"])
    # the venv activated: `python` is this interpreter
    ran = {"argv0": "-m", "executable": machine["venv"], "cwd": project}
    assert command("retrieval", which=on_path.get, **ran) == "python -m retrieval"
    # `python -m bot` while the project's own news-qa-bot is on PATH: the script
    assert command("bot", script="news-qa-bot", which=on_path.get, **ran) == "news-qa-bot"
    # the script ran without being on PATH: its path, as typed from here
    ran["argv0"] = machine["script"]
    assert command("bot", script="news-qa-bot", which={}.get, **ran) == ".venv/bin/news-qa-bot"


def test_the_no_token_hint_names_a_command_that_runs_here(tmp_path):
    """`python -m bot` on a PATH without any python (an unactivated venv run by its path): the
    hint's command still works as printed."""
    empty = tmp_path / "bin"
    empty.mkdir()
    environ = bot_environ(PATH=str(empty))
    done = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=environ, capture_output=True, text=True
    )
    assert done.returncode == 2
    hint = done.stderr.split("without a token: ", 1)[1].strip()
    assert hint.endswith(" --console")
    works = subprocess.run(
        [*shlex.split(hint.removesuffix(" --console")), "--version"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
    )
    assert works.returncode == 0 and works.stdout.startswith("news-qa-bot "), works.stderr


def test_one_error_line_and_counted_nouns():
    assert error_line("-k 0, the count\nmust be positive", "e.g. -k 5") == (
        "error: -k 0, the count must be positive; e.g. -k 5"
    )
    assert [counted(n, "article") for n in (0, 1, 2)] == ["0 articles", "1 article", "2 articles"]
