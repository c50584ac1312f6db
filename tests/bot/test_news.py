"""News in the bot: scheduled ingest, /subscribe and /unsubscribe, new-article pushes, and
the subscriptions database across restarts and upgrades.

The real Application talks to the fake Bot API server; feeds come from a second loopback
HTTP server serving tests/fixtures/feeds/bot_news.xml.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from bot.logs import pseudonym
from bot.render import render_new_article
from bot.settings import Settings, SettingsError
from bot.subscriptions import SubscriptionStore
from retrieval import IndexKeeper
from tests.support import FEEDS
from tests.support.fake_bot_api import TOKEN, FakeBotApi, telegram_html_problems
from tests.support.harness import run_bot, running_bot
from tests.support.http import LoopbackServer, reply
from tests.support.legacy import DAMAGE, write_version_0_subscriptions
from tests.support.seeds import FLOOD, RAIL, SEED_TITLE, SEED_URL, TYPHOON, SeedArticle, write_seeds

VOLCANO_TITLE = "冰岛雷克雅内斯半岛火山再度喷发 <蓝湖> & 渔村居民撤离"
VOLCANO_URL = "https://www.voachinese.com/a/iceland-volcano-eruption/7980001.html"
ICEBERG_TITLE = "南极冰架崩解 科学家追踪巨型冰山漂移"
# Messages of anonymous group administrators come from this bot user, sent as the group.
ANONYMOUS_ADMIN = {
    "id": 1087968824, "is_bot": True, "first_name": "Group", "username": "GroupAnonymousBot"
}  # fmt: skip
QUAKE = SeedArticle(
    title="智利北部发生规模七级地震 沿海发布海啸警报",
    url="https://www.voachinese.com/a/chile-earthquake/7990001.html",
    published=datetime(2025, 3, 6, 4, 0, tzinfo=UTC),
    paragraphs=("智利北部周四凌晨发生规模七级地震，当局一度对沿海地区发布海啸警报。",),
)
ECLIPSE = SeedArticle(
    title="日全食横越北美 数百万人仰望天空",
    # Not in canonical form (host case, a #fragment): its article id changed with the upgrade.
    url="https://WWW.voachinese.com/a/solar-eclipse/7990003.html#top",
    published=datetime(2025, 3, 5, 4, 0, tzinfo=UTC),
    paragraphs=("日全食周一横越北美，数百万人走出户外仰望天空。",),
)


# ---- the loopback feed server ----------------------------------------------------------


def serve_feeds(request: BaseHTTPRequestHandler) -> None:
    file = FEEDS / request.path.rpartition("/")[2]
    if file.is_file():
        reply(request, 200, file.read_bytes(), "application/rss+xml")
    else:
        reply(request, 404, b"not found", "text/plain")


@pytest.fixture
def feed_server() -> Iterator[LoopbackServer]:
    with LoopbackServer(serve_feeds) as server:
        yield server


def _pushes(fake_api, chat_id: int) -> list[str]:
    """The pushed articles (not replies) a chat received, as HTML."""
    return [
        c.params["text"]
        for c in fake_api.calls_to("sendMessage")
        if int(c.params["chat_id"]) == chat_id and "reply_parameters" not in c.params
    ]


def _attempts(fake_api, chat_id: int) -> int:
    return sum(int(c.params["chat_id"]) == chat_id for c in fake_api.calls_to("sendMessage", False))


# ---- settings ---------------------------------------------------------------------------


def test_feed_settings_are_read_with_sensible_defaults():
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    assert settings.feed_urls == ()
    assert settings.feed_interval_minutes == 30.0
    assert settings.subscriptions_db == Path("subscriptions.sqlite3")
    settings = Settings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "FEED_URLS": "https://a.example/rss, http://b.example/atom.xml\nhttps://a.example/rss",
            "FEED_INTERVAL_MINUTES": "0.5",
            "SUBSCRIPTIONS_DB": "/var/lib/bot/subs.sqlite3",
        }
    )
    assert settings.feed_urls == ("https://a.example/rss", "http://b.example/atom.xml")
    assert settings.feed_interval_minutes == 0.5
    assert settings.subscriptions_db == Path("/var/lib/bot/subs.sqlite3")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FEED_URLS", "ftp://files.example/feed.xml"),
        ("FEED_URLS", "https://ok.example/rss, www.no-scheme.example/rss"),
        ("FEED_INTERVAL_MINUTES", "0"),
        ("FEED_INTERVAL_MINUTES", "-5"),
        ("FEED_INTERVAL_MINUTES", "soon"),
    ],
)
def test_invalid_feed_settings_exit_2_with_one_line_naming_the_setting(tmp_path, name, value):
    with pytest.raises(SettingsError, match=rf"^{name}"):
        Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, name: value})
    result = run_bot(cwd=tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, **{name: value})
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert name in line and TOKEN not in line
    assert not (tmp_path / "subscriptions.sqlite3").exists()


def test_an_unusable_subscriptions_db_exits_2_with_one_line(tmp_path):
    seeds = write_seeds(tmp_path / "seeds")
    result = run_bot(
        cwd=tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        SEEDS_DIR=str(seeds),
        INDEX_DIR=str(tmp_path / "index"),
        SUBSCRIPTIONS_DB=str(tmp_path / "no-such-dir" / "subscriptions.sqlite3"),
    )
    assert result.returncode == 2
    [error] = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "SUBSCRIPTIONS_DB" in error and "no-such-dir" in error


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_subscriptions_db_is_one_line_at_start_and_left_as_it_is(tmp_path, damage):
    seeds = write_seeds(tmp_path / "seeds")
    db = tmp_path / "subscriptions.sqlite3"
    DAMAGE[damage](db)
    before = db.read_bytes()
    with FakeBotApi() as fake:
        result = run_bot(  # a timeout here: it started on a file it should have refused
            cwd=tmp_path,
            TELEGRAM_BOT_TOKEN=TOKEN,
            TELEGRAM_API_BASE_URL=fake.api_root,
            SEEDS_DIR=str(seeds),
            INDEX_DIR=str(tmp_path / "index"),
            SUBSCRIPTIONS_DB=str(db),
        )
    stderr = result.stderr
    assert result.returncode == 2, stderr
    [error] = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert "SUBSCRIPTIONS_DB" in error and str(db) in error and "left as it is" in error
    assert "Traceback" not in stderr
    assert db.read_bytes() == before
    assert fake.calls == []  # refused before the bot ever spoke to Telegram


# ---- rendering --------------------------------------------------------------------------


def test_a_pushed_article_shows_date_linked_title_and_first_paragraph_escaped(bot_library):
    [typhoon] = [a for a in bot_library.latest(3) if a.title == TYPHOON.title]
    html = render_new_article(typhoon)
    assert html.startswith("🆕 <b>2025-03-01</b> ")
    assert f'<a href="{TYPHOON.url}">{TYPHOON.title}</a>' in html
    assert TYPHOON.paragraphs[0] in html and TYPHOON.paragraphs[1] not in html
    assert telegram_html_problems(html) == []
    [rail] = [a for a in bot_library.latest(3) if a.title == RAIL.title]
    long = render_new_article(rail)  # a first paragraph far over 4,096 characters
    assert telegram_html_problems(long) == [] and long.endswith("…")


# ---- /subscribe and /unsubscribe ----------------------------------------------------------


async def test_subscribe_and_unsubscribe_in_a_private_chat(bot, fake_api):
    user = fake_api.user(6001, "en")
    chat = fake_api.private_chat(user)
    assert "Subscribed" in await fake_api.say(chat, user, "/subscribe")
    assert "already subscribed" in await fake_api.say(chat, user, "/subscribe")
    assert "Unsubscribed" in await fake_api.say(chat, user, "/unsubscribe")
    assert "not subscribed" in await fake_api.say(chat, user, "/unsubscribe")
    chinese = fake_api.user(6002, "zh-hans")
    assert "已订阅" in await fake_api.say(fake_api.private_chat(chinese), chinese, "/subscribe")
    assert fake_api.calls_to("getChatMember") == []  # private chats need no check


async def test_in_groups_only_administrators_change_the_subscription(fake_api, bot_keeper, db):
    group = fake_api.group_chat()
    member, admin, owner = (fake_api.user(i, "en") for i in (7001, 7002, 7003))
    fake_api.set_member_status(group, admin, "administrator")
    fake_api.set_member_status(group, owner, "creator")
    store = SubscriptionStore(db)
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=str(db)):
        refusal = await fake_api.say(group, member, "/subscribe@ThisBot")
        assert "only the group's administrators" in refusal
        assert store.chats() == []
        assert "Subscribed" in await fake_api.say(group, admin, "/subscribe@ThisBot")
        assert store.chats() == [group["id"]]
        refusal = await fake_api.say(group, member, "/unsubscribe@ThisBot")
        assert "only the group's administrators" in refusal
        assert "Unsubscribed" in await fake_api.say(group, owner, "/unsubscribe@ThisBot")
        checks = len(fake_api.calls_to("getChatMember"))
        # An anonymous administrator writes as the group itself: no getChatMember needed.
        reply = await fake_api.say(group, ANONYMOUS_ADMIN, "/subscribe", sender_chat=group)
        assert "已订阅" in reply
        assert len(fake_api.calls_to("getChatMember")) == checks
    assert store.chats() == [group["id"]]


# ---- ingest and pushes --------------------------------------------------------------------


async def test_the_scheduled_ingest_makes_new_articles_answerable_listed_and_pushed_once(
    fake_api, feed_server, keeper, seeds, db, caplog
):
    caplog.set_level(logging.INFO, logger="bot")
    store = SubscriptionStore(db)
    reader, group = fake_api.user(8001, "zh-hans"), fake_api.group_chat(-100777)
    store.subscribe(reader["id"])
    store.subscribe(group["id"])
    feed, missing = feed_server.url("/feeds/bot_news.xml"), feed_server.url("/feeds/gone.xml")
    env = {"FEED_URLS": f"{feed} {missing}", "FEED_ALLOW_PRIVATE": "1"}
    env["FEED_INTERVAL_MINUTES"] = "0.005"  # 0.3 s

    def fetches() -> int:
        return [r.path for r in feed_server.requests].count("/feeds/bot_news.xml")

    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db), **env):
        await fake_api.wait_for(lambda: len(_pushes(fake_api, group["id"])) == 2)
        # Later runs of the job find nothing new and push nothing.
        await fake_api.wait_for(lambda: fetches() >= 4)
        await fake_api.settle()
        chat = fake_api.private_chat(reader)
        answer = await fake_api.say(chat, reader, "冰岛火山喷发了吗？")
        assert "冰岛雷克雅内斯半岛火山再度喷发 &lt;蓝湖&gt; &amp; 渔村居民撤离" in answer
        latest = await fake_api.say(chat, reader, "/latest 3")
        assert latest.index("冰岛") < latest.index(ICEBERG_TITLE) < latest.index(TYPHOON.title)

    for chat_id in (reader["id"], group["id"]):
        pushes = _pushes(fake_api, chat_id)
        # Oldest first, so the chat ends with the newest; the backlog (typhoon, the seed
        # article, which the feed also lists) is not pushed.
        assert len(pushes) == 2
        assert f'<a href="{VOLCANO_URL}">' in pushes[1] and "&lt;蓝湖&gt; &amp;" in pushes[1]
        assert ICEBERG_TITLE in pushes[0] and "巨型冰山从南极冰架崩解" in pushes[0]
        assert not any(TYPHOON.title in p or SEED_TITLE in p for p in pushes)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.endswith("bot_news.xml: 2 new, 0 updated, 1 skipped") for m in messages)
    failed = [r for r in caplog.records if "gone.xml: failed: HTTP 404" in r.getMessage()]
    assert failed and all(r.levelno == logging.WARNING for r in failed)
    assert len(list(seeds.glob("2025*.txt"))) == 2


async def test_the_first_start_does_not_push_the_backlog_but_later_files_are_pushed(
    fake_api, keeper, seeds, db
):
    store = SubscriptionStore(db)
    reader = fake_api.user(8101)
    store.subscribe(reader["id"])
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db), RELOAD_SECONDS="0.2"):
        await asyncio.sleep(0.6)  # a few rescans and the start-up check
        assert _pushes(fake_api, reader["id"]) == []
        # Not from a feed: a file dropped into SEEDS_DIR, found by the rescan job.
        QUAKE.write(seeds, "300_quake.txt")
        await fake_api.wait_for(lambda: _pushes(fake_api, reader["id"]))
        await asyncio.sleep(0.6)
    [push] = _pushes(fake_api, reader["id"])
    assert QUAKE.title in push and QUAKE.url in push


async def test_a_chat_that_blocked_the_bot_is_unsubscribed_after_one_failed_send(
    fake_api, keeper, seeds, db, caplog
):
    caplog.set_level(logging.INFO, logger="bot")
    store = SubscriptionStore(db)
    blocked, deleted, muted, fine, old_group = 8201, 8202, -100300, 8204, -300
    for chat_id in (blocked, deleted, muted, fine, old_group):
        store.subscribe(chat_id)
    fake_api.block(blocked)  # 403 bot was blocked by the user
    fake_api.block(deleted, status=400)  # 400 chat not found
    fake_api.block(muted, status=400, description="Bad Request: not enough rights to send")
    fake_api.block(old_group, migrate_to=-100301)
    admin = fake_api.user(8299, "en")
    env = {"SUBSCRIPTIONS_DB": str(db), "ADMIN_USER_IDS": str(admin["id"])}
    async with running_bot(fake_api, keeper, **env):
        QUAKE.write(seeds, "300_quake.txt")
        FLOOD.write(seeds, "301_flood.txt")
        # /reload is a refresh too: it pushes what it found.
        chat = fake_api.private_chat(admin)
        assert "changes loaded" in await fake_api.say(chat, admin, "/reload")
        await fake_api.wait_for(lambda: len(_pushes(fake_api, fine)) == 2)
        await fake_api.wait_for(lambda: len(_pushes(fake_api, -100301)) == 2)
        await fake_api.settle()
    assert _attempts(fake_api, blocked) == 1 and _attempts(fake_api, deleted) == 1
    assert _attempts(fake_api, muted) == 2  # another error: logged, still subscribed
    assert _attempts(fake_api, old_group) == 1  # the group's new id takes over
    assert sorted(store.chats()) == sorted([muted, fine, -100301])
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    # named by the run's pseudonym, never by id (docs/privacy.md)
    assert (
        f"chat {pseudonym(blocked)} unsubscribed: Forbidden: bot was blocked by the user" in infos
    )
    assert f"chat {pseudonym(deleted)} unsubscribed: Chat not found" in infos
    assert not [line for line in infos if str(blocked) in line or str(deleted) in line]


async def test_subscriptions_survive_a_restart(fake_api, seeds, tmp_path, db):
    user = fake_api.user(8301, "en")
    chat = fake_api.private_chat(user)
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db)):
        assert "Subscribed" in await fake_api.say(chat, user, "/subscribe")
    # While the bot is down, an article arrives; the next start loads and pushes it.
    FLOOD.write(seeds, "301_flood.txt")
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db)):
        await fake_api.wait_for(lambda: _pushes(fake_api, chat["id"]))
        assert "already subscribed" in await fake_api.say(chat, user, "/subscribe")
    [push] = _pushes(fake_api, chat["id"])
    assert FLOOD.title in push
    # A third start pushes nothing again.
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db)):
        await asyncio.sleep(0.3)
    assert len(_pushes(fake_api, chat["id"])) == 1


async def test_after_an_upgrade_nothing_is_pushed_twice_and_new_articles_still_are(
    fake_api, seeds, tmp_path, db
):
    reader = 8401
    ECLIPSE.write(seeds, "200_eclipse.txt")
    write_version_0_subscriptions(db, [reader], [SEED_URL, TYPHOON.url, ECLIPSE.url])
    FLOOD.write(seeds, "301_flood.txt")  # arrived while the bot was being upgraded
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db)):
        await fake_api.wait_for(lambda: _pushes(fake_api, reader))
        await fake_api.settle()
    # One push task sends oldest first: had the eclipse counted as new, it would have come
    # before the flood.
    [push] = _pushes(fake_api, reader)
    assert FLOOD.title in push
    assert SubscriptionStore(db).chats() == [reader]


async def test_a_slow_start_still_pushes_what_arrived_while_the_bot_was_down(
    fake_api, seeds, tmp_path, db
):
    store = SubscriptionStore(db)
    library = IndexKeeper.open(seeds, tmp_path / "index").library
    store.baseline([ref.id for ref in library.article_refs()])
    store.subscribe(8501)
    QUAKE.write(seeds, "300_quake.txt")
    keeper = IndexKeeper.open(seeds, index_dir=tmp_path / "index")
    library = keeper.library
    # Start-up is slow at two stages: getMe fails twice (initialize, before post_init), then
    # each menu registration fails twice (post_init): about 3 s of retries, far longer than a
    # one-off job may be late by default (1 s). A feed is listed too: its first fetch is a
    # one-off job right after start as well.
    fake_api.fail("getMe", status=502, times=2)
    fake_api.fail("setMyCommands", status=502, times=4)
    with LoopbackServer(serve_feeds) as feeds:
        env = {"SUBSCRIPTIONS_DB": str(db), "FEED_URLS": feeds.url("/bot_news.xml")}
        env["FEED_ALLOW_PRIVATE"] = "1"  # the loopback feed server
        async with running_bot(fake_api, keeper, **env):
            await fake_api.wait_for(lambda: len(_pushes(fake_api, 8501)) == 3, timeout=20)
    assert len(fake_api.calls_to("getMe", ok_only=False)) == 3
    pushes = "".join(_pushes(fake_api, 8501))
    # What arrived while the bot was down, and the feed's two new articles.
    assert QUAKE.title in pushes and ICEBERG_TITLE in pushes and "冰岛" in pushes


# ---- privacy (issue 23) -------------------------------------------------------------------


async def test_info_logs_name_no_chat_or_user_id(fake_api, bot_keeper, db, caplog):
    """Subscriptions, /autoanswer, migrations and rate-limit drops were logged at INFO with
    the chat's or the user's id; a salted hash stands in for it now (the same within a run)."""
    caplog.set_level(logging.INFO)
    user = fake_api.user(81234567, "en")
    private = fake_api.private_chat(user)
    group, supergroup = fake_api.group_chat(-987654321), fake_api.group_chat(-100876543210)
    fake_api.set_member_status(group, user, "administrator")
    async with running_bot(
        fake_api, bot_keeper, SUBSCRIPTIONS_DB=str(db), QUESTIONS_PER_MINUTE="6"
    ):
        await fake_api.say(private, user, "/subscribe")
        await fake_api.say(group, user, "/subscribe@ThisBot")
        await fake_api.say(group, user, "/autoanswer@ThisBot on")
        fake_api.push_update(
            {"message": fake_api.make_message(group, user, migrate_to_chat_id=supergroup["id"])}
        )
        await fake_api.settle()
        for _ in range(4):  # past the rate
            fake_api.send_text(private, user, "台风海葵")
        await fake_api.settle()
    assert set(SubscriptionStore(db).chats()) == {user["id"], supergroup["id"]}
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    said = "\n".join(lines)
    for number in ("81234567", "987654321", "876543210"):
        assert number not in said
    assert pseudonym(user["id"]) in said  # subscribed, and later over the rate
    assert f"{pseudonym(group['id'])} is now {pseudonym(supergroup['id'])}" in said
    assert pseudonym(("user", user["id"])) in said


async def test_a_stop_mid_push_leaves_the_rest_queued_and_the_next_start_sends_it(
    fake_api, keeper, seeds, db, caplog
):
    """Pushes are queued before they are sent: a stop sends no more, and the next start sends
    the rest, each article to each chat once."""
    caplog.set_level(logging.INFO, logger="bot")
    store = SubscriptionStore(db)
    readers = list(range(8601, 8621))
    for chat_id in readers:
        store.subscribe(chat_id)

    def sent() -> int:
        return sum(len(_pushes(fake_api, chat_id)) for chat_id in readers)

    fake_api.send_seconds = 0.05  # 40 pushes: two seconds at least
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db), RELOAD_SECONDS="0.2"):
        QUAKE.write(seeds, "300_quake.txt")
        FLOOD.write(seeds, "301_flood.txt")
        await fake_api.wait_for(lambda: sent() >= 3)
    sent_before_the_stop = sent()
    assert 3 <= sent_before_the_stop < 40
    assert store.queued() == 40 - sent_before_the_stop  # none lost, none sent twice
    assert any("queued for the next start" in r.getMessage() for r in caplog.records)

    fake_api.send_seconds = 0.0
    async with running_bot(fake_api, keeper, SUBSCRIPTIONS_DB=str(db)):
        await fake_api.wait_for(lambda: sent() == 40)
        await fake_api.settle()
    assert sent() == 40 and store.queued() == 0
    for chat_id in readers:
        first, second = _pushes(fake_api, chat_id)
        assert QUAKE.title in first and FLOOD.title in second  # oldest first
