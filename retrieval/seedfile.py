"""The seed file format, in one place: headers read and written, files named, found and read.

A seed file, as the public feed archiver writes it (one feed item a file):

    <!--1739228342000-->                    the item's date, epoch milliseconds (UTC)
    [title](url)
    ------

    <div><i>Mon, 10 Feb 2025 22:51:04 GMT</i></div><img …><div><small>caption</small></div>…

The body (the feed's HTML on one line) is parsed by `retrieval.articles`. Variants survived
here: YAML front matter before the comment, CRLF, a BOM, titles holding `[ ] (` and URLs
holding `)`. Feed ingest records the feed that wrote a file in front matter
(`feed: "<url>"`), which decides which feeds may rewrite it. Which URL an article *is* is
decided here too (`canonical_url`), so the index and feed ingest agree on what "the same
article" means.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

SUFFIXES = (".txt", ".md")
MAX_FILE_BYTES = 20 * 1024 * 1024
HEAD_BYTES = 8192  # enough for YAML front matter, the comment and a long title line

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.S)
_FEED_LINE = re.compile(r"^feed:[ \t]*(\S.*?)[ \t]*$", re.M)
_TIME_COMMENT = re.compile(r"\A\s*<!--\s*(-?\d{1,16})\s*-->[ \t]*\n")
# Greedy title and a space-free URL: titles may hold "[", "]" or "(", URLs may hold ")".
_TITLE_LINK = re.compile(r"\A\s*\[(.*)\]\((\S+)\)[ \t]*\n")
_RULE = re.compile(r"\A[ \t]*-{3,}[ \t]*\n")
_SPACES = re.compile(r"\s+")
# The names feed ingest gives the files it writes (and may therefore rewrite).
_INGEST_NAME = re.compile(r"^\d{8}-\d{6}_[0-9a-f]{16}\.txt$")


class SeedFormatError(ValueError):
    """The file is not a seed file this project understands; the message says why."""


@dataclass(frozen=True, slots=True)
class SeedHeader:
    """What a seed file says before its body."""

    title: str
    url: str
    comment_ms: int | None  # the <!--ms--> date, if the file has one
    body: str  # everything after the header (and its ------ rule)
    feed: str | None = None  # the feed that wrote the file (front matter `feed:`), if recorded


@dataclass(frozen=True, slots=True)
class SeedStat:
    """What tells whether a seed file changed since it was last read."""

    size: int
    mtime_ns: int


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL: the only kind that may become a link or a feed to fetch."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # e.g. "http://[x": urlsplit refuses it, so no client could fetch it
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


def canonical_url(url: str) -> str:
    """The form that identifies an article: trimmed, no #fragment, lower-case scheme and host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # unsplittable ("http://[x"): still one article, identified as written
        return url.strip().partition("#")[0]
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))


def article_id(url: str) -> str:
    """A stable id: every spelling of one article's URL (see canonical_url) gives the same id."""
    return hashlib.sha1(canonical_url(url).encode("utf-8")).hexdigest()[:16]


# --- reading -----------------------------------------------------------------------------------


def split_header(text: str) -> SeedHeader:
    """A seed file's header and the rest; raises SeedFormatError when there is no header.

    Reads no further than the header, so a file's first HEAD_BYTES are enough."""
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SeedFormatError("empty file")
    feed: str | None = None
    rest = text
    if front := _FRONT_MATTER.match(text):
        rest = text[front.end() :]
        if line := _FEED_LINE.search(front.group(1)):
            feed = _yaml_string(line.group(1))
    comment_ms: int | None = None
    if m := _TIME_COMMENT.match(rest):
        comment_ms = int(m.group(1))
        rest = rest[m.end() :]
    m = _TITLE_LINK.match(rest)
    if not m:
        raise SeedFormatError("no [title](url) header line")
    title, url = _SPACES.sub(" ", m.group(1)).strip(), m.group(2).strip()
    rest = rest[m.end() :]
    if rule := _RULE.match(rest):
        rest = rest[rule.end() :]
    return SeedHeader(title=title, url=url, comment_ms=comment_ms, body=rest, feed=feed)


def _yaml_string(value: str) -> str:
    """A front matter value: double-quoted as render writes it (JSON, which YAML reads), or
    plain."""
    try:
        return json.loads(value) if value.startswith('"') else value
    except ValueError:
        return value


def decode(raw: bytes) -> str:
    """UTF-8 (BOM or not); invalid bytes become U+FFFD; binary data is refused."""
    if b"\x00" in raw[:8192]:
        raise SeedFormatError("binary file (NUL bytes)")
    text = raw.decode("utf-8", errors="replace")
    if text.count("\ufffd") > max(16, len(text) // 10):
        raise SeedFormatError("not UTF-8 text")
    return text


def read_text(path: Path, limit: int = MAX_FILE_BYTES) -> str:
    """The decoded text of a seed file (its first `limit` bytes when `limit` < the maximum).

    Only a regular file is ever read: a FIFO, a device or a directory raises SeedFormatError
    without blocking (the file is opened non-blocking and checked before any read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise SeedFormatError(f"unreadable: {exc.strerror or exc}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SeedFormatError("not a regular file")
        if limit >= MAX_FILE_BYTES and st.st_size > MAX_FILE_BYTES:
            raise SeedFormatError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(min(limit, MAX_FILE_BYTES) + 1)
    except OSError as exc:
        raise SeedFormatError(f"unreadable: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:  # grew while being read
        raise SeedFormatError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    return decode(raw[:limit])


def read_header(path: Path) -> SeedHeader:
    """The header of a seed file, reading only its first HEAD_BYTES."""
    return split_header(read_text(path, HEAD_BYTES))


# --- finding -----------------------------------------------------------------------------------


def scan(seeds_dir: Path) -> dict[str, SeedStat]:
    """Every seed file under the directory, recursively: relative path → SeedStat.

    Hidden files and folders (ingest's half-written temporaries among them) are left out,
    and so is anything that is not a regular file inside the directory: a symlink is
    followed only when it leads to a regular file within `seeds_dir`, so whoever can
    write a symlink there cannot publish files from elsewhere on the machine."""
    root = seeds_dir.resolve()
    found: dict[str, SeedStat] = {}
    # os.scandir, not pathlib: at 50,000 files, pathlib's objects cost a second a scan
    folders: list[tuple[str, str]] = [(os.fspath(seeds_dir), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue  # vanished or unreadable: its files are not there to index
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue  # hidden, ingest's half-written temporaries among them
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, f"{prefix}{name}/"))
                    continue
                if not name.endswith(SUFFIXES):
                    continue
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    target = Path(entry.path).resolve(strict=True)
                    if not target.is_relative_to(root):
                        continue
                    st = target.stat()
            except (OSError, RuntimeError):
                continue  # vanished, or a symlink loop
            if stat.S_ISREG(st.st_mode):
                found[prefix + name] = SeedStat(st.st_size, st.st_mtime_ns)
    return found


# --- writing -----------------------------------------------------------------------------------


def render(
    title: str, url: str, published_ms: int, body_html: str, *, feed: str | None = None
) -> str:
    """The text of a seed file, as the archiver writes it (the body on one line); with `feed`,
    front matter first records the feed that wrote it."""
    title = _SPACES.sub(" ", title).strip()
    body = re.sub(r"[ \t]*[\r\n]+[ \t\r\n]*", " ", body_html).strip()
    # JSON quoting is valid YAML and keeps any character of the URL on its one line.
    front = f"---\nfeed: {json.dumps(feed.strip())}\n---\n" if feed else ""
    return f"{front}<!--{published_ms}-->\n[{title}]({url.strip()})\n------\n\n{body}\n"


def file_name(url: str, published_ms: int) -> str:
    """`<UTC yyyymmdd-HHMMSS>_<16 hex of the article id>.txt`: sorts by date, stable per URL."""
    when = datetime.fromtimestamp(published_ms / 1000, tz=UTC)
    return f"{when:%Y%m%d-%H%M%S}_{article_id(url)}.txt"


def is_ingest_file(path: Path) -> bool:
    """Whether feed ingest wrote this file (by its name), and may therefore rewrite it."""
    return bool(_INGEST_NAME.match(path.name))
