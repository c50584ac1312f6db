"""Seed files for the tests, written by the project's own writer (`retrieval.seedfile.render`).

`seed_file` makes the text of one file; `SeedArticle` is a named article the bot tests ask
about (written as VOA's articles read: the date in `<div><i>`, then a dateline);
`write_seeds` fills a seeds directory.
"""

from __future__ import annotations

import html
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

from retrieval import seedfile
from tests.support import REPO

SEED = REPO / "seeds" / "000_5c35b881f4c27ddf.txt"  # the project's seed article
SEED_TITLE = "石破首访特朗普：巩固美日同盟，打出防卫与贸易“双赢牌”"
SEED_URL = (
    "https://www.voachinese.com/a/trump-ishiba-summit-paves-way-for-future-us-japan-alliance/"
    "7969986.html"
)
DEFAULT_MS = 1_700_000_000_000


def seed_file(
    title: str,
    url: str,
    paragraphs: list[str] | tuple[str, ...],
    *,
    ms: int = DEFAULT_MS,
    heading: str | None = None,
    dateline: str | None = None,
) -> str:
    """The text of a seed file dated `ms` (epoch milliseconds) holding `paragraphs`, under a
    bold section `heading` if given. With a `dateline` ("台北") the body opens as VOA's do:
    the date in `<div><i>`, then "台北 — "."""
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if heading:
        body = f"<p><strong>{heading}</strong></p>{body}"
    if dateline:
        date = format_datetime(datetime.fromtimestamp(ms / 1000, UTC), usegmt=True)
        body = f"<div><i>{date}</i></div>{dateline} — {body}"
    return seedfile.render(title, url, ms, body)


@dataclass(frozen=True, slots=True)
class SeedArticle:
    """An article the bot tests know by name."""

    title: str
    url: str
    published: datetime
    paragraphs: tuple[str, ...]
    heading: str | None = None

    def text(self) -> str:
        ms = int(self.published.timestamp() * 1000)
        return seed_file(
            self.title, self.url, self.paragraphs, ms=ms, heading=self.heading, dateline="台北"
        )

    def write(self, directory: Path, name: str) -> Path:
        path = directory / name
        path.write_text(self.text(), encoding="utf-8")
        return path


TYPHOON = SeedArticle(
    title="台风“海葵”登陆台湾东部 逾十万户停电",
    url="https://www.voachinese.com/a/typhoon-haikui-taiwan/7000001.html",
    published=datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
    heading="台风过境 交通受阻",
    paragraphs=(
        "强烈台风海葵周日下午在台湾东部台东县登陆，带来狂风暴雨，全台逾十万户停电。",
        "气象部门表示，台风海葵预计周一清晨进入台湾海峡，各地仍须严防豪雨。",
        # Markup and entities inside article text must reach users as text.
        "当局提醒民众：<b>不要</b>靠近海边 &amp; 河川，并留意 &lt;最新&gt; 警报。",
    ),
)
RAIL = SeedArticle(
    title="高铁新线通车 北京到上海缩短至四小时",
    url="https://www.voachinese.com/a/high-speed-rail/7000002.html",
    published=datetime(2025, 1, 15, 8, 0, tzinfo=UTC),
    # A very long paragraph with emoji (two UTF-16 units each) to push the 4,096 limit.
    paragraphs=(
        "高铁新线周三正式通车，北京到上海的旅程缩短至四小时。"
        + "乘客表示票价偏高但服务良好🚄。" * 420,
        "铁路部门称，新线每天开行列车超过一百班次。",
    ),
)

# A new article about something else than any test asks (feeds, pushes, topic alerts).
FLOOD = SeedArticle(
    title="巴西南部洪水肆虐 数万人被迫离家",
    url="https://www.voachinese.com/a/brazil-floods/7990002.html",
    published=datetime(2025, 3, 7, 4, 0, tzinfo=UTC),
    paragraphs=("巴西南部连日暴雨引发洪水，数万名居民被迫离开家园。",),
)


def write_seeds(directory: Path, *articles: SeedArticle, include_seed_article: bool = True) -> Path:
    """`directory` (created if need be) holding the seed article and `articles`."""
    directory.mkdir(parents=True, exist_ok=True)
    if include_seed_article:
        shutil.copy(SEED, directory / SEED.name)
    for i, article in enumerate(articles, start=1):
        article.write(directory, f"{100 + i:03d}_test.txt")
    return directory


# ---- hostile text ------------------------------------------------------------------------

# What an attacker puts in every field: markup and entities Telegram would parse, a script,
# an emoji (two UTF-16 units), a right-to-left override and mark, ANSI escapes (colour, a
# terminal title), a bell and a C1 control (CSI), all inside ordinary Chinese news words.
HOSTILE = (
    "<蓝湖> & <script>alert(1)</script> &amp; &lt;b&gt; 🚄 \u202eevil\u202c \u200f "
    "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 \x9b2J"
)
# The characters none of the bot's or the CLI's output may carry.
UNSAFE_CHARACTERS = "\x1b\x07\x9b\u202e\u202c"
# Host names of 4,500 characters (over any link's length: text, not a link) and of 1,500
# (a link, with its host shortened), in turn.
HOSTILE_HOSTS = ("a" * 4500 + ".example", "b" * 1500 + ".example")


def hostile_seed(number: int, *, url: str | None = None, ms: int = DEFAULT_MS) -> str:
    """A seed file with hostile text in every field: a ~1,000-character title, a long section
    heading, a caption and paragraphs full of `HOSTILE`, at a very long host (or `url`)."""
    title = f"<蓝湖{number}>台风海葵 " + f"防卫预算 {HOSTILE} " * 12
    heading = f"台风过境{number} " + f"交通受阻 {HOSTILE} " * 12
    caption = f"资料照片{number} {HOSTILE} " * 5
    paragraph = f"台风海葵登陆台湾东部，防卫预算增加。{HOSTILE}" * 3
    body = (
        f'<img src="https://img.example/{number}.jpg"><div><small>{html.escape(caption)}</small>'
        f"</div><h2>{html.escape(heading)}</h2>"
        + "".join(f"<p>{html.escape(paragraph)}</p>" for _ in range(12))
    )
    url = url or f"https://{HOSTILE_HOSTS[number % 2]}/a/{number}.html?x=1&y=<2>"
    return seedfile.render(title, url, ms + number * 1000, body)


def write_hostile_seeds(directory: Path, count: int = 22) -> Path:
    """`directory` (created if need be) holding `count` hostile articles, one of them at a
    `javascript:` URL, and an unreadable file whose name is hostile too (for /about)."""
    directory.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        url = "javascript:alert(document.cookie)" if number == 1 else None
        (directory / f"hostile_{number:02d}.txt").write_text(
            hostile_seed(number, url=url), encoding="utf-8"
        )
    (directory / "<b>\x1b[31m\u202eempty.txt").write_text("", encoding="utf-8")
    return directory


_SEED_SENTENCES = [
    s
    for s in SEED.read_text(encoding="utf-8").replace("</p>", "。").split("。")
    if 12 <= len(s) <= 200 and "<" not in s
]


def write_articles(seeds: Path, start: int, count: int) -> None:
    """`count` small articles numbered from `start` (测试文章<number>, one a minute), each of
    six of the seed's own sentences: filler that gives a library realistic statistics."""
    for number in range(start, start + count):
        sentences = [_SEED_SENTENCES[(number * 7 + i) % len(_SEED_SENTENCES)] for i in range(6)]
        paragraphs = [f"{sentence}。第{number}篇。" for sentence in sentences]
        url = f"https://news.example/a/{number}.html"
        ms = DEFAULT_MS + number * 60_000
        (seeds / f"{number:05d}.txt").write_text(
            seed_file(f"测试文章{number}", url, paragraphs, ms=ms), encoding="utf-8"
        )
