"""`python -m bot --console`: the bot's question answering in a terminal, no token needed."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from typing import TextIO

from retrieval import Library

from . import commands, render, replies
from .conversation import Asked, timed_context
from .i18n import Lang, t

ANSI_BOLD = ("\033[1m", "\033[0m")
CONSOLE_BOT_NAME = "ThisBot"


class ConsoleSession:
    """Turns one input line into the plain-text version of the reply the bot would send."""

    def __init__(
        self,
        library: Library,
        lang: Lang,
        per_page: int = 3,
        bold: tuple[str, str] = ("", ""),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.library = library
        self.lang = lang
        self.per_page = per_page
        self.bold = bold
        self.clock = clock  # follow-ups come within FOLLOW_UP_SECONDS, as in a private chat
        self.asked: Asked | None = None  # the last question, as it was read
        self.page = 0

    def handle(self, line: str) -> str | None:
        """The reply to `line`, or None for an empty line."""
        line = line.strip()
        if not line:
            return None
        word, _, rest = line.partition(" ")
        if not word.startswith("/"):
            html = self._ask(line)
        else:
            name = word[1:].split("@", 1)[0].lower()
            command = commands.find(name)
            if command is not None and command.console:
                html = getattr(self, command.name)(rest)
            elif name in commands.NEXT.names:  # /next: the page buttons' stand-in
                html = self._next_page()
            elif command is not None:  # /subscribe, /following…: they need a chat
                html = t(self.lang, "console_needs_a_chat", command=f"/{command.name}")
            else:
                html = t(self.lang, "unknown_command")
        return render.to_plain(html, bold=self.bold)

    # ---- the commands (see commands.py); each takes the text after the command -------------

    def ask(self, rest: str) -> str:
        return self._ask(rest)

    def latest(self, rest: str) -> str:
        return replies.latest(self.library, rest, self.lang)

    def about(self, rest: str) -> str:
        return replies.about(self.library, self.lang, admin=True)

    def follow(self, rest: str) -> str:
        """What following a topic would have pushed lately (the console has no chat to
        follow in): the passages of the last FOLLOW_PREVIEW_DAYS that answer it."""
        return replies.follow_preview(self.library, rest, self.lang)

    def help(self, rest: str) -> str:
        return replies.help_text(self.library, self.lang, CONSOLE_BOT_NAME, console=True)

    def _next_page(self) -> str:
        """The next page of the last question, read as it was (a follow-up keeps its context)."""
        if self.asked is None:
            return t(self.lang, "nothing_to_continue")
        return self._page(self.asked, self.page + 1)

    def _ask(self, question: str) -> str:
        """A new question, which may follow up on the last one, as in a private chat."""
        question = replies.clean_question(question)
        if not question:
            return replies.ask_usage(self.library, self.lang)
        at = self.clock()
        context = timed_context(self.asked, question, at)
        return self._page(Asked(question, context, at=at), 0)

    def _page(self, asked: Asked, page: int) -> str:
        result = replies.answer(
            self.library,
            asked.question,
            self.lang,
            context=asked.context,
            page=page,
            per_page=self.per_page,
        )
        self.asked, self.page = replace(asked, context=result.context), result.page
        if result.has_more:
            return result.html + "\n\n(/next ›)"
        return result.html


def run_console(library: Library, lang: Lang, per_page: int, stdin: TextIO, stdout: TextIO) -> int:
    """Read questions from stdin until EOF (or /quit, Ctrl-D, Ctrl-C); print each reply."""
    interactive = stdin.isatty()
    bold = ANSI_BOLD if stdout.isatty() else ("", "")
    session = ConsoleSession(library, lang, per_page, bold)
    read = _line_reader(stdin, stdout, interactive)
    if interactive:
        print(render.to_plain(render.help_intro(lang, library.stats().articles)), file=stdout)
        print("(/help, /latest, /about, /next, /quit)", file=stdout)
    while True:
        try:
            line = read()
        except (KeyboardInterrupt, EOFError):  # Ctrl-C, Ctrl-D: goodbye, no traceback
            if interactive:
                print(file=stdout)
            return 0
        if line is None or line.strip() in {f"/{name}" for name in commands.QUIT.names}:
            return 0
        reply = session.handle(line)
        if reply is not None:
            print(reply, file=stdout)
            print(file=stdout, flush=True)


def _line_reader(stdin: TextIO, stdout: TextIO, interactive: bool) -> Callable[[], str | None]:
    """One line at a time, None at the end. At a terminal, input() with readline where Python
    has it: line editing and this session's history (up arrow)."""
    if interactive and stdin is sys.stdin and stdout is sys.stdout:
        with suppress(ImportError):  # not on every platform; input() still works without
            import readline  # noqa: F401  (importing it is what turns editing on)
        return lambda: input("> ")

    def read() -> str | None:
        if interactive:
            print("> ", end="", file=stdout, flush=True)
        return stdin.readline() or None

    return read
