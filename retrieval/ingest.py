"""Feed ingest: fetch RSS/Atom feeds and write each new item as a seed file.

Pure functions turn feed bytes into items (`parse_feed`), clean an item's HTML
(`sanitize_html`), render the seed format (`render_seed`) and name files
(`seed_file_name`); a small httpx layer fetches with limits (`fetch_feed`), and
`ingest_feeds` ties them to the seeds directory. Policies, so they are written down:

- A feed fails as a whole (nothing written) when it cannot be fetched, is not
  RSS/Atom, or is not well-formed XML. feedparser's loose parser recovers items
  from truncated XML; we refuse them, since a truncated item would be written as
  if complete. The two bozo kinds that say nothing about the XML itself are
  accepted: CharacterEncodingOverride (declared encoding was wrong, feedparser
  found the right one) and NonXMLContentType (server sent a feed as text/html).
- Items without a title, an http(s) link or any content are skipped, one note each.
- Files whose names look like ours (`yyyymmdd-HHMMSS_<hex16>.txt`) are replaced in
  place when the rendered text changes; any other file (the seed, archive copies)
  is read for its link but never rewritten, so the seed's article is never
  written twice and never overwritten.
- An item without a date gets the feed's date, else the fetch time, and counts as
  "undated" in the report; once written, its file keeps that date on later runs.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import html.entities
import io
import logging
import os
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import feedparser
import httpx
from bs4 import BeautifulSoup, CData, Comment, Declaration, Doctype, ProcessingInstruction
from bs4.dammit import EntitySubstitution
from bs4.formatter import HTMLFormatter

from retrieval.articles import SeedFormatError, split_header
from retrieval.index import scan_seeds

logger = logging.getLogger(__name__)

USER_AGENT = "news-qa-bot/0.1 (+feed ingest)"
MAX_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# Read timeouts bound each chunk, not the whole body: a server dripping bytes needs this.
DEADLINE_SECONDS = 60.0
# Enough for YAML front matter, the comment and a long title line.
HEAD_BYTES = 8192
ACCEPT = "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, " + (
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
)

_OWN_NAME = re.compile(r"^\d{8}-\d{6}_[0-9a-f]{16}\.txt$")
_COMMENT_MS = re.compile(r"<!--\s*(-?\d+)\s*-->")
_DROP_TAGS = frozenset(
    {"script", "style", "iframe", "frame", "frameset", "object", "embed", "applet"}
    | {"noscript", "template", "base", "link", "meta", "svg", "math"}
)
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "poster", "cite", "background"})
_BAD_SCHEMES = ("javascript:", "vbscript:", "data:", "file:")
# Escape only & < > (bs4's "html5" formatter turns 、— · into named entities) and write
# void elements as <img ...>, like the seed, not <img .../>.
_FORMATTER = HTMLFormatter(
    entity_substitution=EntitySubstitution.substitute_xml, void_element_close_prefix=""
)
# Encoding mix-ups are recovered by feedparser and leave the XML intact.
_HARMLESS_BOZO = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)


class FeedError(Exception):
    """An expected failure of one feed; the message is the reason shown to the user."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One feed item, ready to render as a seed file."""

    title: str
    link: str  # absolute http(s)
    published_ms: int
    html: str  # sanitised, on one line
    dated: bool = True  # False: the date came from the feed or the fetch time


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """The usable items of a feed and why the others were left out."""

    items: tuple[FeedItem, ...]
    rejected: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Fetched:
    """A fetched feed body and where it finally came from (after redirects)."""

    url: str
    body: bytes
    content_type: str | None


@dataclass(frozen=True)
class FeedReport:
    """What ingesting one feed did."""

    url: str
    new: int = 0
    updated: int = 0
    skipped: int = 0
    error: str | None = None
    undated: int = 0  # new or updated items dated by the feed or the fetch time
    notes: tuple[str, ...] = field(default=())  # per-item reasons for skipping


# ---- pure functions -------------------------------------------------------------------


def normalize_link(url: str) -> str:
    """The form links are compared in: trimmed, no fragment, lower-case scheme and host."""
    parts = urlsplit(url.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def _is_web_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Drop active content and make links absolute against `base_url`; returns one line.

    Removes script/style/iframe/object-like elements with their content, comments,
    on* attributes and javascript:/vbscript:/data:/file: URLs.
    """
    soup = BeautifulSoup(fragment, "html.parser")
    for node in soup.find_all(string=True):
        if isinstance(node, Comment | CData | Declaration | Doctype | ProcessingInstruction):
            node.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    base = base_url if base_url and _is_web_url(base_url) else None
    for tag in soup.find_all(True):
        for name in list(tag.attrs):
            value = tag.attrs[name]
            lname = name.lower()
            if lname.startswith("on"):
                del tag.attrs[name]
            elif lname in _URL_ATTRS and isinstance(value, str):
                # Browsers ignore control characters and spaces inside schemes.
                squashed = re.sub(r"[\x00-\x20]+", "", value).lower()
                if not squashed or squashed.startswith(_BAD_SCHEMES):
                    del tag.attrs[name]
                elif base:
                    tag.attrs[name] = urljoin(base, value.strip())
            elif lname == "srcset":
                del tag.attrs[name]  # rarely in feeds; resolving each candidate isn't worth it
    text = soup.decode(formatter=_FORMATTER)
    # The seed format keeps the body on one line, as the archiver does.
    return re.sub(r"[ \t]*[\r\n]+[ \t\r\n]*", " ", text).strip()


def _struct_ms(value: time.struct_time | None) -> int | None:
    return calendar.timegm(value) * 1000 if value else None


def _entry_html(entry: feedparser.FeedParserDict) -> str:
    """The fullest HTML an entry carries: content (content:encoded, Atom) over summary."""
    candidates = [*entry.get("content", [])]
    if entry.get("summary_detail"):
        candidates.append(entry["summary_detail"])
    for detail in candidates:
        value = (detail.get("value") or "").strip()
        if not value:
            continue
        if detail.get("type", "text/html") in ("text/html", "application/xhtml+xml"):
            return value
        return "".join(f"<p>{html.escape(p)}</p>" for p in value.split("\n\n") if p.strip())
    return ""


def _describe_bozo(exc: BaseException) -> str:
    get_message = getattr(exc, "getMessage", None)
    get_line = getattr(exc, "getLineNumber", None)
    if get_message and get_line:
        return f"malformed XML at line {get_line()}: {get_message()}"
    return f"malformed feed: {exc}"


def _looks_like_html(data: bytes, content_type: str | None) -> bool:
    head = data[:2048].lstrip().lower()
    if (content_type or "").startswith("text/html"):
        return True
    return head.startswith((b"<!doctype html", b"<html"))


_ENTITY = re.compile(rb"&([A-Za-z][A-Za-z0-9]{1,31});")
_XML_ENTITIES = frozenset({b"amp", b"lt", b"gt", b"quot", b"apos"})


def _numeric_html_entities(data: bytes) -> bytes:
    """HTML's named entities (&nbsp;, &eacute;…) as numeric references, which XML knows.

    Feeds written by HTML tools often carry them; XML has only five named entities, so a
    strict parser would refuse the whole feed for one &nbsp;."""

    def numeric(match: re.Match[bytes]) -> bytes:
        name = match.group(1)
        codepoint = html.entities.name2codepoint.get(name.decode())
        if codepoint is None or name in _XML_ENTITIES:
            return match.group(0)
        return b"&#%d;" % codepoint

    return _ENTITY.sub(numeric, data)


def parse_feed(
    data: bytes, feed_url: str, *, content_type: str | None = None, now_ms: int | None = None
) -> ParsedFeed:
    """Feed bytes → usable items; raises FeedError when the feed as a whole is unusable.

    `feed_url` (the URL after redirects) resolves relative item links; item content is
    resolved against the item's own link.
    """
    headers = {"content-type": content_type} if content_type else {}
    try:
        # BytesIO: a bare bytes/str argument may be taken for a URL or file name.
        parsed = feedparser.parse(
            io.BytesIO(_numeric_html_entities(data)),
            response_headers=headers,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser is meant never to raise; if it does, fail this feed
        logger.exception("feedparser crashed on %s", feed_url)
        raise FeedError(f"feedparser error: {exc!r}") from exc
    exc = parsed.get("bozo_exception")
    if parsed.get("bozo") and not isinstance(exc, _HARMLESS_BOZO):
        if _looks_like_html(data, content_type):
            raise FeedError("not a feed: got an HTML page")
        raise FeedError(_describe_bozo(exc) if exc else "malformed feed")
    if not parsed.get("version"):
        if _looks_like_html(data, content_type):
            raise FeedError("not a feed: got an HTML page")
        raise FeedError("not a feed: no RSS or Atom document found")
    if exc is not None:
        logger.info("%s: accepted despite %s", feed_url, exc)

    feed = parsed.get("feed", {})
    feed_ms = _struct_ms(feed.get("updated_parsed") or feed.get("published_parsed"))
    fallback_ms = feed_ms if feed_ms is not None else (now_ms or int(time.time() * 1000))
    items: list[FeedItem] = []
    rejected: list[str] = []
    for number, entry in enumerate(parsed.get("entries", []), start=1):
        title = _one_line(entry.get("title", ""))
        if entry.get("title_detail", {}).get("type") == "text/html":
            title = _one_line(BeautifulSoup(title, "html.parser").get_text())
        raw_link = (entry.get("link") or "").strip()
        label = f"item {number}" + (f" ({title[:60]!r})" if title else "")
        if not raw_link:
            rejected.append(f"skipped {label}: no link")
            continue
        link = urljoin(feed_url, raw_link)
        # A space or newline inside the URL would break the `[title](url)` line.
        link = re.sub(r"\s", lambda m: quote(m.group()), link)
        if not _is_web_url(link):
            rejected.append(f"skipped {label}: link is not http(s): {raw_link[:80]}")
            continue
        if not title:
            rejected.append(f"skipped {label}: no title ({link})")
            continue
        body = sanitize_html(_entry_html(entry), link)
        if not body:
            rejected.append(f"skipped {label}: no content")
            continue
        ms = _struct_ms(
            entry.get("published_parsed")
            or entry.get("updated_parsed")
            or entry.get("created_parsed")
        )
        items.append(
            FeedItem(
                title=title,
                link=link,
                published_ms=ms if ms is not None else fallback_ms,
                html=body,
                dated=ms is not None,
            )
        )
    return ParsedFeed(tuple(items), tuple(rejected))


def render_seed(item: FeedItem) -> str:
    """The seed-file text of an item."""
    return f"<!--{item.published_ms}-->\n[{item.title}]({item.link})\n------\n\n{item.html}\n"


def seed_file_name(item: FeedItem) -> str:
    """`<UTC yyyymmdd-HHMMSS>_<16 hex of sha1(link)>.txt`: sorts by date, stable per link."""
    when = datetime.fromtimestamp(item.published_ms / 1000, tz=UTC)
    digest = hashlib.sha1(normalize_link(item.link).encode("utf-8")).hexdigest()[:16]
    return f"{when:%Y%m%d-%H%M%S}_{digest}.txt"


def read_seed_link(head: str) -> str | None:
    """The URL in the `[title](url)` header of a seed file's first lines, or None.

    The header is read by the same code that indexes the file (retrieval.articles), so
    every variant the index understands is recognised here too."""
    try:
        return split_header(head)[2] or None
    except SeedFormatError:
        return None


# ---- files ---------------------------------------------------------------------------


def scan_seed_links(seeds_dir: Path) -> dict[str, Path]:
    """Normalised link → file, for every seed file the index reads, reading only file heads."""
    index: dict[str, Path] = {}
    for rel in sorted(scan_seeds(seeds_dir)):
        path = seeds_dir / rel
        try:
            with open(path, "rb") as f:
                head = f.read(HEAD_BYTES).decode("utf-8", errors="replace")
        except OSError as exc:
            logger.warning("cannot read %s: %s", path, exc)
            continue
        link = read_seed_link(head)
        if link is None:
            logger.debug("no [title](url) header in %s", rel)
            continue
        index.setdefault(normalize_link(link), path)
    return index


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename."""
    # Leading dot and .tmp suffix: readers globbing *.txt never see a half-written file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp gives 0600
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- network -------------------------------------------------------------------------


def make_client(timeout: httpx.Timeout | float = TIMEOUT) -> httpx.Client:
    """An httpx client with the ingest limits: timeouts, redirect cap, a clear User-Agent."""
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
    )


def fetch_feed(client: httpx.Client, url: str, *, max_bytes: int = MAX_BYTES) -> Fetched:
    """GET `url`, streaming, refusing bodies over `max_bytes`; raises FeedError."""
    if not _is_web_url(url):
        raise FeedError("not an http(s) URL")
    too_big = f"response larger than {max_bytes:,} bytes"
    try:
        with client.stream("GET", url) as response:
            if response.status_code >= 300:
                reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
                if response.is_redirect:
                    reason += " (redirect not followed)"
                raise FeedError(reason)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(too_big)
            deadline = time.monotonic() + DEADLINE_SECONDS
            chunks: list[bytes] = []
            size = 0
            # iter_bytes yields decoded bytes, so the cap also stops compression bombs.
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(too_big)
                if time.monotonic() > deadline:
                    raise FeedError(f"download took longer than {DEADLINE_SECONDS:.0f} s")
                chunks.append(chunk)
            content_type = response.headers.get("content-type")
            return Fetched(str(response.url), b"".join(chunks), content_type)
    except httpx.TooManyRedirects as exc:
        raise FeedError(f"more than {MAX_REDIRECTS} redirects") from exc
    except httpx.ConnectTimeout as exc:
        raise FeedError("connection timed out") from exc
    except httpx.TimeoutException as exc:
        raise FeedError("timed out waiting for the server") from exc
    except httpx.ConnectError as exc:
        raise FeedError(f"cannot connect: {exc}") from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise FeedError(f"bad URL: {exc}") from exc
    except httpx.HTTPError as exc:
        raise FeedError(f"{type(exc).__name__}: {exc}") from exc


# ---- orchestration -------------------------------------------------------------------


def _store(
    items: Sequence[FeedItem], seeds_dir: Path, index: dict[str, Path], url: str
) -> FeedReport:
    """Write new items, replace changed ones in files we own, count the rest as skipped."""
    new = updated = skipped = undated = 0
    notes: list[str] = []
    seen: set[str] = set()
    for item in items:
        key = normalize_link(item.link)
        if key in seen:
            skipped += 1
            notes.append(f"skipped duplicate link in this feed: {item.link}")
            continue
        seen.add(key)
        existing = index.get(key)
        try:
            if existing is None:
                path = seeds_dir / seed_file_name(item)
                if path.exists():  # a sha1 prefix clash or an unreadable header: leave it be
                    skipped += 1
                    notes.append(f"skipped {item.link}: {path.name} exists for another link")
                    continue
                write_atomic(path, render_seed(item))
                index[key] = path
                new += 1
                undated += not item.dated
                continue
            if not _OWN_NAME.match(existing.name):
                skipped += 1  # the seed or an archive copy: never rewritten
                continue
            old = existing.read_bytes()
            if not item.dated and (m := _COMMENT_MS.search(old[:200].decode("utf-8", "replace"))):
                item = replace(item, published_ms=int(m.group(1)))  # keep the first-given date
            text = render_seed(item)
            if old == text.encode("utf-8"):
                skipped += 1
                continue
            write_atomic(existing, text)
            updated += 1
            undated += not item.dated
        except OSError as exc:
            return FeedReport(
                url, new, updated, skipped, f"cannot write: {exc}", undated, tuple(notes)
            )
    return FeedReport(url, new, updated, skipped, None, undated, tuple(notes))


def ingest_feeds(
    urls: Sequence[str],
    seeds_dir: Path,
    *,
    client: httpx.Client | None = None,
    max_bytes: int = MAX_BYTES,
) -> list[FeedReport]:
    """Fetch each feed and write its new or changed items into `seeds_dir`; one report each."""
    seeds_dir = Path(seeds_dir)
    index = scan_seed_links(seeds_dir)
    own_client = client is None
    http = client if client is not None else make_client()
    reports: list[FeedReport] = []
    try:
        for url in urls:
            try:
                fetched = fetch_feed(http, url, max_bytes=max_bytes)
                parsed = parse_feed(fetched.body, fetched.url, content_type=fetched.content_type)
            except FeedError as exc:
                logger.info("%s failed: %s", url, exc)
                reports.append(FeedReport(url, error=str(exc)))
                continue
            report = _store(parsed.items, seeds_dir, index, url)
            reports.append(
                replace(
                    report,
                    skipped=report.skipped + len(parsed.rejected),
                    notes=parsed.rejected + report.notes,
                )
            )
    finally:
        if own_client:
            http.close()
    return reports


def format_report(report: FeedReport) -> str:
    """One line: `<url>: 3 new, 1 updated, 10 skipped` or `<url>: failed: <reason>`."""
    if report.error:
        return f"{report.url}: failed: {report.error}"
    line = f"{report.url}: {report.new} new, {report.updated} updated, {report.skipped} skipped"
    if report.undated:
        line += f" ({report.undated} undated, given the feed's date or the fetch time)"
    return line


def run_ingest(urls: Sequence[str], seeds_dir: Path) -> int:
    """CLI body: print one line per feed (failures and item notes to stderr); exit code."""
    seeds_dir = Path(seeds_dir)
    if not seeds_dir.is_dir():
        print(f"ingest: seeds directory not found: {seeds_dir}", file=sys.stderr)
        return 2
    if not urls:
        print("ingest: no feed URLs given", file=sys.stderr)
        return 2
    try:
        reports = ingest_feeds(urls, seeds_dir)
    except OSError as exc:  # the directory itself is unreadable; per-file errors are per feed
        print(f"ingest: cannot read seeds directory: {exc}", file=sys.stderr)
        return 2
    for report in reports:
        for note in report.notes:
            print(f"{report.url}: {note}", file=sys.stderr)
        print(format_report(report), file=sys.stderr if report.error else sys.stdout)
    return 1 if any(r.error for r in reports) else 0
