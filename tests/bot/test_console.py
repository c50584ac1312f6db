"""`python -m bot --console` at a terminal: Ctrl-C and Ctrl-D end quietly, line editing and
history, and /next with nothing to continue says so."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from bot.console import ConsoleSession
from tests.support.harness import bot_environ
from tests.support.seeds import TYPHOON, write_seeds

ABOUT = "📚 收录了"


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    # as a shell starts a job at its prompt: Ctrl-C interrupts it, even when the tests run
    # as a background job, whose SIGINT is ignored and would be inherited
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Terminal:
    """`python -m bot --console` on a pseudo-terminal, as a person runs it."""

    def __init__(self, tmp_path: Path) -> None:
        seeds = write_seeds(tmp_path / "seeds", TYPHOON)
        environ = bot_environ(SEEDS_DIR=str(seeds), INDEX_DIR=str(tmp_path / "i"), TERM="xterm")
        self.controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "--console"],
            cwd=tmp_path,
            env=environ,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            preexec_fn=_controlling_terminal,  # so that Ctrl-C sends SIGINT, as in a shell
        )
        os.close(terminal)
        self.seen = b""

    def read_until(self, text: str, count: int = 1, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.seen.decode(errors="replace").count(text) < count:
            assert time.monotonic() < deadline, f"no {text!r} in {self.text}"
            assert self.process.poll() is None, self.text
            if select.select([self.controller], [], [], 0.5)[0]:
                self.seen += os.read(self.controller, 65536)

    def read_until_prompt(self, count: int) -> None:
        """Until the console has asked for its `count`th line ("> " at the start of a line;
        answers may hold "> " elsewhere)."""
        self.read_until("\n> ", count)

    def type(self, keys: str) -> None:
        os.write(self.controller, keys.encode())

    def wait(self) -> int:
        deadline = time.monotonic() + 30
        while self.process.poll() is None and time.monotonic() < deadline:
            if select.select([self.controller], [], [], 0.2)[0]:
                try:
                    self.seen += os.read(self.controller, 65536)
                except OSError:  # the terminal closed: the process is ending
                    break
        # it may still be saving what it embedded: on a busy machine that takes a while
        code = self.process.wait(timeout=max(0.0, deadline - time.monotonic()) + 10)
        os.close(self.controller)
        return code

    @property
    def text(self) -> str:
        return self.seen.decode("utf-8", errors="replace")


@pytest.mark.parametrize("key", ["\x03", "\x04"], ids=["ctrl-c", "ctrl-d"])
def test_ctrl_c_and_ctrl_d_end_the_console_quietly(tmp_path, key):
    terminal = Terminal(tmp_path)
    terminal.read_until_prompt(1)
    terminal.type("台风海葵\n")
    terminal.read_until(TYPHOON.title)
    terminal.read_until_prompt(2)
    terminal.type(key)
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.text and "KeyboardInterrupt" not in terminal.text
    # what the question embedded is kept for the next run
    assert list((tmp_path / "i").glob("seg-*/vectors-*.npy"))


def test_the_up_arrow_brings_back_the_last_line(tmp_path):
    pytest.importorskip("readline")
    terminal = Terminal(tmp_path)
    terminal.read_until_prompt(1)
    terminal.type("/about\n")
    terminal.read_until(ABOUT)
    terminal.read_until_prompt(2)
    terminal.type("\x1b[A\n")  # up arrow: /about again, not the escape sequence as a question
    terminal.read_until(ABOUT, count=2)
    # Line editing: two left arrows, then a letter typed in the middle: "/abut" → "/about".
    terminal.type("/abut\x1b[D\x1b[Do\n")
    terminal.read_until(ABOUT, count=3)
    terminal.type("/quit\n")
    assert terminal.wait() == 0
    assert "Traceback" not in terminal.text


def test_next_with_nothing_to_continue_says_so(bot_library):
    session = ConsoleSession(bot_library, "en")
    assert "Nothing to continue" in session.handle("/next")
    assert "expired" not in session.handle("/next")
    session = ConsoleSession(bot_library, "zh-Hans")
    assert "先提一个问题" in session.handle("/next")


def test_commands_that_need_a_chat_say_so_in_the_console(bot_library):
    session = ConsoleSession(bot_library, "en")
    for command in ("/following", "/unfollow 1", "/subscribe", "/autoanswer on"):
        reply = session.handle(command)
        assert reply.startswith(command.split()[0] + " needs a Telegram chat"), reply
    assert "don't know that command" in session.handle("/nonsense")
    assert "要在 Telegram 的聊天里用" in ConsoleSession(bot_library, "zh-Hans").handle("/following")
