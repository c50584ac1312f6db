"""Pure rendering: hits and articles → Telegram HTML (and plain text for the console).

Every piece of text from outside (articles, feeds, questions) goes through `esc`, which also
drops control characters and bidi overrides; only http(s) URLs become links (`link_url`).
Messages are kept within Telegram's 4,096-character limit, counted as Telegram counts: UTF-16
code units of the visible text after entity parsing. Every text from outside in a message is
a variable part with a weight: when the message is too long, all of them are shortened
together (part i to at most weight_i × one cap, with an ellipsis; passages keep their matched
words in view) until it fits (`_fit_blocks`). The HTML is never cut, so no tag or entity is
ever split, and no title, heading, host or passage is long enough to overflow a message.
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from retrieval import Article, Hit, LibraryStats, merge_spans, printable

from . import commands
from .i18n import Lang, counted, t

TELEGRAM_LIMIT = 4096
INLINE_DESCRIPTION_CHARS = 120
QUESTION_ECHO_CHARS = (
    60  # the question is echoed in headers; a 4,096-char one must not crowd out answers
)
# A declined answer names the question's words the closest article lacks: this many at most,
# each shortened to this many characters (they come from the question, which may be long).
MISSING_WORDS_SHOWN = 5
MISSING_WORD_CHARS = 20
TITLE_CHARS = 200  # the most of a title or section heading shown, however much room there is
HOST_CHARS = 60  # the most of a link's host name shown
# Not a documented Telegram limit: no article URL is this long, and one that is stays text.
MAX_URL_CHARS = 2048
# Weights of the variable parts (see _fit_blocks): a passage or a lead is what the reader came
# for, so it keeps three times the room of a title, a heading or a host name.
TEXT_WEIGHT = 3
NAME_WEIGHT = 1
ELLIPSIS = "…"
_WHOLE = sys.maxsize  # "no most": the whole text

_TAG_RE = re.compile(r"<[^>]*>")
_LINK_RE = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.S)
_BOLD_RE = re.compile(r"(</?(?:b|strong)>)")


def esc(text: str) -> str:
    """Text from outside, made safe for Telegram HTML: escaped (the three characters Telegram
    requires, plus quotes), control characters and bidi overrides dropped."""
    return html.escape(printable(text), quote=True)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def visible_text(html_text: str) -> str:
    """The text a reader sees: tags dropped, entities decoded."""
    return html.unescape(_TAG_RE.sub("", html_text))


def visible_len(html_text: str) -> int:
    return utf16_len(visible_text(html_text))


def shorten(text: str, limit: int) -> str:
    """`text` on one line, printable, cut to at most `limit` UTF-16 units, ending with an
    ellipsis when cut."""
    text = printable(" ".join(text.split()))
    if utf16_len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    while cut and utf16_len(cut) > limit - 1:
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS


def excerpt(
    text: str, spans: Sequence[tuple[int, int]], limit: int
) -> tuple[str, list[tuple[int, int]]]:
    """A window of `text` of at most `limit` UTF-16 units that starts a little before the first
    matched span, with ellipses where it was cut; spans are re-based to the window."""
    merged = merge_spans(spans, len(text))
    if utf16_len(text) <= limit:
        return text, list(merged)
    limit = max(limit, 3)
    budget = limit - 2  # room for an ellipsis at each end
    first = merged[0][0] if merged else 0
    # Some context before the first match, so the reader sees why it matched.
    start = max(0, first - budget // 4)
    end = start
    used = 0
    while end < len(text) and used + utf16_len(text[end]) <= budget:
        used += utf16_len(text[end])
        end += 1
    # A window that reaches the end can take back room at the start.
    while end == len(text) and start > 0 and used + utf16_len(text[start - 1]) <= budget:
        start -= 1
        used += utf16_len(text[start])
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(text) else ""
    shift = len(prefix) - start
    window_spans = [
        (max(s, start) + shift, min(e, end) + shift) for s, e in merged if e > start and s < end
    ]
    return prefix + text[start:end] + suffix, window_spans


def highlight(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """Escaped `text` with the given character spans in bold."""
    out: list[str] = []
    pos = 0
    for start, end in merge_spans(spans, len(text)):
        out.append(esc(text[pos:start]))
        out.append(f"<b>{esc(text[start:end])}</b>")
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def fmt_date(when: datetime | None) -> str:
    return when.strftime("%Y-%m-%d") if when else "—"


def link_url(url: str) -> str | None:
    """`url` if it may become a link or an inline result's URL, else None: http(s) with a host,
    no spaces or control characters, at most MAX_URL_CHARS."""
    url = url.strip()
    if len(url) > MAX_URL_CHARS or url != printable(url) or any(c.isspace() for c in url):
        return None
    try:
        parts = urlsplit(url)
        web = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. "http://[x": not a URL at all
        return None
    return url if web else None


def source_name(url: str) -> str:
    """What the source link says: the site's host name without www."""
    try:
        host = urlsplit(url.strip()).hostname or url
    except ValueError:
        host = url
    return host.removeprefix("www.")


def link(url: str, label: str) -> str:
    """An <a> tag; a URL that is not a web link (javascript:, garbage) leaves the label as text."""
    label = esc(label) if label.strip() else "🔗"
    href = link_url(url)
    return f'<a href="{esc(href)}">{label}</a>' if href else label


# A variable part of a message: (its full length in UTF-16 units, its weight).
Part = tuple[int, int]
Render = Callable[[int | None], list[str]]


def _part(text: str | None, weight: int, most: int = _WHOLE) -> Part:
    return (min(utf16_len(text or ""), most), weight)


def _room(cap: int | None, weight: int, most: int = _WHOLE) -> int:
    """The room a part of this weight (shown up to `most`) gets under `cap` (None: no cap)."""
    return most if cap is None else min(most, cap * weight)


def _name(text: str, cap: int | None, most: int = TITLE_CHARS) -> str:
    """A title, heading or host name under `cap`."""
    return shorten(text, _room(cap, NAME_WEIGHT, most))


def _largest_cap(fixed: int, parts: Sequence[Part], limit: int) -> int:
    """The largest cap c with fixed + sum(min(length, weight × c)) <= limit."""
    room = max(limit - fixed, 0)
    low, high = 0, max((n for n, _ in parts), default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(n, w * mid) for n, w in parts) <= room:
            low = mid
        else:
            high = mid - 1
    return low


def _fit_blocks(render: Render, parts: Sequence[Part], limit: int = TELEGRAM_LIMIT) -> str:
    """The message `render` makes (its pieces, joined by blank lines) within `limit`: with every
    variable part at full length if that fits, else all of them shortened together under one
    cap; as a last resort (only fixed text left to cut), trailing pieces are dropped.

    `render(cap)` gets None for full length, else a cap it applies to each variable part as
    `_room(cap, weight)`; `parts` lists those parts' full lengths and weights."""
    pieces = render(None)
    total = visible_len("\n\n".join(pieces))
    if total <= limit:
        return "\n\n".join(pieces)
    cap = _largest_cap(total - sum(n for n, _ in parts), parts, limit)
    while True:
        pieces = render(cap)
        if visible_len("\n\n".join(pieces)) <= limit or not cap:
            break
        cap = int(cap * 0.9)  # ellipses and dropped characters make the estimate inexact
    while len(pieces) > 1 and visible_len("\n\n".join(pieces)) > limit:
        pieces.pop()
    return "\n\n".join(pieces)


def _passage_parts(hit: Hit) -> list[Part]:
    return [
        _part(hit.article.title, NAME_WEIGHT, TITLE_CHARS),
        _part(hit.passage.section, NAME_WEIGHT, TITLE_CHARS),
        _part(source_name(hit.article.url), NAME_WEIGHT, HOST_CHARS),
        _part(hit.speaker, NAME_WEIGHT, TITLE_CHARS),
        _part(hit.passage.text, TEXT_WEIGHT),
    ]


def _passage_block(hit: Hit, number: int | None, cap: int | None) -> str:
    head = f"{number}. " if number is not None else ""
    heading = f"<b>{esc(head + _name(hit.article.title, cap))}</b>"
    if hit.passage.section and printable(hit.passage.section).strip():
        heading += f" · <b>{esc(_name(hit.passage.section, cap))}</b>"
    text, spans = excerpt(hit.passage.text, hit.spans, _room(cap, TEXT_WEIGHT))
    host = _name(source_name(hit.article.url), cap, HOST_CHARS)
    footer = f"🔗 {link(hit.article.url, host)} · {fmt_date(hit.article.published)}"
    # who speaks, when the passage quotes someone it does not name: the article's own words
    said = f"🗣 {esc(_name(hit.speaker, cap))}\n" if hit.speaker else ""
    return f"{heading}\n{said}{highlight(text, spans)}\n{footer}"


def _echo(question: str) -> str:
    """A question (the user's or an earlier one) as a header quotes it."""
    return esc(shorten(question, QUESTION_ECHO_CHARS))


def _missing_clause(missing: Sequence[str], lang: Lang) -> str:
    """The clause naming the words the closest article lacks ("" when none is missing)."""
    if not missing:
        return ""
    words = [
        t(lang, "missing_word", word=esc(shorten(word, MISSING_WORD_CHARS)))
        for word in missing[:MISSING_WORDS_SHOWN]
    ]
    more = ELLIPSIS if len(missing) > MISSING_WORDS_SHOWN else ""
    return t(lang, "missing_words", words=t(lang, "missing_words_separator").join(words) + more)


def answer_header(
    question: str,
    lang: Lang,
    *,
    page: int = 0,
    confident: bool = True,
    missing: Sequence[str] = (),
    read_with: str | None = None,
) -> str:
    """What a page of passages opens with: what they are about, or (not confident) that they
    are not an answer and which words the closest article lacks; and, for a follow-up, the
    earlier question it was read with, always right under the line that names the question."""
    if confident:
        lines = [t(lang, "results_header", question=_echo(question), page=page + 1)]
    else:
        missing_words = _missing_clause(missing, lang)
        lines = [
            t(lang, "not_an_answer_header", question=_echo(question), missing=missing_words),
            t(lang, "not_an_answer_note", page=page + 1),
        ]
    if read_with:
        lines.insert(1, t(lang, "read_with", earlier=_echo(read_with)))
    return "\n".join(lines)


def render_answer(
    hits: Sequence[Hit],
    *,
    question: str,
    lang: Lang,
    page: int = 0,
    per_page: int | None = None,
    confident: bool = True,
    missing: Sequence[str] = (),
    read_with: str | None = None,
) -> str:
    """One page of passages: a header (answer_header), then each passage with its title,
    section, link and date."""
    per_page = per_page or len(hits) or 1
    header = answer_header(
        question, lang, page=page, confident=confident, missing=missing, read_with=read_with
    )

    def render(cap: int | None) -> list[str]:
        blocks = [_passage_block(hit, page * per_page + i + 1, cap) for i, hit in enumerate(hits)]
        return [header, *blocks]

    return _fit_blocks(render, [p for hit in hits for p in _passage_parts(hit)])


def render_no_results(question: str, lang: Lang) -> str:
    return t(lang, "no_results", question=_echo(question))


def render_inline_message(hit: Hit, note: str | None = None) -> str:
    """The message an inline result sends: one passage with its title and link, after `note`
    (trusted HTML) if given."""
    head = [note] if note else []
    return _fit_blocks(lambda cap: [*head, _passage_block(hit, None, cap)], _passage_parts(hit))


def render_related_note(question: str, lang: Lang) -> str:
    """The note in front of an inline result's passage when it is not an answer."""
    return t(lang, "inline_related_note", question=_echo(question))


def inline_description(hit: Hit) -> str:
    """Plain-text snippet for an inline result: the passage around its first match."""
    text, _ = excerpt(" ".join(hit.passage.text.split()), hit.spans, INLINE_DESCRIPTION_CHARS)
    return printable(text)


def _article_parts(article: Article, lead: str) -> list[Part]:
    return [_part(article.title, NAME_WEIGHT, TITLE_CHARS), _part(lead, TEXT_WEIGHT)]


def _article_line(article: Article, cap: int | None) -> str:
    """Date and linked title."""
    return f"<b>{fmt_date(article.published)}</b> {link(article.url, _name(article.title, cap))}"


def _lead(text: str, cap: int | None) -> str:
    return esc(shorten(text, _room(cap, TEXT_WEIGHT)))


def _article_block(article: Article, cap: int | None) -> str:
    lead = _lead(article.first_sentence, cap)
    line = _article_line(article, cap)
    return f"{line}\n{lead}" if lead.strip() else line


def render_latest(articles: Sequence[Article], lang: Lang) -> str:
    """Newest first: date, linked title, first sentence."""
    if not articles:
        return t(lang, "latest_empty")
    header = counted(lang, "latest_header", len(articles))
    return _fit_blocks(
        lambda cap: [header, *(_article_block(a, cap) for a in articles)],
        [p for a in articles for p in _article_parts(a, a.first_sentence)],
    )


def render_inline_article(article: Article) -> str:
    """The message an inline result for an article sends (empty inline query)."""
    return _fit_blocks(
        lambda cap: [_article_block(article, cap)], _article_parts(article, article.first_sentence)
    )


def first_paragraph(article: Article) -> str:
    """The article's first non-empty paragraph, whitespace-normalised (else its caption)."""
    for paragraph in article.paragraphs:
        text = " ".join(paragraph.text.split())
        if text:
            return text
    return " ".join((article.captions[0] if article.captions else "").split())


def render_new_article(article: Article) -> str:
    """A new article pushed to subscribers: date, linked title, first paragraph."""
    lead = first_paragraph(article)

    def render(cap: int | None) -> list[str]:
        text = _lead(lead, cap)
        line = f"🆕 {_article_line(article, cap)}"
        return [line, text] if text.strip() else [line]

    return _fit_blocks(render, _article_parts(article, lead))


def render_alert(items: Sequence[tuple[str, int, Hit]], lang: Lang) -> str:
    """A chat's topic alert: for each (topic, its number, passage), the topic it matched with
    how to stop following it, then the passage as in an answer."""
    header = t(lang, "alert_header")

    def render(cap: int | None) -> list[str]:
        blocks = [
            t(lang, "alert_topic", topic=_echo(topic), number=number)
            + "\n"
            + _passage_block(hit, None, cap)
            for topic, number, hit in items
        ]
        return [header, *blocks]

    return _fit_blocks(render, [p for _, _, hit in items for p in _passage_parts(hit)])


def render_follow_preview(topic: str, hits: Sequence[Hit], days: int, lang: Lang) -> str:
    """The console's /follow: the passages a topic would have been sent lately (none: say
    so)."""
    if not hits:
        return t(lang, "follow_preview_none", days=days, topic=_echo(topic))
    header = t(lang, "follow_preview_header", days=days, topic=_echo(topic))

    def render(cap: int | None) -> list[str]:
        return [header, *(_passage_block(hit, i + 1, cap) for i, hit in enumerate(hits))]

    return _fit_blocks(render, [p for hit in hits for p in _passage_parts(hit)])


def render_following(topics: Sequence[str], lang: Lang, at_most: int) -> str:
    """/following: a chat's topics, numbered as /unfollow takes them."""
    if not topics:
        return t(lang, "following_none")
    lines = [t(lang, "following_header", count=len(topics), most=at_most)]
    lines += [f"{n}. {esc(shorten(topic, TITLE_CHARS))}" for n, topic in enumerate(topics, 1)]
    lines.append(t(lang, "following_hint"))
    return shorten_html_lines("\n".join(lines))


def render_followed(outcome: str, topic: str, lang: Lang, at_most: int, *, count: int = 0) -> str:
    """The reply to /follow: followed, already followed, the chat's limit, or too vague."""
    return t(lang, f"follow_{outcome}", topic=_echo(topic), most=at_most, number=count)


def render_unfollowed(removed: Sequence[str], lang: Lang) -> str:
    """The reply to /unfollow: the topics removed."""
    if len(removed) == 1:
        return t(lang, "unfollowed_one", topic=_echo(removed[0]))
    return t(lang, "unfollowed_all", count=len(removed))


def render_about(stats: LibraryStats, lang: Lang, *, show_skipped: bool = False) -> str:
    newest = fmt_date(stats.newest) if stats.newest else t(lang, "none")
    text = t(
        lang,
        "about",
        articles=counted(lang, "articles", stats.articles),
        passages=counted(lang, "passages", stats.passages),
        newest=newest,
    )
    if show_skipped and stats.skipped:
        lines = [t(lang, "about_skipped", count=counted(lang, "files", len(stats.skipped)))]
        lines += [
            f"• {esc(shorten(str(s.path), TITLE_CHARS))}: {esc(shorten(s.reason, TITLE_CHARS))}"
            for s in stats.skipped[:20]
        ]
        text = shorten_html_lines(text + "\n\n" + "\n".join(lines))
    return text


def shorten_html_lines(text: str, limit: int = TELEGRAM_LIMIT) -> str:
    """Drop whole trailing lines (never part of a tag) until the message fits."""
    lines = text.split("\n")
    while len(lines) > 1 and visible_len("\n".join(lines)) > limit:
        lines.pop()
    return "\n".join(lines)


# Quotation marks a headline puts around names ("海葵"), which a question leaves out.
_QUOTES_RE = re.compile(r"[“”\"「」『』]")
# Where a headline's clauses meet: a colon, a dash, a comma, or (as Chinese headlines do) a
# space. The first clause is what happened; a later one seldom stands alone.
_CLAUSE_RE = re.compile(r"\s*(?:[：:，,；;|—–]|\s-\s|\s)\s*")
_QUESTION_END = ("？", "?", "吗", "嗎")
EVENT_CHARS = (6, 24)  # shorter is a teaser ("倒计时开始"), longer not what people type
QUESTION_CHARS = 30  # a headline that asks a question, asked as it is


def example_question(title: str, lang: Lang) -> str | None:
    """A whole question a person might ask about an article with this headline: the headline
    itself when it asks one, else what its first clause says happened ("石破首访特朗普"),
    asked about; None when the headline gives no such clause."""
    headline = " ".join(_QUOTES_RE.sub("", printable(title)).split())
    if headline.endswith(_QUESTION_END) and len(headline) <= QUESTION_CHARS:
        return headline if headline.endswith(("？", "?")) else headline + "？"
    low, high = EVENT_CHARS
    clauses = _CLAUSE_RE.split(headline)
    event = clauses[1] if len(clauses[0]) < low and len(clauses) > 1 else clauses[0]  # a teaser
    return t(lang, "example_question", topic=event) if low <= len(event) <= high else None


def example_candidates(articles: Iterable[Article], lang: Lang) -> list[str]:
    """Example questions for /help, one per article, newest first (see example_question)."""
    questions: list[str] = []
    for article in articles:
        question = example_question(article.title, lang)
        if question and question not in questions:
            questions.append(question)
    return questions


def render_ask_usage(example: str | None, lang: Lang) -> str:
    return t(lang, "ask_usage", example=esc(example) if example else "……")


def render_mention_usage(bot_username: str, lang: Lang) -> str:
    return t(lang, "mention_usage", bot=esc(bot_username))


def render_help(
    lang: Lang,
    *,
    examples: Sequence[str],
    articles: int,
    bot_username: str,
    console: bool = False,
) -> str:
    """/help: what the bot does, example questions, and the commands that work where it is
    shown (Telegram, or with `console` the terminal, which has no groups or inline mode)."""
    if examples:
        lines = "\n".join(f"• <code>{esc(q)}</code>" for q in examples)
    else:
        lines = t(lang, "no_sure_examples" if articles else "no_examples")
    bot = esc(bot_username)
    pieces = [
        help_intro(lang, articles),
        t(lang, "help_examples", examples=lines),
        t(lang, "help_commands", commands=commands.help_lines(lang, bot, console=console)),
    ]
    if not console:
        pieces.append(t(lang, "help_groups", bot=bot))
    return "\n\n".join(pieces)


def help_intro(lang: Lang, articles: int) -> str:
    """The first paragraph of /help: what the bot does, with how many articles."""
    return t(lang, "help_intro", articles=counted(lang, "news_articles", articles))


def to_plain(html_text: str, *, bold: tuple[str, str] = ("", "")) -> str:
    """Telegram HTML → terminal text: links become "label (url)", bold uses the given markers."""
    text = _LINK_RE.sub(lambda m: f"{m.group(2)} ({m.group(1)})", html_text)
    # Only the bold markers may reach the terminal as control characters, never the text.
    return "".join(
        (bold[1] if piece.startswith("</") else bold[0])
        if _BOLD_RE.fullmatch(piece)
        else printable(visible_text(piece))
        for piece in _BOLD_RE.split(text)
    )
