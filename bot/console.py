"""`python -m bot --console`: the bot's question answering in a terminal, no token needed."""

from __future__ import annotations

from typing import TextIO

from retrieval import Library

from . import commands, render, replies
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
        word, _, rest = line.partition(" ")
        if not word.startswith("/"):
            html = self._ask(line, 0)
        else:
            name = word[1:].split("@", 1)[0].lower()
            command = commands.find(name)
            if command is not None and command.console:
                html = getattr(self, command.name)(rest)
            elif name in ("next", "more"):  # the console's stand-in for the page buttons
                html = self._next_page()
            else:
                html = t(self.lang, "unknown_command")
        return render.to_plain(html, bold=self.bold)

    # ---- the commands (see commands.py); each takes the text after the command -------------

    def ask(self, rest: str) -> str:
        return self._ask(rest, 0)

    def latest(self, rest: str) -> str:
        return replies.latest(self.library, rest, self.lang)

    def about(self, rest: str) -> str:
        return replies.about(self.library, self.lang, admin=True)

    def help(self, rest: str) -> str:
        return replies.help_text(self.library, self.lang, CONSOLE_BOT_NAME)

    def _next_page(self) -> str:
        if self.last_question is None:
            return t(self.lang, "stale_button")
        return self._ask(self.last_question, self.page + 1)

    def _ask(self, question: str, page: int) -> str:
        question = replies.clean_question(question)
        if not question:
            return replies.ask_usage(self.library, self.lang)
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
        intro = render.render_help(
            lang, examples=[], articles=library.stats().articles, bot_username=CONSOLE_BOT_NAME
        )
        print(render.to_plain(intro).split("\n\n")[0], file=stdout)
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
