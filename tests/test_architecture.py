"""The README's architecture map is true of the code: its table names every module and only
modules that exist, and its claims about imports and the environment hold."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = README.split("## Architecture", 1)[1].split("\n## ", 1)[0]
PACKAGES = ("bot", "retrieval")
# what the bot may import of retrieval: its face, and modules that load no numpy (the
# settings check and the command line's mistakes come before the engine loads)
BOT_MAY_IMPORT = {
    "retrieval",
    "retrieval.feeds",
    "retrieval.progress",
    "retrieval.seedfile",
    "retrieval.usage",
    "retrieval.version",
}
# who reads the environment (os.environ, os.getenv), and why the others may not
READS_ENVIRONMENT = {
    "bot/__main__.py",  # hands os.environ to Settings (bot/settings.py parses it) and --check
    "retrieval/cli.py",  # the command line's defaults
    "retrieval/index/keeper.py",  # default_index_dir: XDG_CACHE_HOME
    "retrieval/question/meaning.py",  # the engine's OpenMP wait policy, unless the operator's
}


def _modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (REPO / package).rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _imports(path: Path) -> set[str]:
    """Every module the file imports, absolute (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            else:
                found.add(node.module or "")
    return found


def test_the_table_names_every_module_and_only_modules_that_exist():
    named: set[str] = set()
    for row in re.findall(r"^\| (.+?) \| .+ \|$", ARCHITECTURE, re.M):
        folder = ""
        for cell in re.findall(r"`([^`]+)`", row):
            if "/" in cell:
                folder = cell.rsplit("/", 1)[0] + "/"
                named.add(cell)
            else:
                named.add(folder + cell)  # `build.py` after `retrieval/index/parsing.py`
    for name in named:
        assert (REPO / name).exists(), f"the README names {name}, which does not exist"
    listed = {n for n in named if n.endswith(".py")} | {n for n in named if n.endswith("/")}
    for path in _modules():
        name = _name(path)
        if path.name in ("__init__.py", "__main__.py", "version.py", "models.py"):
            continue  # faces, entry points and the data: named in the prose
        assert name in listed or any(name.startswith(d) for d in listed if d.endswith("/")), (
            f"{name} is not in the README's architecture table"
        )


@pytest.mark.parametrize("path", _modules(), ids=_name)
def test_retrieval_knows_nothing_of_telegram_and_the_bot_only_retrieval_s_face(path):
    imports = _imports(path)
    if _name(path).startswith("retrieval/"):
        assert not {i for i in imports if i.split(".")[0] in ("telegram", "bot")}
    else:
        used = {i for i in imports if i.split(".")[0] == "retrieval"}
        assert used <= BOT_MAY_IMPORT, used - BOT_MAY_IMPORT


def test_the_library_serves_and_searches_and_never_builds_merges_or_keeps():
    imports = _imports(REPO / "retrieval" / "library.py")
    for engine in ("build", "merging", "parsing", "keeper"):
        assert f"retrieval.index.{engine}" not in imports
    assert not any(i.startswith("retrieval.index") for i in _imports_of_package("question"))


def _imports_of_package(package: str) -> set[str]:
    return {i for p in (REPO / "retrieval" / package).glob("*.py") for i in _imports(p)}


def test_only_the_settings_and_the_command_line_read_the_environment():
    readers = set()
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        if re.search(r"\bos\.environ\b|\bos\.getenv\(|\bgetenv\(", text):
            readers.add(_name(path))
    assert readers == READS_ENVIRONMENT


def test_the_vectors_files_are_named_in_one_module_and_no_command_line_in_the_bot():
    for path in _modules():
        text = path.read_text(encoding="utf-8")
        if _name(path) != "retrieval/index/vectors.py":
            assert not re.search(r"vectors-|meaning\.npz", text), _name(path)
        if _name(path).startswith("bot/"):
            assert not re.search(r"""["']-m["'],\s*["']retrieval""", text), _name(path)


def test_the_face_exports_what_it_names_and_each_name_loads():
    import retrieval

    assert set(retrieval.__all__) == set(retrieval._HOMES)
    for name in retrieval.__all__:
        assert getattr(retrieval, name) is not None
