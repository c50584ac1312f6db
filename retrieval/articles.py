"""Seed file bodies → Articles → Passages: pure functions (the header is seedfile's job).

The body is a feed item's HTML on one line (docs/retrieval.md lists the variants it survives):

    <div><i>RFC 822 date</i></div><img …><div><small>caption</small></div>台北 — <p>…</p>
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, PageElement, Tag

from retrieval import seedfile
from retrieval.models import Article, Paragraph, Passage
from retrieval.seedfile import SeedFormatError

PASSAGE_MAX_CHARS = 400  # longer paragraphs are split at sentence ends
FRAGMENT_MIN_CHARS = 8  # shorter pieces are merged into a neighbour

_CHINESE_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")
_DATELINE = re.compile(r"\A(.{1,24}?)\s*[—–-]{1,2}\s*\Z")
_SENTENCE = re.compile(r"[^。！？!?；;]*[。！？!?；;]+[”’」』）)\"']*|[^。！？!?；;]+\Z")
_SPACES = re.compile(r"\s+")

_BLOCKS = frozenset(
    (
        "address article aside blockquote dd div dl dt figcaption figure footer h1 h2 h3 h4 h5"
        " h6 header li main nav ol p pre section table tbody td tfoot th thead tr ul"
    ).split()
)
_INVISIBLE = ("script", "style", "noscript", "template", "iframe", "object", "embed", "svg")


def read_article(path: Path, source: str) -> Article:
    """Read and parse one seed file; raise SeedFormatError (with the reason) if it can't be."""
    return parse_article(seedfile.read_text(path), source)


def parse_article(text: str, source: str = "") -> Article:
    """Parse the text of a seed file into an Article."""
    header = seedfile.split_header(text)
    if not header.title:
        raise SeedFormatError("empty title")
    body = _parse_body(header.body)
    published = body.published or _from_epoch_ms(header.comment_ms)
    if published is None:
        raise SeedFormatError("no publication date (neither <!--ms--> nor a date in the body)")
    return Article(
        id=seedfile.article_id(header.url),
        title=header.title,
        url=header.url,
        published=published,
        paragraphs=body.paragraphs,
        captions=body.captions,
        dateline=body.dateline,
        source=source,
    )


def _from_epoch_ms(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def parse_date(text: str) -> datetime | None:
    """An RFC 822 date (`Mon, 10 Feb 2025 22:51:04 GMT`) or a Chinese one (`2020年 7月 18日`)."""
    text = text.strip()
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        parsed = None
    if parsed is not None:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if m := _CHINESE_DATE.search(text):
        try:
            return datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC)
        except ValueError:
            return None
    return None


class _Body:
    def __init__(self) -> None:
        self.published: datetime | None = None
        self.captions: tuple[str, ...] = ()
        self.dateline: str | None = None
        self.paragraphs: tuple[Paragraph, ...] = ()


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _parse_body(html: str) -> _Body:
    body = _Body()
    soup = BeautifulSoup(html, "lxml")
    # one walk of the tree for every element looked at here (each walk costs the same)
    found = soup.find_all([*_INVISIBLE, "img", "i", "small"])
    for tag in found:
        if (tag.name in _INVISIBLE or tag.name == "img") and not tag.decomposed:
            tag.decompose()
    found = [tag for tag in found if not tag.decomposed]
    # The feed's own date: <div><i>…</i></div> (or the first <i> that parses as a date).
    for italic in [tag for tag in found if tag.name == "i"][:3]:
        if date := parse_date(italic.get_text()):
            body.published = date
            italic.decompose()
            break
    # Every <small> is a photo caption: the lead image's, and those of images further down.
    captions = []
    for small in found:
        if small.name != "small" or small.decomposed:
            continue
        if text := _clean(small.get_text()):
            captions.append(text)
        small.decompose()
    body.captions = tuple(captions)
    if body.published is None and (date := parse_date(soup.get_text(" ")[:400])):
        body.published = date

    blocks = _blocks(soup)
    if blocks and not blocks[0][1] and (m := _DATELINE.match(blocks[0][0])):
        body.dateline = m.group(1).strip()
        blocks = blocks[1:]
    paragraphs: list[Paragraph] = []
    section: str | None = None
    for text, is_heading in blocks:
        if is_heading:
            section = text
        else:
            paragraphs.append(Paragraph(text, section))
    body.paragraphs = tuple(paragraphs)
    return body


def _blocks(soup: BeautifulSoup) -> list[tuple[str, bool]]:
    """The visible text as blocks: split at block elements and <br>, headings flagged."""
    blocks: list[tuple[str, bool]] = []
    buffer: list[str] = []

    def flush(is_heading: bool = False) -> None:
        text = _clean("".join(buffer))
        buffer.clear()
        if text:
            blocks.append((text, is_heading))

    # An explicit stack, not recursion: a hostile file may nest thousands of elements.
    # Each entry is an element's children still to visit and whether it ends a block.
    stack: list[tuple[Iterator[PageElement], bool]] = [(iter(soup.children), False)]
    while stack:
        children, ends_block = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if ends_block:
                flush()
        elif isinstance(child, NavigableString):
            if type(child) is NavigableString:  # not a Comment, CData, Doctype
                buffer.append(str(child))
        elif child.name == "br":
            flush()
        elif child.name in ("strong", "b") and not "".join(buffer).strip() and _alone(child):
            buffer.clear()
            buffer.append(child.get_text())  # a bold line between breaks: a heading
            flush(is_heading=True)
        elif child.name in _BLOCKS:
            flush()
            if _is_heading(child):
                buffer.append(child.get_text())
                flush(is_heading=True)
            else:
                stack.append((iter(child.children), True))
        elif isinstance(child, Tag):
            stack.append((iter(child.children), False))
    flush()
    return blocks


def _alone(tag: Tag) -> bool:
    """Short bold text with a line break or a block (or nothing) on both sides."""
    if len(_clean(tag.get_text())) > 80:
        return False
    for direction in ("next_sibling", "previous_sibling"):
        sibling = getattr(tag, direction)
        while isinstance(sibling, NavigableString) and not str(sibling).strip():
            sibling = getattr(sibling, direction)
        if sibling is None:
            continue
        if isinstance(sibling, NavigableString) or (
            sibling.name != "br" and sibling.name not in _BLOCKS
        ):
            return False
    return bool(_clean(tag.get_text()))


def _is_heading(tag: Tag) -> bool:
    """<p><strong>…</strong></p> or <h1>–<h6>: a section heading, not a passage."""
    if tag.name in ("h1", "h2", "h3", "h4", "h5", "h6"):
        return True
    if tag.name != "p":
        return False
    # cheap test first: every child is bold or blank (most paragraphs fail at the first child)
    bold = []
    for child in tag.children:
        if isinstance(child, Tag):
            if child.name not in ("strong", "b"):
                return False
            bold.append(child.get_text())
        elif str(child).strip():
            return False
    text = _clean("".join(bold))
    return bool(text) and len(text) <= 80


# --- passages --------------------------------------------------------------------------------

# What a reader does not accept as an answer (docs/retrieval.md, "Passages a reader accepts
# as answers"): found by looking at the blocks that recur across the VOA corpus, not tuned to
# any question.
_URL = re.compile(r"(?:https?://|www\.)\S+|\b(?:bit\.ly|youtu\.be|t\.co)/\S+", re.I)
_WORD_CHAR = re.compile(r"\w")
_ENDS_WITH_COLON = re.compile(r"[:：]\s*\Z")
_WHOLLY_BRACKETED = re.compile(r"\A[（(][^（()）]*[)）]\Z")
LINK_LINE_MAX_WORD_CHARS = 20  # a block with a link and fewer other letters is a link line
LABEL_MAX_CHARS = 12  # a block this short ending in a colon labels a link (获取更多RSS：)
NOTE_MAX_CHARS = 60  # a bracketed block this short is a source note (（本文依据了路透社的报道）)
HEADING_MAX_CHARS = 30  # a line this short without a sentence end, before a paragraph
_SENTENCE_END = re.compile(r"[。！？!?…．.”’」』\"')）:：]\Z")


def boilerplate(text: str) -> str | None:
    """Why a block is not a passage a reader accepts as an answer; None when it is one."""
    if not _WORD_CHAR.search(text):
        return "separator"  # ==========
    if _URL.search(text):
        rest = _URL.sub("", text)
        if len(_WORD_CHAR.findall(rest)) < LINK_LINE_MAX_WORD_CHARS or _ENDS_WITH_COLON.search(
            rest
        ):
            return "link"  # https://feedx.net, 《时事大家谈》YouTube播放列表：http://bit.ly/…
    if len(text) <= LABEL_MAX_CHARS and _ENDS_WITH_COLON.search(text):
        return "label"  # 获取更多RSS：
    if len(text) <= NOTE_MAX_CHARS and _WHOLLY_BRACKETED.match(text):
        return "note"  # （本文依据了路透社的报道）, （完）
    return None


def passages_of(article: Article) -> list[Passage]:
    """One passage per paragraph; long ones split, tiny ones merged with a neighbour.

    Captions, boilerplate and heading-like lines are not passages: a short line without a
    sentence end that precedes a paragraph labels the paragraphs under it, as a heading."""
    pieces: list[tuple[str, str | None]] = []
    section: str | None = None
    paragraphs = article.paragraphs
    for i, paragraph in enumerate(paragraphs):
        if paragraph.section != (paragraphs[i - 1].section if i else None):
            section = None  # a marked-up heading starts a new section
        text = paragraph.text
        if (
            len(text) <= HEADING_MAX_CHARS
            and not _SENTENCE_END.search(text)
            and i + 1 < len(paragraphs)
            and len(paragraphs[i + 1].text) > HEADING_MAX_CHARS
            and not boilerplate(text)
        ):
            section = text
            continue
        pieces.extend(
            (chunk, section or paragraph.section)
            for chunk in split_long(text)
            if not boilerplate(chunk)
        )
    merged: list[tuple[str, str | None]] = []
    for text, section in pieces:
        # A full passage takes no more fragments: a run of thousands of tiny paragraphs
        # becomes passages of about PASSAGE_MAX_CHARS, and merging stays linear.
        if merged and len(text) < FRAGMENT_MIN_CHARS and len(merged[-1][0]) <= PASSAGE_MAX_CHARS:
            prev_text, prev_section = merged[-1]
            merged[-1] = (f"{prev_text}\n{text}", prev_section)
        elif merged and len(merged[-1][0]) < FRAGMENT_MIN_CHARS:
            prev_text, _ = merged[-1]
            merged[-1] = (f"{prev_text}\n{text}", section)
        else:
            merged.append((text, section))
    return [
        Passage(id=f"{article.id}:{i}", ordinal=i, text=t, section=s)
        for i, (t, s) in enumerate(merged)
    ]


def split_long(text: str, limit: int = PASSAGE_MAX_CHARS) -> list[str]:
    """Split a paragraph longer than `limit` at sentence ends into pieces of at most ~limit.

    Linear in the length of the text, however long a sentence runs."""
    if len(text) <= limit:
        return [text]
    sentences = [s for s in _SENTENCE.findall(text) if s.strip()]
    chunks: list[str] = []
    current = ""
    for sentence in sentences:
        # One run-on sentence: cut it at a comma, else hard. Cut by offsets: slicing off the
        # rest at each cut copies it each time, quadratic in a megabyte without a full stop.
        start = 0
        while len(sentence) - start > limit:
            end = start + limit
            cut = max(sentence.rfind("，", start, end), sentence.rfind(",", start, end))
            cut = cut + 1 if cut - start > limit // 2 else end
            if current:
                chunks.append(current)
                current = ""
            chunks.append(sentence[start:cut])
            start = cut
        sentence = sentence[start:]
        if current and len(current) + len(sentence) > limit:
            chunks.append(current)
            current = ""
        current += sentence
    if current:
        chunks.append(current)
    return [c.strip() for c in chunks if c.strip()]


# --- who speaks --------------------------------------------------------------------------------

# Verbs that introduce someone's words (说, 表示…), for the kinds of sentences news quotes in.
_SPEECH = r"(?:说|表示|指出|认为|称|强调|透露|坦言|警告|解释|补充|回应|提到|介绍|写道)"
# A passage that quotes someone without naming them: a pronoun or "the official" (他说：“…”,
# 该官员指出…), or a bare quote followed by one (“…”她说).
UNNAMED_SPEAKER = re.compile(
    r"\A(?:“[^”]{0,300}”[，,]?\s*)?"
    r"(?:他们|她们|他|她|该官员|这位官员|这名官员|该人士|此人|对方|这位|这名|该)"
    rf"[^，,。：:“”]{{0,8}}?{_SPEECH}"
)
_NAMED_SPEECH = re.compile(rf"[^。！？]*?{_SPEECH}")
# words inside a quote, a speaker's own "we", or another pronoun: they name nobody
_QUOTED_OR_FIRST_PERSON = re.compile(r"[“”\"]|\A(?:但|而|并|也)?(?:我|你|他|她)")
_BETWEEN_SENTENCES = re.compile(r"(?<=[。！？])")
SPEAKER_CHARS = 80  # the most of the words that name a speaker shown


def speaker(passages: Sequence[Passage], ordinal: int) -> str | None:
    """For a passage that quotes someone it does not name, the words of the article that do:
    the nearest earlier sentence (in the two passages before it) in which someone speaks and
    is named, up to the verb (华盛顿哈德逊研究所研究员长尾贤认为). None for any other passage."""
    if not UNNAMED_SPEAKER.match(passages[ordinal].text):
        return None
    for earlier in reversed(passages[max(0, ordinal - 2) : ordinal]):
        for sentence in reversed(_BETWEEN_SENTENCES.split(earlier.text)):
            sentence = sentence.strip()
            if not sentence or UNNAMED_SPEAKER.match(sentence):
                continue
            said = _NAMED_SPEECH.match(sentence)
            if said and not _QUOTED_OR_FIRST_PERSON.search(said.group()):
                words = said.group()
                return words if len(words) <= SPEAKER_CHARS else words[: SPEAKER_CHARS - 1] + "…"
    return None
