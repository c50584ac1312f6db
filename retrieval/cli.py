"""`python -m retrieval search|follow|latest|stats|merge|embed|ingest`: everything from the
command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from retrieval import progress
from retrieval.index import merging, store, vectors
from retrieval.index.keeper import (
    LOCK_WAIT_SECONDS,
    AliasesFileError,
    IndexKeeper,
    default_index_dir,
)
from retrieval.index.parsing import Workers
from retrieval.library import Library
from retrieval.models import MAX_QUERY_CHARS, Article, Hit, SearchResult
from retrieval.question.meaning import Meaning
from retrieval.question.ranking import SHIPPED, RankingSettings
from retrieval.text import UNSAFE, printable
from retrieval.usage import (
    BAD_INPUT,
    Mistake,
    command,
    directory_problem,
    error_line,
    one_line,
    yes_or_no,
)
from retrieval.version import VERSION

__all__ = ["Asked", "hit_json", "main", "printable", "read_line"]

SEEDS_FIX = "pass --seeds DIR or set SEEDS_DIR"
INDEX_FIX = "(--index-dir, INDEX_DIR)"


def _json_line(value: object) -> str:
    """One JSON line, readable (not ASCII-escaped) but with every unsafe character escaped as
    \\uXXXX: the data stays whole, the terminal stays safe (json escapes only C0 itself)."""
    text = json.dumps(value, ensure_ascii=False)
    return UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=command("retrieval"), description="Search Chinese news articles with BM25."
    )
    parser.add_argument("--version", action="version", version=f"news-qa-bot {VERSION}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no progress bar or progress lines (LOG_LEVEL=WARNING or above does the same)",
    )
    # The same variables the bot's settings read, as defaults for the same flags.
    seeds = argparse.ArgumentParser(add_help=False, parents=[common])
    seeds.add_argument(
        "--seeds",
        default=os.environ.get("SEEDS_DIR") or "seeds",
        help="seed articles directory (default: $SEEDS_DIR, else ./seeds)",
    )
    index = argparse.ArgumentParser(add_help=False)
    index.add_argument(
        "--index-dir",
        default=os.environ.get("INDEX_DIR") or None,
        help="where the index is kept (default: $INDEX_DIR, else a per-seeds cache directory)",
    )
    index.add_argument(
        "--aliases",
        default=os.environ.get("ALIASES_FILE") or None,
        metavar="FILE",
        help="extra name aliases, variant<TAB>canonical lines (default: $ALIASES_FILE)",
    )
    library = [seeds, index]
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", parents=library, help="best passages for queries")
    search.add_argument("-k", type=int, default=5, help="hits per query (default 5)")
    search.add_argument("--json", action="store_true", help="one JSON line per query")
    search.add_argument(
        "query", nargs="*", help="the question; without one, one question per stdin line"
    )

    follow = commands.add_parser(
        "follow",
        parents=library,
        help="what following a topic would have pushed: the passages of recent articles "
        "that answer it",
    )
    follow.add_argument(
        "--since",
        default="7d",
        metavar="AGE",
        help="articles of the last AGE up to the newest one: 7d (days, the default) or 12h",
    )
    follow.add_argument("--json", action="store_true", help="one JSON line per topic")
    follow.add_argument(
        "topic", nargs="*", help="the question or topic; without one, one topic per stdin line"
    )

    latest = commands.add_parser("latest", parents=library, help="newest articles first")
    latest.add_argument("-n", type=int, default=10, help="how many (default 10)")
    latest.add_argument("--json", action="store_true", help="one JSON line per article")

    commands.add_parser("stats", parents=library, help="articles, passages, skipped files")
    commands.add_parser(
        "merge", parents=library, help="merge the index's segments as its merge policy asks"
    )
    commands.add_parser(
        "embed",
        parents=library,
        help="embed every passage ahead of questions, newest first (the bot does it too; "
        "stop any time, the next run goes on)",
    )

    ingest = commands.add_parser("ingest", parents=[seeds], help="fetch RSS/Atom feeds")
    ingest.add_argument(
        "--proxy",
        default=os.environ.get("FEED_PROXY") or None,
        metavar="URL",
        help="proxy for the fetches: http://, https://, socks5:// or socks5h://host:port "
        "(default: $FEED_PROXY, else the standard proxy variables)",
    )
    ingest.add_argument(
        "--allow-private",
        action="store_true",
        default=None,
        help="let fetches and their redirects reach private addresses (127.0.0.1, 10.x, "
        "169.254.x …), not only public ones (default: $FEED_ALLOW_PRIVATE, else no)",
    )
    ingest.add_argument("urls", nargs="+", metavar="URL", help="feed URLs")
    return parser


def _allow_private(flag: bool | None) -> bool:
    """--allow-private, else $FEED_ALLOW_PRIVATE (a Mistake when it is neither yes nor no)."""
    if flag:
        return True
    raw = os.environ.get("FEED_ALLOW_PRIVATE", "").strip()
    allowed = yes_or_no(raw)
    if allowed is None:
        raise Mistake(f"FEED_ALLOW_PRIVATE {raw.lower()!r}, not a yes or no", "set it to 1 or 0")
    return allowed


def main(
    argv: Sequence[str] | None = None,
    *,
    ranking: RankingSettings = SHIPPED,
    meaning: bool = True,
) -> int:
    """The command line. `ranking` and `meaning` (whether `search` ranks with the model of
    meaning) let benchmarks.ablation measure other engines through the same commands."""
    args = _parser().parse_args(argv)
    try:
        _configure_logging(args.quiet)
        return _run(args, ranking, meaning)
    except Mistake as mistake:  # what was typed or set: one line, exit 2
        print(mistake.line(), file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:  # Ctrl-C at the prompt or while building: no traceback
        print(file=sys.stderr)
        return 130


def _configure_logging(quiet: bool) -> None:
    named = os.environ.get("LOG_LEVEL", "").strip().upper()
    level = logging.getLevelName(named) if named else logging.WARNING
    if not isinstance(level, int):
        raise Mistake(
            f"LOG_LEVEL {named!r}, not a log level", "set DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )
    logging.basicConfig(level=level)
    for handler in logging.getLogger().handlers:  # warnings name files: their names are text too
        handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    # Progress shows at the default level; --quiet, or a LOG_LEVEL above INFO, silences it.
    progress.show(not quiet and (not named or level <= logging.INFO))


def _run(args: argparse.Namespace, ranking: RankingSettings, meaning: bool) -> int:
    if args.command == "ingest":
        allow_private = _allow_private(args.allow_private)
        return _ingest(args.urls, Path(args.seeds), args.proxy, allow_private)
    if args.command == "merge":
        return _merge(Path(args.seeds), args.index_dir)
    for flag, count in (("-k", getattr(args, "k", 1)), ("-n", getattr(args, "n", 1))):
        if count < 1:
            raise Mistake(f"{flag} {count}, the count must be a positive number", f"e.g. {flag} 5")
    if args.command == "search" and args.query and not " ".join(args.query).strip():
        raise Mistake(
            "the question is empty, there is nothing to search for",
            "put the question after search, or leave it out to type questions one a line",
        )
    days = _since_days(args.since) if args.command == "follow" else 0.0
    if args.command == "follow" and args.topic and not " ".join(args.topic).strip():
        raise Mistake(
            "the topic is empty, there is nothing to follow",
            "put the topic after follow, or leave it out to type topics one a line",
        )
    keeper = _open(args, ranking, meaning)
    library = keeper.library
    try:
        if args.command == "search":
            refused = 0
            for number, question in _questions(args.query, sys.stdin):
                if isinstance(question, BadLine):  # that line alone; the run goes on
                    where = f"line {number}" if number else "the query"
                    print(error_line(f"{where}, {question}"), file=sys.stderr, flush=True)
                    refused += 1
                    continue
                result = library.search(question.query, args.k, context=question.context)
                _print_result(question, result, as_json=args.json)
            if refused:
                return BAD_INPUT if args.query else 1  # a bad argument is a usage error
        elif args.command == "follow":
            return _follow(library, args.topic, days, as_json=args.json)
        elif args.command == "embed":
            return _embed(keeper)
        elif args.command == "latest":
            for article in library.latest(args.n):
                _print_article(article, as_json=args.json)
        else:
            _print_stats(library, keeper.index_dir, args)
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        sys.stderr.close()
    finally:
        keeper.close()  # writes out the vectors its questions embedded, for the next run
    return 0


def _open(args: argparse.Namespace, ranking: RankingSettings, meaning: bool) -> IndexKeeper:
    """The index of --seeds, brought up to date (with progress), or a Mistake."""
    seeds = Path(args.seeds)
    problem = directory_problem(seeds)
    if problem:
        raise Mistake(f"seeds directory {seeds}, {problem}", SEEDS_FIX)
    workers = Workers(count=os.cpu_count() or 1, progress=progress.Reporter())
    try:
        return IndexKeeper.open(
            seeds,
            args.index_dir,
            aliases_file=args.aliases,
            workers=workers,
            meaning=Meaning.load()
            if meaning and args.command in ("search", "follow", "embed")
            else None,
            ranking=ranking,
        )
    except OSError as exc:
        raise Mistake(f"seeds directory {seeds}, {exc}", SEEDS_FIX) from None
    except AliasesFileError as exc:
        raise Mistake(
            f"aliases file {exc}", "fix it, or name another with --aliases or ALIASES_FILE"
        ) from None
    except store.IndexDirUnusable as exc:
        raise Mistake(f"{exc} {INDEX_FIX}") from None


def _since_days(since: str) -> float:
    """--since 7d, 12h or 7 (days) as days, or a Mistake."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dh]?)\s*", since.lower())
    if match is None or float(match.group(1)) <= 0:
        raise Mistake(f"--since {since!r}, not an age such as 7d or 12h", "e.g. --since 7d")
    number = float(match.group(1))
    return number / 24 if match.group(2) == "h" else number


def _follow(library: Library, words: Sequence[str], days: float, *, as_json: bool) -> int:
    """Each topic (the arguments, or one a stdin line) with the passages of the last `days`
    that a chat following it would have been sent, one per article that answers it."""
    lines = [" ".join(words)] if words else (line for line in sys.stdin)
    recent = library.recent_article_ids(days)
    refused = 0
    for line in lines:
        topic = " ".join(line.split())
        if not topic:
            continue
        if len(topic) > MAX_QUERY_CHARS:
            print(error_line(f"the topic is over {MAX_QUERY_CHARS} characters"), file=sys.stderr)
            refused += 1
            continue
        read = library.read_topic(topic)
        matches = library.match_topics([read], recent) if read.weighed_words else []
        if as_json:
            hits = [hit_json(rank, m.hit) for rank, m in enumerate(matches, 1)]
            line_json = {"topic": topic, "days": days, "articles": len(recent), "hits": hits}
            print(_json_line(line_json), flush=True)
            continue
        print(f"? {one_line(topic)}")
        if not read.weighed_words:
            print("  (no word to find articles by: be more specific)")
        elif not matches:
            print(f"  (no passage of the last {days:g} days answers it)")
        for rank, match in enumerate(matches, 1):
            _print_hit(rank, match.hit)
        print(flush=True)
    if refused:
        return BAD_INPUT if words else 1
    return 0


def _questions(words: Sequence[str], stdin: TextIO) -> Iterator[tuple[int, Asked | BadLine]]:
    """The question on the command line (line number 0), else one per line of stdin. At a
    terminal a prompt says so (empty lines are skipped there); otherwise every line is one
    question and gets one answer, as the benchmark scorers expect, read as bytes where it can
    be so that a line that is not UTF-8 is that line's error alone."""
    if words:
        yield 0, _parsed(lambda: _asked(" ".join(words).strip(), []))
        return
    if stdin.isatty():
        print("Type a question and press Enter; Ctrl-D to finish.", file=sys.stderr)
        number = 0
        while True:
            print("> ", end="", file=sys.stderr, flush=True)
            line = stdin.readline()
            if not line:
                print(file=sys.stderr)
                return
            number += 1
            if line.strip():
                yield number, _parsed(lambda line=line: read_line(line))
        return
    lines: Iterable[str | bytes] = getattr(stdin, "buffer", stdin)
    for number, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                yield number, BadLine("not UTF-8")
                continue
        yield number, _parsed(lambda line=line: read_line(line))


def _parsed(read: Callable[[], Asked]) -> Asked | BadLine:
    try:
        return read()
    except BadLine as exc:
        return exc


class Terminated(Exception):
    """SIGTERM arrived."""


def _embed(keeper: IndexKeeper) -> int:
    """Embed what is not embedded yet, showing how far it is on stderr; Ctrl-C stops it, and
    what was embedded is kept."""
    started = time.monotonic()
    stop = threading.Event()
    done: list[int] = []
    failed: list[BaseException] = []

    def embed() -> None:  # in a thread, so that Ctrl-C reaches the main one at once
        try:
            done.append(keeper.embed_ahead(stop, progress.Reporter()))
        except BaseException as exc:
            failed.append(exc)

    def terminated(signum: int, frame: object) -> None:
        raise Terminated

    worker = threading.Thread(target=embed, name="embed-ahead")
    worker.start()
    # `systemctl stop`, `kill` and a background job (which ignores Ctrl-C) stop it as Ctrl-C does
    main_thread = threading.current_thread() is threading.main_thread()  # where signals go
    previous = signal.signal(signal.SIGTERM, terminated) if main_thread else None
    try:
        while worker.is_alive():
            worker.join(0.2)
    except (KeyboardInterrupt, Terminated) as exc:
        stop.set()
        worker.join()
        print("stopped: embedded passages are kept; run it again to go on", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    if failed:
        raise failed[0]
    stats = keeper.library.stats()
    size = vectors.disk_bytes(keeper.index_dir)
    print(f"embedded: {sum(done)} passages in {time.monotonic() - started:.0f} s")
    print(f"passages: {stats.passages}")
    print(f"vectors:  {size / 1e6:.1f} MB")
    return 0


def _merge(seeds_dir: Path, index_dir: str | None) -> int:
    """Merge the saved index's segments as its policy asks. Works on the index alone (no
    seed file is read, nothing is analysed), so it may run beside the bot, which does."""
    index = Path(index_dir) if index_dir else default_index_dir(seeds_dir)
    try:
        merges = merging.run(index, LOCK_WAIT_SECONDS)
        state = store.load(index)
    except store.IndexDirUnusable as exc:
        raise Mistake(f"{exc} {INDEX_FIX}") from None
    except (OSError, store.IndexCorrupt, store.IndexBusy) as exc:  # not a mistake: exit 1
        print(error_line(f"cannot merge the index in {index}, {exc}"), file=sys.stderr)
        return 1
    print(f"merges:   {merges}")
    print(f"segments: {len(state.segments) if state else 0}")
    return 0


def _ingest(urls: Sequence[str], seeds_dir: Path, proxy: str | None, allow_private: bool) -> int:
    """Print one line per feed (failures and item notes to stderr); the exit code."""
    # the network stack, only here
    from retrieval.feeds import format_report, ingest_feeds
    from retrieval.feeds.fetch import make_client

    problem = directory_problem(seeds_dir)
    if problem:
        raise Mistake(f"seeds directory {seeds_dir}, {problem}", SEEDS_FIX)
    try:
        client = make_client(proxy=proxy)
    except ValueError:  # httpx refusing the proxy URL; not echoed: it may hold a password
        raise Mistake(
            "the proxy is not an http://, https://, socks5:// or socks5h:// URL",
            "check --proxy, FEED_PROXY and the standard proxy variables (HTTPS_PROXY, ALL_PROXY)",
        ) from None
    try:
        with client:
            reports = ingest_feeds(
                urls,
                seeds_dir,
                client=client,
                proxy=proxy,
                allow_private=allow_private,
                progress=progress.Reporter(),
            )
    except OSError as exc:  # the directory itself is unreadable; per-file errors are per feed
        problem = f"seeds directory {seeds_dir}, it cannot be read ({exc})"
        raise Mistake(problem, SEEDS_FIX) from None
    for report in reports:
        for note in report.notes:
            print(one_line(f"{report.url}: {note}"), file=sys.stderr)
        print(one_line(format_report(report)), file=sys.stderr if report.error else sys.stdout)
    return 1 if any(r.error for r in reports) else 0


@dataclass(frozen=True)
class Asked:
    """One line of `search` input: a question, and the earlier ones it may follow up."""

    query: str
    context: tuple[str, ...] = ()


class BadLine(ValueError):
    """A line of `search` input that cannot be searched; str() says why, in a few words."""


# Of a line's "context", the newest questions kept (the bot passes 3; each further back
# counts half as much, retrieval.ranking).
MAX_CONTEXT = 10


def read_line(line: str) -> Asked:
    """A JSON object {"query": "...", "context": ["earlier question", ...]} (oldest first),
    or else the line itself as a plain query: every line is one question, whatever it holds.
    No state is kept between lines: context comes only from the line's own `context`.
    Each text is cut to MAX_QUERY_CHARS, as the bot cuts questions. Raises BadLine for JSON
    nested too deep to read or text that is not Unicode (a lone surrogate, "\\ud800")."""
    line = line.strip()
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            data = None
        except RecursionError:
            raise BadLine("JSON nested too deeply") from None
        if isinstance(data, dict) and isinstance(data.get("query"), str):
            context = data.get("context")
            earlier = context if isinstance(context, list) else []
            texts = [c for c in earlier if isinstance(c, str)][-MAX_CONTEXT:]
            return _asked(data["query"], texts)
    return _asked(line, [])


def _asked(query: str, context: list[str]) -> Asked:
    asked = Asked(query[:MAX_QUERY_CHARS], tuple(c[:MAX_QUERY_CHARS] for c in context))
    for text in (asked.query, *asked.context):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # OpenCC (analysis) cannot take it either
            raise BadLine("not valid Unicode text (a lone surrogate such as \\ud800)") from None
    return asked


def hit_json(rank: int, hit: Hit) -> dict[str, object]:
    return {
        "rank": rank,
        "score": round(hit.score, 6),
        "text": hit.passage.text,
        "section": hit.passage.section,
        "title": hit.article.title,
        "url": hit.article.url,
        "published": hit.article.published.isoformat(),
        "article_id": hit.article.id,
        "passage_id": hit.passage.id,
        "speaker": hit.speaker,
    }


def _print_result(question: Asked, result: SearchResult, as_json: bool) -> None:
    if as_json:
        line: dict[str, object] = {"query": question.query}
        if question.context:
            line["context"] = list(question.context)
        line["read_with"] = result.read_with
        line["confident"] = result.confident
        line["missing"] = list(result.missing)
        line["probability"] = None if result.probability is None else round(result.probability, 4)
        line["hits"] = [hit_json(rank, hit) for rank, hit in enumerate(result.hits, 1)]
        print(_json_line(line), flush=True)
        return
    print(f"? {one_line(question.query)}")
    if result.read_with:
        print(f"  (read as a follow-up of: {one_line(result.read_with)})")
    if not result.hits:
        print("  (no matching passage)")
    elif not result.confident:
        missing = f"; the articles lack: {', '.join(result.missing)}" if result.missing else ""
        print(f"  (not confident these answer it{one_line(missing)})")
    for rank, hit in enumerate(result.hits, 1):
        _print_hit(rank, hit)
    print(flush=True)


def _print_hit(rank: int, hit: Hit) -> None:
    heading = f" · {hit.passage.section}" if hit.passage.section else ""
    print(f"{rank}. [{hit.score:.2f}] {one_line(hit.article.title + heading)}")
    if hit.speaker:
        print(f"   🗣 {one_line(hit.speaker)}")
    print(f"   {one_line(hit.passage.text)}")
    print(f"   {hit.article.published:%Y-%m-%d} {one_line(hit.article.url)}")


def _print_article(article: Article, as_json: bool) -> None:
    if as_json:
        print(
            _json_line(
                {
                    "title": article.title,
                    "url": article.url,
                    "published": article.published.isoformat(),
                    "article_id": article.id,
                }
            )
        )
    else:
        when = f"{article.published:%Y-%m-%d %H:%M}"
        print(f"{when} {one_line(article.title)}\n  {one_line(article.url)}")


def _print_stats(library: Library, index_dir: Path, args: argparse.Namespace) -> None:
    stats = library.stats()
    newest = stats.newest.isoformat() if stats.newest else "-"
    print(f"seeds:    {one_line(str(Path(args.seeds).resolve()))}")
    print(f"index:    {one_line(str(index_dir))}")
    print(f"articles: {stats.articles}")
    print(f"passages: {stats.passages}")
    print(f"newest:   {newest}")
    print(f"segments: {stats.segments}")
    ranker, judgement = library.ranking.ranker, library.ranking.judgement
    print(f"ranker:   {ranker.identity if ranker else 'none'}")
    print(f"judgement: {judgement.identity if judgement else 'none'}")
    print(f"skipped:  {len(stats.skipped)}")
    for skipped in stats.skipped:
        print(f"  {one_line(str(skipped.path))}: {one_line(skipped.reason)}")
