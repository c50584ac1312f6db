"""Topic alerts: /follow, /following, /unfollow, and the new passages pushed for a topic.

The real Application talks to the fake Bot API server; new articles arrive as seed files
dropped into SEEDS_DIR and picked up by /reload (a refresh, as a feed's ingest ends in).
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from bot.console import ConsoleSession
from bot.logs import pseudonym
from bot.render import TELEGRAM_LIMIT, render_alert, visible_len
from bot.subscriptions import SCHEMA_VERSION, SubscriptionStore
from retrieval import MAX_QUERY_CHARS, IndexKeeper
from retrieval.index import merging
from tests.support.fake_bot_api import telegram_html_problems
from tests.support.harness import running_bot
from tests.support.seeds import FLOOD, TYPHOON, SeedArticle

QUAKE = SeedArticle(
    title="智利北部发生规模七级地震 沿海发布海啸警报",
    url="https://www.voachinese.com/a/chile-earthquake/7990001.html",
    published=datetime(2025, 3, 6, 4, 0, tzinfo=UTC),
    paragraphs=(
        "智利北部周四凌晨发生规模七级地震，震中位于安托法加斯塔附近海域。",
        "智利当局一度对沿海地区发布海啸警报，数千名居民连夜撤离到高处。",
        "地震造成部分道路损毁，暂无人员死亡的报告。",
    ),
)
# Shares a word with the topic (智利), but another story.
WINE = SeedArticle(
    title="智利葡萄酒出口创新高 中国市场需求旺盛",
    url="https://www.voachinese.com/a/chile-wine/7990004.html",
    published=datetime(2025, 3, 7, 4, 0, tzinfo=UTC),
    paragraphs=("智利葡萄酒去年出口额创下新高，中国买家的订单增长近三成。",),
)
TOPIC = "智利地震 海啸警报"


def _alerts(fake_api, chat_id: int) -> list[str]:
    """The topic alerts a chat received (pushes, not replies), as HTML."""
    return [
        c.params["text"]
        for c in fake_api.calls_to("sendMessage")
        if int(c.params["chat_id"]) == chat_id
        and "reply_parameters" not in c.params
        and "🔔" in c.params["text"]
    ]


async def _reload(fake_api, admin: dict) -> str:
    return await fake_api.say(fake_api.private_chat(admin), admin, "/reload")


async def test_a_followed_topic_gets_one_push_for_the_article_that_answers_it_and_no_more(
    fake_api, keeper, seeds, db
):
    reader, admin = fake_api.user(9001, "zh-hans"), fake_api.user(9099, "en")
    chat = fake_api.private_chat(reader)
    env = {"SUBSCRIPTIONS_DB": str(db), "ADMIN_USER_IDS": str(admin["id"])}
    async with running_bot(fake_api, keeper, **env):
        followed = await fake_api.say(chat, reader, f"/follow {TOPIC}")
        assert "已关注「智利地震 海啸警报」" in followed
        assert "1. 智利地震 海啸警报" in await fake_api.say(chat, reader, "/following")
        QUAKE.write(seeds, "300_quake.txt")
        WINE.write(seeds, "301_wine.txt")
        assert "changes loaded" in await _reload(fake_api, admin)
        await fake_api.wait_for(lambda: _alerts(fake_api, reader["id"]))
        assert "no changes" in await _reload(fake_api, admin)
        # More refreshes, each a small segment, until the index merges them (renumbering
        # every passage): the article is never pushed again.
        for number, article in enumerate((FLOOD, WINE, FLOOD, WINE, FLOOD), start=310):
            moved = SeedArticle(article.title, f"{article.url}?{number}", *_rest(article))
            moved.write(seeds, f"{number}_more.txt")
            await _reload(fake_api, admin)
        await fake_api.wait_for(lambda: keeper.library.stats().segments < merging.MERGE_FACTOR)
        await fake_api.settle()
    [alert] = _alerts(fake_api, reader["id"])
    assert "智利地震 海啸警报" in alert and "/unfollow 1" in alert
    assert QUAKE.title in alert and f'<a href="{QUAKE.url}">' in alert and "2025-03-06" in alert
    assert "海啸警报" in alert and WINE.title not in alert and FLOOD.title not in alert


def _rest(article: SeedArticle) -> tuple:
    return article.published, article.paragraphs, article.heading


async def test_an_unrelated_article_pushes_nothing(fake_api, keeper, seeds, db):
    reader, admin = fake_api.user(9101, "en"), fake_api.user(9199, "en")
    chat = fake_api.private_chat(reader)
    env = {"SUBSCRIPTIONS_DB": str(db), "ADMIN_USER_IDS": str(admin["id"])}
    async with running_bot(fake_api, keeper, **env):
        assert "Following" in await fake_api.say(chat, reader, f"/follow {TOPIC}")
        WINE.write(seeds, "301_wine.txt")
        FLOOD.write(seeds, "302_flood.txt")
        assert "changes loaded" in await _reload(fake_api, admin)
        await fake_api.settle(0.6)
    assert _alerts(fake_api, reader["id"]) == []


async def test_a_subscribed_chat_gets_the_article_once_not_again_as_an_alert(
    fake_api, keeper, seeds, db
):
    reader, admin = fake_api.user(9201, "en"), fake_api.user(9299, "en")
    chat = fake_api.private_chat(reader)
    env = {"SUBSCRIPTIONS_DB": str(db), "ADMIN_USER_IDS": str(admin["id"])}
    async with running_bot(fake_api, keeper, **env):
        await fake_api.say(chat, reader, "/subscribe")
        await fake_api.say(chat, reader, f"/follow {TOPIC}")
        QUAKE.write(seeds, "300_quake.txt")
        await _reload(fake_api, admin)
        await fake_api.wait_for(
            lambda: any(QUAKE.title in m["html"] for m in fake_api.sent_to(reader["id"]))
        )
        await fake_api.settle()
    assert _alerts(fake_api, reader["id"]) == []


async def test_follow_following_and_unfollow_in_a_private_chat(bot, fake_api):
    user = fake_api.user(9301, "en")
    chat = fake_api.private_chat(user)
    assert "This chat follows no topic yet" in await fake_api.say(chat, user, "/following")
    assert "Following “台风 停电”" in await fake_api.say(chat, user, "/follow  台风   停电 ")
    assert "already follows" in await fake_api.say(chat, user, "/follow 台风 停电")
    assert "/unfollow 2" in await fake_api.say(chat, user, "/follow 高铁 票价")
    listed = await fake_api.say(chat, user, "/following")
    assert "(2/10)" in listed and listed.index("1. 台风 停电") < listed.index("2. 高铁 票价")
    assert "Stopped following “台风 停电”" in await fake_api.say(chat, user, "/unfollow 1")
    assert "1. 高铁 票价" in await fake_api.say(chat, user, "/following")
    assert "no topic 5" in await fake_api.say(chat, user, "/unfollow 5")
    await fake_api.say(chat, user, "/follow 石破茂 防卫")
    assert "all 2 topics" in await fake_api.say(chat, user, "/unfollow all")
    assert "follows no topic" in await fake_api.say(chat, user, "/following")
    assert fake_api.calls_to("getChatMember") == []  # private chats need no check


async def test_limits_and_mistakes_get_one_line_each(fake_api, bot_keeper, db):
    user = fake_api.user(9401, "en")
    chat = fake_api.private_chat(user)
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=str(db), FOLLOW_MAX_TOPICS="2"):
        assert "Usage: /follow" in await fake_api.say(chat, user, "/follow")
        too_long = "台风" * (MAX_QUERY_CHARS // 2 + 1)
        assert "too long" in await fake_api.say(chat, user, f"/follow {too_long}")
        assert "too vague" in await fake_api.say(chat, user, "/follow 的 了 吗")
        for topic in ("台风 停电", "高铁 票价"):
            assert "Following" in await fake_api.say(chat, user, f"/follow {topic}")
        full = await fake_api.say(chat, user, "/follow 石破茂 防卫")
        assert "follows 2 topics, the most it may" in full
        for bad in ("/unfollow", "/unfollow first", "/unfollow -1", "/unfollow ３"):
            reply = await fake_api.say(chat, user, bad)
            assert reply.startswith("Usage: /unfollow") and "\n" not in reply
        assert "no topic 0" in await fake_api.say(chat, user, "/unfollow 0")
    assert SubscriptionStore(db).topics(chat["id"]) == ["台风 停电", "高铁 票价"]


async def test_in_groups_only_administrators_follow_and_unfollow_but_anyone_lists(
    fake_api, bot_keeper, db
):
    group = fake_api.group_chat(-100900)
    member, admin = fake_api.user(9501, "en"), fake_api.user(9502, "en")
    fake_api.set_member_status(group, admin, "administrator")
    store = SubscriptionStore(db)
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=str(db)):
        refusal = await fake_api.say(group, member, f"/follow@ThisBot {TOPIC}")
        assert "only the group's administrators" in refusal
        assert store.topics(group["id"]) == []
        assert "Following" in await fake_api.say(group, admin, f"/follow@ThisBot {TOPIC}")
        assert "1. 智利地震 海啸警报" in await fake_api.say(group, member, "/following@ThisBot")
        refusal = await fake_api.say(group, member, "/unfollow@ThisBot all")
        assert "only the group's administrators" in refusal
        assert store.topics(group["id"]) == [TOPIC]
        assert "Stopped following" in await fake_api.say(group, admin, "/unfollow@ThisBot 1")
    assert store.topics(group["id"]) == []


async def test_a_blocked_chat_loses_its_topics_and_a_migrated_group_keeps_them(
    fake_api, keeper, seeds, db, caplog
):
    caplog.set_level(logging.INFO, logger="bot")
    store = SubscriptionStore(db)
    blocked, old_group, new_group = 9601, -600, -100601
    for chat_id in (blocked, old_group):
        assert store.follow(chat_id, TOPIC, _reading(keeper), "en", 10) == ("followed", 1)
    fake_api.block(blocked)
    fake_api.block(old_group, migrate_to=new_group)
    admin = fake_api.user(9699, "en")
    env = {"SUBSCRIPTIONS_DB": str(db), "ADMIN_USER_IDS": str(admin["id"])}
    async with running_bot(fake_api, keeper, **env):
        QUAKE.write(seeds, "300_quake.txt")
        await _reload(fake_api, admin)
        await fake_api.wait_for(lambda: _alerts(fake_api, new_group))
        await fake_api.settle()
    assert store.topics(blocked) == [] and store.topics(old_group) == []
    assert store.topics(new_group) == [TOPIC]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    gone = f"chat {pseudonym(blocked)} unsubscribed: Forbidden: bot was blocked by the user"
    assert gone in infos
    assert not [line for line in infos if str(blocked) in line or str(new_group) in line]


def _reading(keeper: IndexKeeper) -> str:
    return keeper.library.read_topic(TOPIC).dumps()


# ---- the database -------------------------------------------------------------------------


def _version_2_database(path: Path) -> None:
    """A subscriptions database as the bot wrote it before topics (schema 2)."""
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE subscriptions (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL);"
            "CREATE TABLE announced (article_id TEXT PRIMARY KEY, at INTEGER NOT NULL);"
            "CREATE TABLE autoanswer (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL);"
            "INSERT INTO subscriptions VALUES (42, 1700000000), (-100, 1700000001);"
            "INSERT INTO announced VALUES ('0123456789abcdef', 1700000000);"
            "INSERT INTO autoanswer VALUES (-100, 1700000002);"
            "PRAGMA user_version = 2;"
        )


def test_a_version_2_database_gets_the_topic_tables_and_keeps_everything(db):
    _version_2_database(db)
    before = db.read_bytes()
    store = SubscriptionStore(db)
    assert (db.parent / f"{db.name}.v2.bak").read_bytes() == before
    assert store.chats() == [42, -100] and store.autoanswers(-100)
    assert store.claim_new(["0123456789abcdef", "fedcba9876543210"]) == {"fedcba9876543210"}
    assert store.follow(42, TOPIC, "{}", "en", 10) == ("followed", 1)
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert SubscriptionStore(db).topics(42) == [TOPIC]  # and it opens again as it is


def test_pushed_passages_are_claimed_once_per_chat_moved_with_a_group_and_pruned(db):
    store = SubscriptionStore(db)
    assert store.claim_alerts(1, ["a#1", "a#2"]) == {"a#1", "a#2"}
    assert store.claim_alerts(1, ["a#2", "b#1"]) == {"b#1"}
    assert store.claim_alerts(2, ["a#1"]) == {"a#1"}  # another chat: its own
    store.follow(-5, TOPIC, "{}", "en", 10)
    store.move(1, -5)
    assert store.claim_alerts(-5, ["a#1", "c#1"]) == {"c#1"}
    assert store.prune_alerts(keep_days=1) == 0
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE alerted SET at = at - 2 * 86400 WHERE chat_id = 2")
    assert store.prune_alerts(keep_days=1) == 1
    assert store.claim_alerts(2, ["a#1"]) == {"a#1"}
    store.forget(-5)
    assert store.topics(-5) == [] and store.claim_alerts(-5, ["a#1"]) == {"a#1"}


# ---- what is shown ------------------------------------------------------------------------


def test_the_console_shows_what_a_topic_would_have_matched_lately(bot_library):
    session = ConsoleSession(bot_library, "en")
    shown = session.handle("/follow 台风 停电")
    assert "last 7 days" in shown and TYPHOON.title in shown and "逾十万户停电" in shown
    assert "No article of the last 7 days answers “高铁 票价”" in session.handle(
        "/follow 高铁 票价"
    )
    assert session.handle("/follow").startswith("Usage: /follow")


def test_an_alert_fits_one_message_whatever_its_passages(bot_library):
    hits = [
        m.hit
        for m in bot_library.match_topics([bot_library.read_topic("高铁 票价")], _ids(bot_library))
    ]
    assert hits  # the rail article's very long paragraph
    items = [(f"高铁 票价 {'很长' * 300}", n, hits[0]) for n in range(1, 6)]
    html = render_alert(items, "zh-Hans")
    assert visible_len(html) <= TELEGRAM_LIMIT and telegram_html_problems(html) == []
    assert html.count("/unfollow") == 5 and "/unfollow 5" in html


def _ids(library) -> list[str]:
    return [ref.id for ref in library.article_refs()]
