"""Packaging and hygiene: one version, the license, the changelog, a README that stands on its
own and whose commands are the ones CI runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.harness import bot_environ

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
README = (REPO / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("module", ["bot", "retrieval"])
def test_both_entry_points_print_the_one_version(module):
    done = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        cwd=REPO,
        env=bot_environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"news-qa-bot {PYPROJECT['project']['version']}"
    assert version("news-qa-bot") == PYPROJECT["project"]["version"]


def test_the_installed_script_says_which_seeds_dir_it_needs_outside_the_checkout(tmp_path):
    """`news-qa-bot` (or `python -m bot`) run anywhere but the repository root."""
    script = shutil.which("news-qa-bot", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "bot"]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        env=bot_environ(TELEGRAM_BOT_TOKEN="123456789:AAE-not-a-real-token-at-all"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "SEEDS_DIR is not set" in line and "./seeds" in line and str(tmp_path) in line


def test_mit_license_in_the_repository_and_the_metadata():
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License")
    assert "News Q&A bot contributors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    assert PYPROJECT["project"]["license"] == "MIT"
    assert PYPROJECT["project"]["license-files"] == ["LICENSE"]
    # The benchmark data beside the repository is not shipped.
    assert PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"] == ["bot*", "retrieval*"]


def test_changelog_keeps_a_changelog():
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert text.startswith("# Changelog")
    assert "## [Unreleased]" in text and "### Added" in text


def test_the_readme_stands_on_its_own():
    assert "DESIGN.md" not in README
    assert "../shared" in README and "CMRC 2018" in README  # where the benchmarks' data is from
    for name in ("Operating it", "What to back up", "Where the index lives"):
        assert name in README


def test_readme_commands_use_a_venv_and_ci_runs_the_test_command():
    blocks = re.findall(r"```\n(.*?)\n```", README.split("## Two commands")[1], re.S)
    run_command, test_command = blocks[0], blocks[1]
    assert run_command.startswith("python3 -m venv .venv && .venv/bin/python -m pip install")
    assert test_command.startswith("python3 -m venv .venv && .venv/bin/python -m pip install")
    assert test_command.endswith("-m pytest -q")
    assert "python3-venv" in README.split("## Two commands")[1].split("```")[0]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert test_command in ci.splitlines()


def test_the_readme_json_example_is_real_output():
    """Not shortened: the same passage, title, section and link as the command prints for the
    seed article (the score is left out: ranking work may change it)."""
    line = next(line for line in README.splitlines() if line.startswith('{"query": "LNG"'))
    assert "…" not in line
    done = subprocess.run(
        [sys.executable, "-m", "retrieval", "search", "-k", "1", "--json"],
        cwd=REPO,
        env=bot_environ(),
        input="LNG\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    [shown], [printed] = json.loads(line)["hits"], json.loads(done.stdout)["hits"]
    assert shown.keys() == printed.keys()
    for key in ("text", "title", "section", "url", "published", "passage_id"):
        assert shown[key] == printed[key], key
