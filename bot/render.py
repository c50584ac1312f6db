"""Pure rendering: hits and articles → Telegram HTML (and plain text for the console).

Every piece of text from outside (articles, questions) goes through `esc`. Messages are kept
within Telegram's 4,096-character limit, counted as Telegram counts: UTF-16 code units of the
visible text after entity parsing. Passages are shortened (with an ellipsis, keeping the
matched words in view) rather than cutting the HTML, so no tag or entity is ever split.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from urllib.parse import urlsplit

from retrieval import Article, Hit, LibraryStats
from retrieval.analysis import merge_spans
from retrieval.seedfile import is_web_url

from . import commands
from .i18n import Lang, t

TELEGRAM_LIMIT = 4096
INLINE_DESCRIPTION_CHARS = 120
QUESTION_ECHO_CHARS = (
    60  # the question is echoed in headers; a 4,096-char one must not crowd out answers
)
TITLE_CHARS = 200
ELLIPSIS = "…"

_TAG_RE = re.compile(r"<[^>]*>")
_LINK_RE = re.compile(r'<a href="([^"]*)">(.*?)</a>', re.S)
_BOLD_RE = re.compile(r"</?(?:b|strong)>")


def esc(text: str) -> str:
    """Escape text for Telegram HTML (the three characters Telegram requires, plus quotes)."""
    return html.escape(text, quote=True)


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def visible_text(html_text: str) -> str:
    """The text a reader sees: tags dropped, entities decoded."""
    return html.unescape(_TAG_RE.sub("", html_text))


def visible_len(html_text: str) -> int:
    return utf16_len(visible_text(html_text))


def shorten(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-16 units, ending with an ellipsis when cut."""
    text = " ".join(text.split())
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


def source_name(url: str) -> str:
    """What the source link says: the site's host name without www."""
    host = urlsplit(url).hostname or url
    return host.removeprefix("www.")


def link(url: str, label: str) -> str:
    """An <a> tag; a URL Telegram would reject becomes plain text instead of a broken message."""
    if is_web_url(url):
        return f'<a href="{esc(url)}">{esc(label)}</a>'
    return esc(label)


def _fit(fixed: int, lengths: Sequence[int], limit: int) -> int | None:
    """The largest cap c such that fixed + sum(min(len, c)) <= limit, or None if all fit."""
    if fixed + sum(lengths) <= limit:
        return None
    room = max(limit - fixed, 0)
    low, high = 0, max(lengths, default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(min(n, mid) for n in lengths) <= room:
            low = mid
        else:
            high = mid - 1
    return low


def _passage_block(hit: Hit, number: int | None, limit: int | None) -> str:
    title = shorten(hit.article.title, TITLE_CHARS)
    head = f"{number}. " if number is not None else ""
    heading = f"<b>{esc(head + title)}</b>"
    if hit.passage.section:
        heading += f" · <b>{esc(shorten(hit.passage.section, TITLE_CHARS))}</b>"
    text, spans = hit.passage.text, list(hit.spans)
    if limit is not None:
        text, spans = excerpt(text, spans, limit)
    source = link(hit.article.url, source_name(hit.article.url))
    footer = f"🔗 {source} · {fmt_date(hit.article.published)}"
    return f"{heading}\n{highlight(text, spans)}\n{footer}"


def _fit_blocks(render, lengths: Sequence[int], limit: int) -> str:
    """Render with every variable text at full length, or shrink them evenly until it fits."""
    full = render(None)
    total = visible_len(full)
    if total <= limit:
        return full
    fixed = total - sum(lengths)
    cap = _fit(fixed, lengths, limit)
    while True:
        out = render(cap)
        if visible_len(out) <= limit or not cap:
            return out
        cap = int(cap * 0.9)  # ellipses can overshoot the estimate by a unit or two


def render_answer(
    hits: Sequence[Hit], *, question: str, lang: Lang, page: int = 0, per_page: int | None = None
) -> str:
    """One page of answers: a header, then each passage with its title, section, link and date."""
    per_page = per_page or len(hits) or 1
    header = t(
        lang, "results_header", question=esc(shorten(question, QUESTION_ECHO_CHARS)), page=page + 1
    )

    def render(cap: int | None) -> str:
        blocks = [_passage_block(hit, page * per_page + i + 1, cap) for i, hit in enumerate(hits)]
        return "\n\n".join([header, *blocks])

    return _fit_blocks(render, [utf16_len(h.passage.text) for h in hits], TELEGRAM_LIMIT)


def render_no_results(question: str, lang: Lang) -> str:
    return t(lang, "no_results", question=esc(shorten(question, QUESTION_ECHO_CHARS)))


def render_inline_message(hit: Hit) -> str:
    """The message an inline result sends: one passage with its title and link."""
    return _fit_blocks(
        lambda cap: _passage_block(hit, None, cap),
        [utf16_len(hit.passage.text)],
        TELEGRAM_LIMIT,
    )


def inline_description(hit: Hit) -> str:
    """Plain-text snippet for an inline result: the passage around its first match."""
    text, _ = excerpt(" ".join(hit.passage.text.split()), hit.spans, INLINE_DESCRIPTION_CHARS)
    return text


def _article_block(article: Article, cap: int | None) -> str:
    lead = article.first_sentence
    if cap is not None:
        lead = shorten(lead, cap)
    title = shorten(article.title, TITLE_CHARS)
    line = f"<b>{fmt_date(article.published)}</b> {link(article.url, title)}"
    return f"{line}\n{esc(lead)}" if lead else line


def render_latest(articles: Sequence[Article], lang: Lang) -> str:
    """Newest first: date, linked title, first sentence."""
    if not articles:
        return t(lang, "latest_empty")
    header = t(lang, "latest_header", n=len(articles))

    def render(cap: int | None) -> str:
        return "\n\n".join([header, *(_article_block(a, cap) for a in articles)])

    return _fit_blocks(render, [utf16_len(a.first_sentence) for a in articles], TELEGRAM_LIMIT)


def render_inline_article(article: Article) -> str:
    """The message an inline result for an article sends (empty inline query)."""
    return _fit_blocks(
        lambda cap: _article_block(article, cap),
        [utf16_len(article.first_sentence)],
        TELEGRAM_LIMIT,
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
    title = shorten(article.title, TITLE_CHARS)
    line = f"🆕 <b>{fmt_date(article.published)}</b> {link(article.url, title)}"

    def render(cap: int | None) -> str:
        text = lead if cap is None else shorten(lead, cap)
        return f"{line}\n\n{esc(text)}" if text else line

    return _fit_blocks(render, [utf16_len(lead)], TELEGRAM_LIMIT)


def render_about(stats: LibraryStats, lang: Lang, *, show_skipped: bool = False) -> str:
    newest = fmt_date(stats.newest) if stats.newest else t(lang, "none")
    text = t(lang, "about", articles=stats.articles, passages=stats.passages, newest=newest)
    if show_skipped and stats.skipped:
        lines = [t(lang, "about_skipped", count=len(stats.skipped))]
        lines += [f"• {esc(s.path)}: {esc(shorten(s.reason, 200))}" for s in stats.skipped[:20]]
        text = shorten_html_lines(text + "\n\n" + "\n".join(lines))
    return text


def shorten_html_lines(text: str, limit: int = TELEGRAM_LIMIT) -> str:
    """Drop whole trailing lines (never part of a tag) until the message fits."""
    lines = text.split("\n")
    while len(lines) > 1 and visible_len("\n".join(lines)) > limit:
        lines.pop()
    return "\n".join(lines)


_TOPIC_SPLIT_RE = re.compile(r"[：:，,。！？!?；;“”\"「」『』、（）()《》\[\]\s|—–-]+")


def example_topics(articles: Iterable[Article], limit: int = 3) -> list[str]:
    """Short topics (pieces of titles, section headings) for the example questions in /help,
    taken round-robin over the newest articles so the examples cover different stories."""
    per_article: list[list[str]] = []
    for article in articles:
        sources = [article.title, *(p.section for p in article.paragraphs if p.section)]
        pieces = [
            p for src in sources for p in _TOPIC_SPLIT_RE.split(src or "") if 4 <= len(p) <= 14
        ]
        per_article.append(pieces)
    topics: list[str] = []
    for round_ in range(max((len(p) for p in per_article), default=0)):
        for pieces in per_article:
            if round_ < len(pieces) and pieces[round_] not in topics:
                topics.append(pieces[round_])
            if len(topics) >= limit * 3:
                return topics
    return topics


def render_help(lang: Lang, *, examples: Sequence[str], articles: int, bot_username: str) -> str:
    if examples:
        lines = "\n".join(f"• <code>{esc(q)}</code>" for q in examples)
    else:
        lines = t(lang, "no_examples")
    bot = esc(bot_username)
    return t(
        lang,
        "help",
        examples=lines,
        articles=articles,
        bot=bot,
        commands=commands.help_lines(lang, bot),
    )


def to_plain(html_text: str, *, bold: tuple[str, str] = ("", "")) -> str:
    """Telegram HTML → terminal text: links become "label (url)", bold uses the given markers."""
    text = _LINK_RE.sub(lambda m: f"{m.group(2)} ({m.group(1)})", html_text)
    text = _BOLD_RE.sub(lambda m: bold[1] if m.group(0).startswith("</") else bold[0], text)
    return visible_text(text)
