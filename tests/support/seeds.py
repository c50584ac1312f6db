"""Seed files for the tests, written by the project's own writer (`retrieval.seedfile.render`).

`seed_file` makes the text of one file; `SeedArticle` is a named article the bot tests ask
about (written as VOA's articles read: the date in `<div><i>`, then a dateline);
`write_seeds` fills a seeds directory.
"""

from __future__ import annotations

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


def write_seeds(directory: Path, *articles: SeedArticle, include_seed_article: bool = True) -> Path:
    """`directory` (created if need be) holding the seed article and `articles`."""
    directory.mkdir(parents=True, exist_ok=True)
    if include_seed_article:
        shutil.copy(SEED, directory / SEED.name)
    for i, article in enumerate(articles, start=1):
        article.write(directory, f"{100 + i:03d}_test.txt")
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
