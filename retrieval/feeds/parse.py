"""Feed bytes → items: pure functions (no network, no files).

`parse_feed` reads RSS 0.9x/1.0/2.0 and Atom with feedparser; `sanitize_html` cleans an item's
HTML. Policies, so they are written down:

- A feed fails as a whole (FeedError) when it is not RSS/Atom or not well-formed XML.
  feedparser's loose parser recovers items from truncated XML; we refuse them, since a
  truncated item would be written as if complete. The two bozo kinds that say nothing about
  the XML itself are accepted: CharacterEncodingOverride (declared encoding was wrong,
  feedparser found the right one) and NonXMLContentType (a feed served as text/html).
- Items without a title, an http(s) link or any content are skipped, one note each; so is an
  item with a date no datetime holds (year 10000) and an item that fails in any other way
  (markup the HTML parser rejects): one item never costs the feed.
- An item without a date gets the feed's date, else the fetch time, and counts as undated.
"""

from __future__ import annotations

import calendar
import html
import html.entities
import io
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urljoin

import feedparser
from bs4 import BeautifulSoup, CData, Comment, Declaration, Doctype, ProcessingInstruction
from bs4.dammit import EntitySubstitution
from bs4.formatter import HTMLFormatter

from retrieval.seedfile import is_web_url

logger = logging.getLogger(__name__)

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
    html: str  # sanitised (seedfile.render puts it on one line)
    dated: bool = True  # False: the date came from the feed or the fetch time


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """The usable items of a feed and why the others were left out."""

    items: tuple[FeedItem, ...]
    rejected: tuple[str, ...] = ()


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Drop active content and make links absolute against `base_url`.

    Removes script/style/iframe/object-like elements with their content, comments,
    on* attributes and javascript:/vbscript:/data:/file: URLs.
    """
    soup = BeautifulSoup(fragment, "html.parser")
    for node in soup.find_all(string=True):
        if isinstance(node, Comment | CData | Declaration | Doctype | ProcessingInstruction):
            node.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    base = base_url if base_url and is_web_url(base_url) else None
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
    return soup.decode(formatter=_FORMATTER).strip()


def _struct_ms(value: time.struct_time | None) -> int | None:
    """Epoch milliseconds of a feedparser date, None without one; ValueError for a date no
    datetime holds (year 10000 once a time zone is applied), which no file could be named by."""
    if not value:
        return None
    try:
        ms = calendar.timegm(value) * 1000
        datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"date out of range: {exc}") from exc
    return ms


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
    try:
        feed_ms = _struct_ms(feed.get("updated_parsed") or feed.get("published_parsed"))
    except ValueError:
        feed_ms = None  # the feed's own date only stands in for missing item dates
    fallback_ms = feed_ms if feed_ms is not None else (now_ms or int(time.time() * 1000))
    items: list[FeedItem] = []
    rejected: list[str] = []
    for number, entry in enumerate(parsed.get("entries", []), start=1):
        try:
            outcome = _item(entry, number, feed_url, fallback_ms)
        except Exception as exc:  # whatever one item holds, the others are still read
            logger.debug("%s: item %d failed", feed_url, number, exc_info=True)
            reason = _one_line(f"{type(exc).__name__}: {exc}")
            outcome = f"skipped item {number}: unreadable: {reason[:120]}"
        if isinstance(outcome, str):
            rejected.append(outcome)
        else:
            items.append(outcome)
    return ParsedFeed(tuple(items), tuple(rejected))


def _item(
    entry: feedparser.FeedParserDict, number: int, feed_url: str, fallback_ms: int
) -> FeedItem | str:
    """One entry as a FeedItem, or the note saying why it is skipped."""
    title = _one_line(entry.get("title", ""))
    if entry.get("title_detail", {}).get("type") == "text/html":
        title = _one_line(BeautifulSoup(title, "html.parser").get_text())
    raw_link = (entry.get("link") or "").strip()
    label = f"item {number}" + (f" ({title[:60]!r})" if title else "")
    if not raw_link:
        return f"skipped {label}: no link"
    try:
        link = urljoin(feed_url, raw_link)
    except ValueError:  # "http://[x" and the like
        return f"skipped {label}: unusable link: {raw_link[:80]}"
    # A space or newline inside the URL would break the `[title](url)` line.
    link = re.sub(r"\s", lambda m: quote(m.group()), link)
    if not is_web_url(link):
        return f"skipped {label}: link is not http(s): {raw_link[:80]}"
    if not title:
        return f"skipped {label}: no title ({link})"
    try:
        ms = _struct_ms(
            entry.get("published_parsed")
            or entry.get("updated_parsed")
            or entry.get("created_parsed")
        )
    except ValueError:
        raw = entry.get("published") or entry.get("updated") or entry.get("created") or ""
        return f"skipped {label}: date out of range: {_one_line(str(raw))[:60]}"
    body = sanitize_html(_entry_html(entry), link)
    if not body:
        return f"skipped {label}: no content"
    return FeedItem(
        title=title,
        link=link,
        published_ms=ms if ms is not None else fallback_ms,
        html=body,
        dated=ms is not None,
    )
