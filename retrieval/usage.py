"""What a person at the command line reads from the CLIs (`python -m retrieval`, `python -m
bot`): text safe for a terminal, every mistake as one line in one scheme, counted nouns, and the
command they ran, so that a hint names what works on this machine.

Standard library only: the bot's settings check imports it before numpy and jieba load.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from retrieval.text import printable

# Exit status for a mistake in what was typed or set (a flag, a setting, a path): running it
# again unchanged cannot help, so systemd's Restart=on-failure is told apart by it too.
BAD_INPUT = 2


def one_line(text: str) -> str:
    """`text` as one printable line (its own line breaks and tabs become spaces)."""
    return printable(" ".join(text.split()))


class Mistake(Exception):
    """A mistake in what was typed or set: reported as `error_line(problem, fix)`, exit 2."""

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix

    def line(self) -> str:
        return error_line(self.problem, self.fix)


def error_line(problem: str, fix: str | None = None) -> str:
    """A mistake as every CLI here reports it: `error: <what>, <why>; <fix>` on one line.

    `problem` says what is wrong and why ("-k 0, the count must be a positive number");
    `fix`, when there is one, what to type or set instead."""
    line = f"error: {one_line(problem)}"
    return f"{line}; {one_line(fix)}" if fix else line


def directory_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a directory ("it does not exist", …), None if it can."""
    if not path.exists():
        return "it does not exist"
    if not path.is_dir():
        return "it is not a directory"
    if not os.access(path, os.R_OK | os.X_OK):
        return "it is not readable (permission denied)"
    return None


def file_problem(path: Path) -> str | None:
    """Why `path` cannot be read as a file ("it does not exist", …), None if it can."""
    if not path.exists():
        return "it does not exist"
    if path.is_dir():
        return "it is a directory, not a file"
    if not os.access(path, os.R_OK):
        return "it is not readable (permission denied)"
    return None


_YES, _NO = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def yes_or_no(value: str | None) -> bool | None:
    """A switch as the settings and the command line read it: 1, true, yes or on; 0, false,
    no, off or nothing; None for anything else (any case)."""
    value = (value or "").lower()
    return True if value in _YES else False if value in _NO else None


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """ "1 article", "2 articles" (`plural` for nouns that do not just take an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def command(
    module: str,
    *,
    script: str | None = None,
    argv0: str | None = None,
    executable: str | None = None,
    cwd: Path | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> str:
    """How to run `python -m <module>` here, as the person would type it: the installed
    `script` when that is what ran, or when it is on PATH beside this interpreter; else this
    interpreter as `python` or `python3` when that name finds it, else its path (relative to
    the working directory when it is below it: `.venv/bin/python`). A Debian has no `python`,
    and an unactivated venv's python is not the one on PATH."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = executable or sys.executable
    cwd = cwd or Path.cwd()
    if script is not None:
        if Path(argv0).name == script:  # the console script ran: name it as it was typed
            found = which(script)
            if found and _same(found, argv0):
                return script
            return _typed(argv0, cwd)
        found = which(script)
        if found and os.path.dirname(os.path.abspath(found)) == os.path.dirname(
            os.path.abspath(executable)
        ):
            return script
    for name in ("python", "python3"):
        found = which(name)
        if found and _same(found, executable):
            return f"{name} -m {module}"
    return f"{_typed(executable, cwd)} -m {module}"


def _same(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _typed(path: str, cwd: Path) -> str:
    """A program's path as a shell takes it: relative to `cwd` when below it."""
    absolute = Path(os.path.abspath(path))
    try:
        relative = absolute.relative_to(cwd)
    except ValueError:
        return shlex.quote(str(absolute))
    shown = str(relative) if len(relative.parts) > 1 else f"./{relative}"
    return shlex.quote(shown)
