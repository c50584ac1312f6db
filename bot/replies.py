"""Replies composed from the library: the same functions serve Telegram and the console.

They call the library, which can block for milliseconds, so the Telegram handlers run them
with asyncio.to_thread; the console calls them directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from retrieval import MAX_QUERY_CHARS, Library

from . import render
from .i18n import Lang, t

LATEST_DEFAULT = 5
LATEST_MAX = 20
MAX_PAGES = 10
INLINE_MAX_RESULTS = 10
EXAMPLE_ARTICLES = 10  # the newest articles the examples in /help come from
EXAMPLES = 3
FOLLOW_PREVIEW_DAYS = 7  # the console's /follow: what a topic would have matched lately
FOLLOW_PREVIEW_PASSAGES = 5


@dataclass(frozen=True, slots=True)
class Answer:
    """One page of answers to a question."""

    html: str
    found: bool  # False: the "nothing found" reply
    has_more: bool  # a next page exists
    page: int
    confident: bool = False  # the engine judged that the passages answer the question
    context: tuple[str, ...] = ()  # the earlier questions it was read with; () read alone


def clean_question(text: str | None) -> str:
    """Whitespace-normalised question, capped for retrieval."""
    return " ".join((text or "").split())[:MAX_QUERY_CHARS]


def answer(
    library: Library,
    question: str,
    lang: Lang,
    *,
    context: Sequence[str] = (),
    page: int = 0,
    per_page: int = 3,
) -> Answer:
    """Page `page` (0-based) of the answers to `question`, which may follow up on the earlier
    questions in `context` (oldest first; the engine decides whether it does)."""
    page = max(0, min(page, MAX_PAGES - 1))
    # One hit more than this page needs tells whether a next page exists.
    result = library.search(question, k=(page + 1) * per_page + 1, context=context)
    hits = result.hits
    page_hits = hits[page * per_page : (page + 1) * per_page]
    if not page_hits:
        return Answer(
            render.render_no_results(question, lang), found=False, has_more=False, page=page
        )
    has_more = len(hits) > (page + 1) * per_page and page + 1 < MAX_PAGES
    html = render.render_answer(
        page_hits,
        question=question,
        lang=lang,
        page=page,
        per_page=per_page,
        confident=result.confident,
        missing=result.missing,
        read_with=result.read_with,
    )
    used = tuple(context) if result.read_with is not None else ()
    return Answer(html, True, has_more, page, result.confident, used)


def parse_latest_count(arg: str | None) -> int | None:
    """n from "/latest n": default when absent, capped to LATEST_MAX; None when not a number."""
    if arg is None or not arg.strip():
        return LATEST_DEFAULT
    try:
        n = int(arg.strip())
    except ValueError:
        return None
    return max(1, min(n, LATEST_MAX))


def latest(library: Library, arg: str | None, lang: Lang) -> str:
    n = parse_latest_count(arg)
    if n is None:
        return t(lang, "latest_usage", max=LATEST_MAX)
    return render.render_latest(library.latest(n), lang)


def about(library: Library, lang: Lang, *, admin: bool = False) -> str:
    return render.render_about(library.stats(), lang, show_skipped=admin)


def example_questions(library: Library, lang: Lang) -> list[str]:
    """Example questions made from the newest articles' headlines (render.example_question),
    kept only if the engine is confident the archive answers them. Worked out once for each
    set of newest articles: /help and /ask cost no searches until new articles arrive."""
    newest = tuple((ref.id, ref.published) for ref in library.article_refs()[:EXAMPLE_ARTICLES])
    return list(_confident_examples(library, lang, newest))


@lru_cache(maxsize=16)
def _confident_examples(
    library: Library, lang: Lang, newest: tuple[tuple[str, datetime], ...]
) -> tuple[str, ...]:
    questions: list[str] = []
    for question in render.example_candidates(library.latest(len(newest)), lang):
        if library.search(question, k=1).confident:
            questions.append(question)
        if len(questions) >= EXAMPLES:
            break
    return tuple(questions)


def help_text(library: Library, lang: Lang, bot_username: str, *, console: bool = False) -> str:
    """/help for Telegram, or with `console` for the terminal (only its commands)."""
    return render.render_help(
        lang,
        examples=example_questions(library, lang),
        articles=library.stats().articles,
        bot_username=bot_username,
        console=console,
    )


def ask_usage(library: Library, lang: Lang) -> str:
    """How to use /ask, with an example question from the articles."""
    examples = example_questions(library, lang)
    return render.render_ask_usage(examples[0] if examples else None, lang)


@dataclass(frozen=True, slots=True)
class InlineItem:
    """One inline result, before it becomes a Telegram object."""

    id: str
    title: str
    description: str
    html: str
    url: str | None  # http(s) only (render.link_url); None: the result shows no URL


def inline_items(library: Library, query: str, lang: Lang) -> tuple[list[InlineItem], bool]:
    """Up to 10 passages for a query, or the newest articles for an empty one; and whether
    they answer it (False: the engine is not confident, and each passage is marked as only
    related)."""
    query = clean_question(query)
    if not query:
        return [
            InlineItem(
                id=f"a{i}",
                title=render.shorten(a.title, 100) or "…",
                description=render.shorten(
                    f"{render.fmt_date(a.published)} {a.first_sentence}", 120
                ),
                html=render.render_inline_article(a),
                url=render.link_url(a.url),
            )
            for i, a in enumerate(library.latest(INLINE_MAX_RESULTS))
        ], True
    result = library.search(query, k=INLINE_MAX_RESULTS)
    note = None if result.confident else render.render_related_note(query, lang)
    items = []
    for i, hit in enumerate(result.hits):
        title = hit.article.title
        if hit.passage.section:
            title = f"{title} · {hit.passage.section}"
        if note:
            title = t(lang, "inline_related_title", title=title)
        items.append(
            InlineItem(
                # Result ids must be unique within one answer and ≤ 64 bytes.
                id=f"p{i}",
                title=render.shorten(title, 100) or "…",
                description=render.inline_description(hit),
                html=render.render_inline_message(hit, note),
                url=render.link_url(hit.article.url),
            )
        )
    return items, result.confident


def follow_preview(
    library: Library, topic: str, lang: Lang, days: int = FOLLOW_PREVIEW_DAYS
) -> str:
    """The passages of the last `days` days (up to the newest article) that a followed topic
    would have been sent, as its alert shows them: people check a topic before following it."""
    topic = " ".join(topic.split())
    if not topic:
        return t(lang, "follow_usage")
    if len(topic) > MAX_QUERY_CHARS:
        return t(lang, "follow_too_long", most=MAX_QUERY_CHARS)
    read = library.read_topic(topic)
    if not read.weighed_words:
        return render.render_followed("vague", topic, lang, 0)
    matches = library.match_topics([read], library.recent_article_ids(days))
    if not matches:
        return render.render_follow_preview(topic, [], days, lang)
    return render.render_follow_preview(
        topic, [m.hit for m in matches[:FOLLOW_PREVIEW_PASSAGES]], days, lang
    )
