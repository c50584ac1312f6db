"""The deployment kit in deploy/: the Dockerfile linted (hadolint) and checked for what the
README promises, the compose file read, the systemd unit verified by systemd-analyze. What
they run (`python -m bot`, `--check`, `--version`) is tested for real elsewhere; the image is
not built here: base images cannot be pulled on the test machines."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import REPO

DEPLOY = REPO / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
VOLUMES = {"/data/seeds", "/data/index", "/data/db"}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _tool(name: str) -> str | None:
    """A command from this Python's environment (a venv's bin/ is not always on PATH)."""
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


def test_hadolint_finds_nothing():
    hadolint = _tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (the test extras bring it on Linux x86_64/aarch64)")
    done = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_slim_non_root_volumes_and_a_health_check_with_check():
    steps = _instructions(DOCKERFILE)
    [base] = [args for op, args in steps if op == "FROM"]
    assert re.fullmatch(r"python:3\.1[1-9]-slim", base)
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    [volume] = [args for op, args in steps if op == "VOLUME"]
    assert set(re.findall(r'"([^"]+)"', volume)) == VOLUMES
    env = " ".join(args for op, args in steps if op == "ENV")
    # The bot's default is loopback; inside a container the published port is the boundary.
    for setting in ("SEEDS_DIR=/data/seeds", "INDEX_DIR=/data/index", "WEBHOOK_LISTEN=0.0.0.0"):
        assert setting in env
    assert "SUBSCRIPTIONS_DB=/data/db/" in env
    [health] = [args for op, args in steps if op == "HEALTHCHECK"]
    assert health.endswith('CMD ["python", "-m", "bot", "--check"]')
    [command] = [args for op, args in steps if op == "CMD"]
    assert command == '["python", "-m", "bot"]'
    # What the image copies exists, and its build context lets exactly that in.
    copied = [args.split()[-2] for op, args in steps if op == "COPY" and "--chown" not in args]
    for source in ["pyproject.toml", "README.md", "LICENSE", "bot", "retrieval", "seeds"]:
        assert (REPO / source).exists()
    assert {"bot", "retrieval"} <= set(copied)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8")
    for source in ["pyproject.toml", "README.md", "LICENSE", "bot/", "retrieval/", "seeds/"]:
        assert f"!{source}" in ignore


def test_compose_builds_the_image_with_volumes_and_the_container_paths():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert (DEPLOY / bot["build"]["context"] / bot["build"]["dockerfile"]).is_file()
    assert bot["env_file"] == "../.env" and bot["restart"] == "unless-stopped"
    mounts = {m.split(":")[1]: m.split(":")[0] for m in bot["volumes"]}
    assert set(mounts) == VOLUMES and set(mounts.values()) <= set(compose["volumes"])
    # Win over .env's relative paths, which mean nothing inside the container.
    assert bot["environment"]["SEEDS_DIR"] == "/data/seeds"
    assert bot["environment"]["INDEX_DIR"] == "/data/index"
    assert bot["environment"]["SUBSCRIPTIONS_DB"].startswith("/data/db/")
    assert bot["environment"]["WEBHOOK_LISTEN"] == "0.0.0.0"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_the_systemd_unit_verifies(tmp_path):
    """With ExecStart (and ExecStartPre) pointed at an executable that exists here."""
    unit = (DEPLOY / "news-qa-bot.service").read_text(encoding="utf-8")
    executable = "/opt/news-qa-bot/.venv/bin/news-qa-bot"
    assert f"ExecStart={executable}\n" in unit
    here = _tool("news-qa-bot") or sys.executable
    copy = tmp_path / "news-qa-bot.service"
    copy.write_text(unit.replace(executable, here), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # systemd-analyze exits 0 even for directives it ignores: any word about the unit counts.
    problems = [line for line in done.stderr.splitlines() if copy.name in line]
    assert done.returncode == 0 and problems == [], done.stderr
    for directive in ("User=news-qa-bot", "StateDirectory=", "CacheDirectory=", "XDG_CACHE_HOME"):
        assert directive in unit


def _pins() -> dict[str, str]:
    """deploy/constraints.txt: normalised package name → pinned version."""
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        if line:
            name, pinned = line.split("==")
            pins[canonicalize_name(name)] = pinned.strip()
    return pins


def test_the_deployment_installs_pinned_versions_that_satisfy_pyproject():
    """The kit installs what CI tested (`pip install -c deploy/constraints.txt`), and the pins
    cover every dependency pyproject declares, within its bounds: a bound changed without
    refreshing the file (the command in its header) fails here."""
    assert "-c deploy/constraints.txt" in DOCKERFILE
    pins = _pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for declared in map(Requirement, project["dependencies"]):
        name = canonicalize_name(declared.name)
        assert name in pins, f"{name} is not pinned in deploy/constraints.txt"
        assert declared.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {declared}"
    header = (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines()[1]
    assert "uv pip compile" in header and "pyproject.toml -o deploy/constraints.txt" in header


def test_the_systemd_unit_allows_the_open_files_the_bot_may_need():
    """Webhook connections (capped), concurrent updates' Bot API connections, feeds, the index:
    systemd's default soft limit of 1024 is too close (issue 23)."""
    from bot.fairness import MAX_CONCURRENT_UPDATES
    from bot.webhook import MAX_CONNECTIONS

    unit = (DEPLOY / "news-qa-bot.service").read_text(encoding="utf-8")
    [limit] = re.findall(r"^LimitNOFILE=(\d+)$", unit, re.M)
    assert int(limit) >= 4 * (MAX_CONNECTIONS + MAX_CONCURRENT_UPDATES)
