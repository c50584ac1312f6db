"""`python -m retrieval search|latest|stats|merge|ingest`: everything from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from retrieval.index import merging, store, vectors
from retrieval.index.keeper import (
    LOCK_WAIT_SECONDS,
    AliasesFileError,
    IndexKeeper,
    default_index_dir,
)
from retrieval.library import Library
from retrieval.models import MAX_QUERY_CHARS, Article, Hit, SearchResult
from retrieval.question.meaning import Meaning
from retrieval.question.ranking import SHIPPED, RankingSettings
from retrieval.text import UNSAFE, printable
from retrieval.version import VERSION


# Control characters (C0 but tab and newline, DEL, C1) would let an article drive the terminal
# (ANSI escapes: colours, cursor moves, titles); bidi embeddings, overrides and isolates would
# let it reorder the text around it. Neither belongs in text shown to anyone.
def _line(text: str) -> str:
    """`text` as one printable line (its own line breaks and tabs become spaces)."""
    return printable(" ".join(text.split()))


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
        prog="python -m retrieval", description="Search Chinese news articles with BM25."
    )
    parser.add_argument("--version", action="version", version=f"news-qa-bot {VERSION}")
    # The same variables the bot's settings read, as defaults for the same flags.
    seeds = argparse.ArgumentParser(add_help=False)
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
    search.add_argument("query", nargs="*", help="the query; without one, one query per stdin line")

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


# FEED_ALLOW_PRIVATE as the bot's settings read it.
_YES, _NO = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _allow_private(flag: bool | None) -> bool | None:
    """--allow-private, else $FEED_ALLOW_PRIVATE; None when the variable is neither yes nor no."""
    if flag:
        return True
    raw = os.environ.get("FEED_ALLOW_PRIVATE", "").strip().lower()
    return True if raw in _YES else False if raw in _NO else None


def main(
    argv: Sequence[str] | None = None,
    *,
    ranking: RankingSettings = SHIPPED,
    meaning: bool = True,
) -> int:
    """The command line. `ranking` and `meaning` (whether `search` ranks with the model of
    meaning) let benchmarks.ablation measure other engines through the same commands."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING").upper())
    for handler in logging.getLogger().handlers:  # warnings name files: their names are text too
        handler.setFormatter(_PrintableFormatter("%(levelname)s %(name)s: %(message)s"))
    if args.command == "ingest":
        allow_private = _allow_private(args.allow_private)
        if allow_private is None:
            print("ingest: FEED_ALLOW_PRIVATE must be 1 or 0 (or true/false)", file=sys.stderr)
            return 2
        return _ingest(args.urls, Path(args.seeds), args.proxy, allow_private)
    if args.command == "merge":
        return _merge(Path(args.seeds), args.index_dir)
    if (args.command == "search" and args.k < 1) or (args.command == "latest" and args.n < 1):
        print("error: the count must be a positive number", file=sys.stderr)
        return 2
    try:
        keeper = IndexKeeper.open(
            args.seeds,
            args.index_dir,
            aliases_file=args.aliases,
            meaning=Meaning.load() if meaning and args.command in ("search", "embed") else None,
            ranking=ranking,
        )
    except OSError as exc:
        print(f"error: {_line(str(exc))}", file=sys.stderr)
        return 2
    except AliasesFileError as exc:
        print(f"error: aliases file (--aliases, ALIASES_FILE) {_line(str(exc))}", file=sys.stderr)
        return 2
    except store.IndexDirUnusable as exc:
        print(f"error: {_line(str(exc))} (--index-dir)", file=sys.stderr)
        return 2
    library = keeper.library
    try:
        if args.command == "search":
            refused = 0
            for number, question in _questions(args.query, sys.stdin):
                if isinstance(question, BadLine):  # that line alone; the run goes on
                    where = f"line {number}" if number else "the query"
                    print(f"error: {where}: {question}", file=sys.stderr, flush=True)
                    refused += 1
                    continue
                result = library.search(question.query, args.k, context=question.context)
                _print_result(question, result, as_json=args.json)
            if refused:
                return 2 if args.query else 1  # a bad argument is a usage error
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
        keeper.close()  # saves the vectors its questions embedded, for the next run
    return 0


def _embed(keeper: IndexKeeper) -> int:
    """Embed what is not embedded yet, telling how far it is on stderr; Ctrl-C stops it, and
    what was embedded is kept."""
    logging.getLogger("retrieval.index.keeper").setLevel(logging.INFO)
    started = time.monotonic()
    stop = threading.Event()
    worker = threading.Thread(target=lambda: done.append(keeper.embed_ahead(stop)))
    done: list[int] = []
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        stop.set()
        worker.join()
        print(f"stopped: {sum(done)} passages embedded; run it again to go on", file=sys.stderr)
        return 130
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
        print(f"error: {_line(str(exc))} (--index-dir)", file=sys.stderr)
        return 2
    except (OSError, store.IndexCorrupt, store.IndexBusy) as exc:
        print(f"merge: {_line(str(exc))}", file=sys.stderr)
        return 1
    print(f"merges:   {merges}")
    print(f"segments: {len(state.segments) if state else 0}")
    return 0


def _ingest(urls: Sequence[str], seeds_dir: Path, proxy: str | None, allow_private: bool) -> int:
    """Print one line per feed (failures and item notes to stderr); the exit code."""
    # the network stack, only here
    from retrieval.feeds import format_report, ingest_feeds
    from retrieval.feeds.fetch import make_client

    if not seeds_dir.is_dir():
        print(f"ingest: seeds directory not found: {_line(str(seeds_dir))}", file=sys.stderr)
        return 2
    try:
        client = make_client(proxy=proxy)
    except ValueError:  # httpx refusing the proxy URL; not echoed: it may hold a password
        print(
            "ingest: the proxy (--proxy, FEED_PROXY or a standard proxy variable) must be an "
            "http://, https://, socks5:// or socks5h:// URL",
            file=sys.stderr,
        )
        return 2
    try:
        with client:
            reports = ingest_feeds(
                urls, seeds_dir, client=client, proxy=proxy, allow_private=allow_private
            )
    except OSError as exc:  # the directory itself is unreadable; per-file errors are per feed
        print(f"ingest: cannot read seeds directory: {_line(str(exc))}", file=sys.stderr)
        return 2
    for report in reports:
        for note in report.notes:
            print(_line(f"{report.url}: {note}"), file=sys.stderr)
        print(_line(format_report(report)), file=sys.stderr if report.error else sys.stdout)
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


def _questions(words: Sequence[str], stdin: Iterable[str]) -> Iterator[tuple[int, Asked | BadLine]]:
    """The query from the command line (line number 0), else one per line of stdin, read as
    bytes where it can be so that a line that is not UTF-8 is that line's error alone."""
    if words:
        try:
            yield 0, _asked(" ".join(words).strip(), [])
        except BadLine as exc:
            yield 0, exc
        return
    lines: Iterable[str | bytes] = getattr(stdin, "buffer", stdin)
    for number, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            yield number, read_line(text)
        except UnicodeDecodeError:
            yield number, BadLine("not UTF-8")
        except BadLine as exc:
            yield number, exc


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
        line["hits"] = [hit_json(rank, hit) for rank, hit in enumerate(result.hits, 1)]
        print(_json_line(line), flush=True)
        return
    print(f"? {_line(question.query)}")
    if result.read_with:
        print(f"  (read as a follow-up of: {_line(result.read_with)})")
    if not result.hits:
        print("  (no matching passage)")
    elif not result.confident:
        missing = f"; the articles lack: {', '.join(result.missing)}" if result.missing else ""
        print(f"  (not confident these answer it{_line(missing)})")
    for rank, hit in enumerate(result.hits, 1):
        heading = f" · {hit.passage.section}" if hit.passage.section else ""
        print(f"{rank}. [{hit.score:.2f}] {_line(hit.article.title + heading)}")
        if hit.speaker:
            print(f"   🗣 {_line(hit.speaker)}")
        print(f"   {_line(hit.passage.text)}")
        print(f"   {hit.article.published:%Y-%m-%d} {_line(hit.article.url)}")
    print(flush=True)


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
        print(f"{article.published:%Y-%m-%d %H:%M} {_line(article.title)}\n  {_line(article.url)}")


def _print_stats(library: Library, index_dir: Path, args: argparse.Namespace) -> None:
    stats = library.stats()
    newest = stats.newest.isoformat() if stats.newest else "-"
    print(f"seeds:    {_line(str(Path(args.seeds).resolve()))}")
    print(f"index:    {_line(str(index_dir))}")
    print(f"articles: {stats.articles}")
    print(f"passages: {stats.passages}")
    print(f"newest:   {newest}")
    print(f"segments: {stats.segments}")
    print(f"skipped:  {len(stats.skipped)}")
    for skipped in stats.skipped:
        print(f"  {_line(str(skipped.path))}: {_line(skipped.reason)}")
