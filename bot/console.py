"""`python -m bot --console`: the bot's question answering in a terminal, no token needed."""

from __future__ import annotations

from typing import TextIO

from retrieval import Library

from . import render, replies
from .i18n import Lang, t

ANSI_BOLD = ("\033[1m", "\033[0m")
CONSOLE_BOT_NAME = "ThisBot"


class ConsoleSession:
    """Turns one input line into the plain-text version of the reply the bot would send."""

    def __init__(
        self, library: Library, lang: Lang, per_page: int = 3, bold: tuple[str, str] = ("", "")
    ) -> None:
        self.library = library
        self.lang = lang
        self.per_page = per_page
        self.bold = bold
        self.last_question: str | None = None
        self.page = 0

    def handle(self, line: str) -> str | None:
        """The reply to `line`, or None for an empty line."""
        line = line.strip()
        if not line:
            return None
        command, _, rest = line.partition(" ")
        command = command.split("@", 1)[0].lower() if command.startswith("/") else ""
        if command in ("/start", "/help"):
            html = replies.help_text(self.library, self.lang, CONSOLE_BOT_NAME)
        elif command == "/latest":
            html = replies.latest(self.library, rest, self.lang)
        elif command == "/about":
            html = replies.about(self.library, self.lang, admin=True)
        elif command in ("/next", "/more"):
            if self.last_question is None:
                html = t(self.lang, "stale_button")
            else:
                html = self._ask(self.last_question, self.page + 1)
        elif command == "/ask":
            html = self._ask(rest, 0)
        elif command:
            html = t(self.lang, "unknown_command")
        else:
            html = self._ask(line, 0)
        return render.to_plain(html, bold=self.bold)

    def _ask(self, question: str, page: int) -> str:
        question = replies.clean_question(question)
        if not question:
            return t(self.lang, "ask_usage", example=replies.usage_example(self.library, self.lang))
        result = replies.answer(
            self.library, question, self.lang, page=page, per_page=self.per_page
        )
        self.last_question, self.page = question, result.page
        if result.has_more:
            return result.html + "\n\n(/next ›)"
        return result.html


def run_console(library: Library, lang: Lang, per_page: int, stdin: TextIO, stdout: TextIO) -> int:
    """Read questions from stdin until EOF (or /quit); print each reply."""
    interactive = stdin.isatty()
    bold = ANSI_BOLD if stdout.isatty() else ("", "")
    session = ConsoleSession(library, lang, per_page, bold)
    if interactive:
        print(
            render.to_plain(
                t(
                    lang,
                    "help",
                    examples="",
                    articles=library.stats().articles,
                    bot=CONSOLE_BOT_NAME,
                )
            ).split("\n\n")[0],
            file=stdout,
        )
        print("(/latest, /about, /next, /quit)", file=stdout)
    while True:
        if interactive:
            print("> ", end="", file=stdout, flush=True)
        line = stdin.readline()
        if not line or line.strip() in ("/quit", "/exit"):
            return 0
        reply = session.handle(line)
        if reply is not None:
            print(reply, file=stdout)
            print(file=stdout, flush=True)
