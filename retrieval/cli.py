"""`python -m retrieval search|latest|stats|ingest`: every capability from the command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from retrieval.library import Library
from retrieval.models import Article, Hit
from retrieval.version import VERSION


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

    ingest = commands.add_parser("ingest", parents=[seeds], help="fetch RSS/Atom feeds")
    ingest.add_argument(
        "--proxy",
        default=os.environ.get("FEED_PROXY") or None,
        metavar="URL",
        help="proxy for the fetches: http://, https://, socks5:// or socks5h://host:port "
        "(default: $FEED_PROXY, else the standard proxy variables)",
    )
    ingest.add_argument("urls", nargs="+", metavar="URL", help="feed URLs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "WARNING").upper(),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command == "ingest":
        return _ingest(args.urls, Path(args.seeds), args.proxy)
    if (args.command == "search" and args.k < 1) or (args.command == "latest" and args.n < 1):
        print("error: the count must be a positive number", file=sys.stderr)
        return 2
    try:
        library = Library.from_dir(args.seeds, args.index_dir, aliases_file=args.aliases)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: aliases file (--aliases, ALIASES_FILE) {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "search":
            queries = (args.query and [" ".join(args.query)]) or _stdin_lines()
            for query in queries:
                _print_hits(query, library.search(query, args.k), as_json=args.json)
        elif args.command == "latest":
            for article in library.latest(args.n):
                _print_article(article, as_json=args.json)
        else:
            _print_stats(library, args)
    except BrokenPipeError:  # `| head` closed the pipe: not an error
        sys.stderr.close()
    return 0


def _ingest(urls: Sequence[str], seeds_dir: Path, proxy: str | None) -> int:
    """Print one line per feed (failures and item notes to stderr); the exit code."""
    # the network stack, only here
    from retrieval.feeds import format_report, ingest_feeds
    from retrieval.feeds.fetch import make_client

    if not seeds_dir.is_dir():
        print(f"ingest: seeds directory not found: {seeds_dir}", file=sys.stderr)
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
            reports = ingest_feeds(urls, seeds_dir, client=client)
    except OSError as exc:  # the directory itself is unreadable; per-file errors are per feed
        print(f"ingest: cannot read seeds directory: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        for note in report.notes:
            print(f"{report.url}: {note}", file=sys.stderr)
        print(format_report(report), file=sys.stderr if report.error else sys.stdout)
    return 1 if any(r.error for r in reports) else 0


def _stdin_lines() -> Iterable[str]:
    for line in sys.stdin:
        yield line.strip()


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
    }


def _print_hits(query: str, hits: list[Hit], as_json: bool) -> None:
    if as_json:
        hits_json = [hit_json(rank, hit) for rank, hit in enumerate(hits, 1)]
        print(json.dumps({"query": query, "hits": hits_json}, ensure_ascii=False), flush=True)
        return
    print(f"? {query}")
    if not hits:
        print("  (no matching passage)")
    for rank, hit in enumerate(hits, 1):
        heading = f" · {hit.passage.section}" if hit.passage.section else ""
        print(f"{rank}. [{hit.score:.2f}] {hit.article.title}{heading}")
        print(f"   {hit.passage.text}")
        print(f"   {hit.article.published:%Y-%m-%d} {hit.article.url}")
    print(flush=True)


def _print_article(article: Article, as_json: bool) -> None:
    if as_json:
        print(
            json.dumps(
                {
                    "title": article.title,
                    "url": article.url,
                    "published": article.published.isoformat(),
                    "article_id": article.id,
                },
                ensure_ascii=False,
            )
        )
    else:
        print(f"{article.published:%Y-%m-%d %H:%M} {article.title}\n  {article.url}")


def _print_stats(library: Library, args: argparse.Namespace) -> None:
    stats = library.stats()
    newest = stats.newest.isoformat() if stats.newest else "-"
    print(f"seeds:    {Path(args.seeds).resolve()}")
    print(f"index:    {library.index_dir}")
    print(f"articles: {stats.articles}")
    print(f"passages: {stats.passages}")
    print(f"newest:   {newest}")
    print(f"skipped:  {len(stats.skipped)}")
    for skipped in stats.skipped:
        print(f"  {skipped.path}: {skipped.reason}")
