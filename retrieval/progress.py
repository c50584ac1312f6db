"""How far long work has got: a progress bar at a terminal, a log line every few seconds
without one.

The CLIs, the bot and the benchmarks make a `Reporter` and hand it to work that can take
long (an index build, through `parsing.Workers`; a feed ingest; a benchmark's runs), which
opens a `task` for each stage and advances it. At a terminal the task is a tqdm bar on stderr
(counts, rate, time left); without one (systemd, Docker, CI) the same counts go to the
`retrieval.progress` logger every `every` seconds. Work that ends within `delay` seconds shows
nothing. Whatever keeps that logger from INFO (--quiet, LOG_LEVEL=WARNING) silences both.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TextIO

log = logging.getLogger(__name__)

EVERY_SECONDS = 5.0  # between log lines without a terminal
DELAY_SECONDS = 2.0  # work done sooner shows nothing: a rescan of three files is not news

Advance = Callable[[int], None]  # "this many more done"


def show(shown: bool = True) -> None:
    """Let progress through at INFO (or, with `shown` False, silence it) whatever level the
    rest of the logging is at: a CLI that logs only warnings still shows how far it is."""
    log.setLevel(logging.INFO if shown else logging.WARNING)


@dataclass(frozen=True)
class Reporter:
    """Where progress goes. `stream` (None: sys.stderr when a task starts) decides whether
    there is a terminal and takes the bar; `clock` times the log lines."""

    stream: TextIO | None = None
    clock: Callable[[], float] = field(default=time.monotonic)
    every: float = EVERY_SECONDS
    delay: float = DELAY_SECONDS
    logger: logging.Logger = field(default=log)

    @contextmanager
    def task(self, what: str, total: int, unit: str) -> Iterator[Advance]:
        """Work of `total` `unit` ("files"): yields the function to call as parts are done."""
        if total <= 0 or not self.logger.isEnabledFor(logging.INFO):
            yield _nothing
            return
        stream = self.stream or sys.stderr
        if _is_terminal(stream):
            with _bar(stream, what, total, unit, self.delay) as bar:
                yield bar.update
            return
        lines = _Lines(self, what, total, unit)
        try:
            yield lines.advance
        finally:
            lines.close()


@contextmanager
def task(reporter: Reporter | None, what: str, total: int, unit: str) -> Iterator[Advance]:
    """`reporter.task(...)`, or nothing reported when there is no reporter."""
    if reporter is None:
        yield _nothing
        return
    with reporter.task(what, total, unit) as advance:
        yield advance


def _nothing(n: int) -> None:
    pass


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _bar(stream: TextIO, what: str, total: int, unit: str, delay: float):  # -> tqdm
    from tqdm import tqdm  # only at a terminal

    return tqdm(
        total=total,
        desc=what,
        unit=f" {unit}",
        file=stream,
        delay=delay,
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}]",
    )


def _interval(seconds: float) -> str:
    from tqdm import tqdm

    return tqdm.format_interval(seconds)


class _Lines:
    """A task without a terminal: a log line once `delay` has passed, then every `every`
    seconds, and a last one at the end if any was written."""

    def __init__(self, reporter: Reporter, what: str, total: int, unit: str) -> None:
        self.reporter, self.what, self.total, self.unit = reporter, what, total, unit
        self.started = reporter.clock()
        self.next_line = self.started + reporter.delay
        self.done = 0
        self.written = False

    def advance(self, n: int) -> None:
        self.done += n
        now = self.reporter.clock()
        if now >= self.next_line and self.done < self.total:
            elapsed = now - self.started
            rate = self.done / elapsed if elapsed > 0 else 0.0
            left = _interval((self.total - self.done) / rate) if rate else "?"
            self._line(f"{self._rate(rate)}, {left} left")
            self.next_line = now + self.reporter.every

    def close(self) -> None:
        if not self.written:
            return
        elapsed = self.reporter.clock() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        self._line(f"{self._rate(rate)}, done in {_interval(elapsed)}")

    def _rate(self, rate: float) -> str:
        if rate >= 10:
            return f"{rate:.0f} {self.unit}/s"
        if rate >= 0.1 or rate == 0:
            return f"{rate:.1f} {self.unit}/s"
        return f"{_interval(1 / rate)} each"  # slow work (a benchmark's runs): time per unit

    def _line(self, tail: str) -> None:
        share = 100 * self.done // self.total
        self.reporter.logger.info(
            "%s: %d/%d %s (%d%%), %s", self.what, self.done, self.total, self.unit, share, tail
        )
        self.written = True
