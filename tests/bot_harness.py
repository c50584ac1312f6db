"""Shared pieces for the bot tests: small seed files, and the real Application running
against the fake Bot API server exactly as run_polling would run it (minus signals)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

from fake_bot_api import FakeBotApi
from telegram.ext import Application

from bot.app import ALLOWED_UPDATES, build_application, webhook_kwargs
from bot.settings import Settings

REPO = Path(__file__).resolve().parent.parent
SEED_ARTICLE = REPO / "seeds" / "000_5c35b881f4c27ddf.txt"
SEED_TITLE = "石破首访特朗普：巩固美日同盟，打出防卫与贸易“双赢牌”"
SEED_URL = (
    "https://www.voachinese.com/a/trump-ishiba-summit-paves-way-for-future-us-japan-alliance/"
    "7969986.html"
)


def seed_text(
    title: str, url: str, published: datetime, paragraphs: list[str], heading: str | None = None
) -> str:
    """An article in the seed format (see DESIGN.md section 2)."""
    ms = int(published.timestamp() * 1000)
    date = published.strftime("%a, %d %b %Y %H:%M:%S GMT")
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if heading:
        body = f"<p><strong>{heading}</strong></p>" + body
    return f"<!--{ms}-->\n[{title}]({url})\n------\n\n<div><i>{date}</i></div>台北 — {body}\n"


TYPHOON = {
    "title": "台风“海葵”登陆台湾东部 逾十万户停电",
    "url": "https://www.voachinese.com/a/typhoon-haikui-taiwan/7000001.html",
    "published": datetime(2025, 3, 1, 8, 0, tzinfo=UTC),
    "heading": "台风过境 交通受阻",
    "paragraphs": [
        "强烈台风海葵周日下午在台湾东部台东县登陆，带来狂风暴雨，全台逾十万户停电。",
        "气象部门表示，台风海葵预计周一清晨进入台湾海峡，各地仍须严防豪雨。",
        # Markup and entities inside article text must reach users as text.
        "当局提醒民众：<b>不要</b>靠近海边 &amp; 河川，并留意 &lt;最新&gt; 警报。",
    ],
}
RAIL = {
    "title": "高铁新线通车 北京到上海缩短至四小时",
    "url": "https://www.voachinese.com/a/high-speed-rail/7000002.html",
    "published": datetime(2025, 1, 15, 8, 0, tzinfo=UTC),
    "heading": None,
    # A very long paragraph with emoji (two UTF-16 units each) to push the 4,096 limit.
    "paragraphs": [
        "高铁新线周三正式通车，北京到上海的旅程缩短至四小时。"
        + "乘客表示票价偏高但服务良好🚄。" * 420,
        "铁路部门称，新线每天开行列车超过一百班次。",
    ],
}


def write_seeds(directory: Path, *articles: dict, include_seed_article: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    if include_seed_article:
        shutil.copy(SEED_ARTICLE, directory / SEED_ARTICLE.name)
    for i, article in enumerate(articles, start=1):
        (directory / f"{100 + i:03d}_test.txt").write_text(
            seed_text(
                article["title"],
                article["url"],
                article["published"],
                article["paragraphs"],
                article.get("heading"),
            ),
            encoding="utf-8",
        )
    return directory


def bot_settings(fake: FakeBotApi, **env: str) -> Settings:
    environ: Mapping[str, str] = {
        "TELEGRAM_BOT_TOKEN": fake.token,
        "TELEGRAM_API_BASE_URL": fake.api_root,
        "RELOAD_SECONDS": "0",
        **env,
    }
    return Settings.from_env(environ)


@asynccontextmanager
async def running_bot(
    fake: FakeBotApi, library, *, webhook: bool = False, rate_limiter=None, **env: str
) -> AsyncIterator[Application]:
    """The real Application, started the way run_polling/run_webhook start it. Subscriptions
    live in a throwaway database unless SUBSCRIPTIONS_DB is given; SEEDS_DIR is the library's
    (never the repository's seeds/, which a feed ingest would write into)."""
    env.setdefault("SEEDS_DIR", str(library.seeds_dir))
    with tempfile.TemporaryDirectory(prefix="bot-subscriptions-") as scratch:
        env.setdefault("SUBSCRIPTIONS_DB", str(Path(scratch) / "subscriptions.sqlite3"))
        async with _started(fake, library, webhook, rate_limiter, env) as application:
            yield application


@asynccontextmanager
async def _started(
    fake: FakeBotApi, library, webhook: bool, rate_limiter, env: dict[str, str]
) -> AsyncIterator[Application]:
    settings = bot_settings(fake, **env)
    application = build_application(settings, library, rate_limiter)
    async with application:  # initialize() … shutdown()
        await application.post_init(application)
        if webhook:
            await application.updater.start_webhook(**webhook_kwargs(settings))
        else:
            await application.updater.start_polling(
                poll_interval=0, timeout=1, allowed_updates=ALLOWED_UPDATES
            )
        await application.start()
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
