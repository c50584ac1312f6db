"""The subscription store on its own: subscribed chats and announced articles in SQLite."""

from __future__ import annotations

import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.subscriptions import KEEP_COPY_DAYS, SCHEMA_VERSION, SubscriptionStore, UnusableDatabase
from retrieval import ArticleRef
from retrieval.seedfile import article_id
from tests.support.harness import running_bot
from tests.support.legacy import (
    DAMAGE,
    write_version_0_subscriptions,
    write_version_1_subscriptions,
)


def test_subscribe_and_unsubscribe_say_whether_anything_changed(db):
    store = SubscriptionStore(db)
    assert store.subscribe(42) is True
    assert store.subscribe(42) is False  # already subscribed
    assert store.subscribe(-1001) is True
    assert sorted(store.chats()) == [-1001, 42]
    assert store.unsubscribe(42) is True
    assert store.unsubscribe(42) is False
    assert store.chats() == [-1001]


def test_everything_survives_reopening_the_file(db):
    store = SubscriptionStore(db)
    store.subscribe(7)
    store.claim_new(["a", "b"])
    reopened = SubscriptionStore(db)
    assert reopened.chats() == [7]
    assert reopened.claim_new(["a", "b", "c"]) == {"c"}


def test_each_article_is_claimed_once(db):
    store = SubscriptionStore(db)
    assert store.claim_new(["a", "b", "a"]) == {"a", "b"}
    assert store.claim_new(["b", "c"]) == {"c"}
    assert store.claim_new(["a", "b", "c"]) == set()


def test_concurrent_claims_never_hand_out_an_article_twice(db):
    store = SubscriptionStore(db)
    ids = [f"article-{i}" for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        claimed = list(pool.map(lambda _: store.claim_new(ids), range(8)))
    assert sorted(i for batch in claimed for i in batch) == sorted(ids)


def test_the_baseline_is_taken_on_the_first_start_only(db):
    store = SubscriptionStore(db)
    assert store.baseline(["old-1", "old-2"]) == 2
    assert store.claim_new(["old-1", "old-2", "new"]) == {"new"}
    # Not the first start any more: the baseline records nothing, so "later" stays new.
    assert store.baseline(["later"]) == 0
    assert store.claim_new(["later"]) == {"later"}


def test_a_migrated_group_keeps_its_subscription(db):
    store = SubscriptionStore(db)
    store.subscribe(-55)
    store.subscribe(-1009)
    store.move(-55, -1009)  # the new id was subscribed too: one row remains
    store.move(-1009, -1000055)
    assert store.chats() == [-1000055]


def test_autoanswer_is_kept_per_chat_and_moves_with_a_migrated_group(db):
    store = SubscriptionStore(db)
    assert store.autoanswers(-55) is False  # off by default
    store.set_autoanswer(-55, True)
    store.set_autoanswer(-55, True)
    assert SubscriptionStore(db).autoanswers(-55) is True
    store.move(-55, -1000055)
    assert (store.autoanswers(-55), store.autoanswers(-1000055)) == (False, True)
    store.set_autoanswer(-1000055, False)
    assert store.autoanswers(-1000055) is False


def test_a_version_1_database_gets_the_newer_tables_after_a_copy(db):
    write_version_1_subscriptions(db, [42])
    original = db.read_bytes()
    store = SubscriptionStore(db)  # needs no articles: the upgrade only adds a table
    assert store.chats() == [42] and store.autoanswers(-1) is False
    assert db.with_name(f"{db.name}.v1.bak").read_bytes() == original
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_unusable_path_fails_when_opened(tmp_path):
    with pytest.raises(sqlite3.Error):
        SubscriptionStore(tmp_path / "missing-dir" / "subscriptions.sqlite3")


def _ref(url: str) -> ArticleRef:
    return ArticleRef(article_id(url), url, datetime(2025, 1, 1, tzinfo=UTC))


def test_an_old_database_is_migrated_once_it_has_articles_to_go_by(db):
    pushed = _ref("https://Example.org/a.html#top")  # its id changed with canonical URLs
    write_version_0_subscriptions(db, [42], [pushed.url])
    store = SubscriptionStore(db)
    assert store.chats() == [42]
    assert store.migrate([]) == 0  # an empty library: nothing to translate old ids with yet
    assert store.migrate([pushed, _ref("https://example.org/new.html")]) == 1
    assert store.claim_new([pushed.id, article_id("https://example.org/new.html")]) == {
        article_id("https://example.org/new.html")
    }
    assert store.migrate([pushed]) == 0  # done once


def test_a_new_database_needs_no_migration(db):
    store = SubscriptionStore(db)
    article = _ref("https://Example.org/a.html#top")
    assert store.migrate([article]) == 0
    assert store.claim_new([article.id]) == {article.id}


def test_a_database_from_a_newer_bot_is_refused(db):
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(sqlite3.DatabaseError, match="newer version"):
        SubscriptionStore(db)


# ---- damaged, foreign and wrong files (issue 12, item 14) ----------------------------------


EXPECTED = {
    "zeroed pages": "damaged",
    "flipped bytes": "damaged",
    "wrong schema": "wrong schema: table subscriptions has columns (id, name)",
    "another program's database": "not a subscriptions database: its tables are users",
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_or_foreign_file_is_refused_in_one_line_and_left_as_it_is(db, damage):
    DAMAGE[damage](db)
    before = db.read_bytes()
    with pytest.raises(UnusableDatabase) as error:
        SubscriptionStore(db)
    assert EXPECTED[damage] in str(error.value) and "\n" not in str(error.value)
    assert db.read_bytes() == before
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


def test_an_old_database_is_copied_before_it_is_upgraded(db):
    write_version_0_subscriptions(db, [42], ["https://Example.org/a.html#top"])
    original = db.read_bytes()
    store = SubscriptionStore(db)
    assert store.migrate([_ref("https://Example.org/a.html#top")]) == 1
    copy = db.with_name(f"{db.name}.v0.bak")
    assert copy.read_bytes() == original and db.read_bytes() != original
    SubscriptionStore(db)  # up to date now: no second copy, the first one kept
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name, copy.name]
    assert copy.read_bytes() == original


def test_no_copy_no_upgrade(db):
    write_version_0_subscriptions(db, [42], [])
    original = db.read_bytes()
    (db.parent / f".{db.name}.v0.bak.tmp").mkdir()  # where the copy is written: not a file
    with pytest.raises(UnusableDatabase, match="cannot keep a copy"):
        SubscriptionStore(db)
    assert db.read_bytes() == original
    assert not db.with_name(f"{db.name}.v0.bak").exists()


# ---- the copy kept before an upgrade is not kept forever (issue 23) -----------------------


def _age(path: Path, days: float) -> None:
    then = time.time() - days * 86400
    os.utime(path, (then, then))


def test_the_copy_kept_before_an_upgrade_is_deleted_a_week_after_it(db):
    """It lists the chats subscribed at the time, those that left since included."""
    write_version_1_subscriptions(db, [42])
    store = SubscriptionStore(db)  # upgraded to today's schema, the copy made
    copy = db.with_name(f"{db.name}.v1.bak")
    others = [db.with_name(f"{db.name}.v1.bak.mine"), db.with_name(f"other-{db.name}.v1.bak")]
    for other in others:
        other.write_bytes(b"not ours")
        _age(other, 30)
    assert store.prune_copies() == [] and copy.exists()  # a fresh copy stays
    _age(copy, KEEP_COPY_DAYS - 0.1)
    assert store.prune_copies() == [] and copy.exists()
    _age(copy, KEEP_COPY_DAYS + 0.1)
    assert store.prune_copies() == [copy]
    assert not copy.exists() and all(other.exists() for other in others)
    assert store.chats() == [42]


def test_the_copy_stays_while_the_upgrade_is_unfinished(db):
    pushed = _ref("https://Example.org/a.html#top")
    write_version_0_subscriptions(db, [42], [pushed.url])
    store = SubscriptionStore(db)  # copied, but re-keying waits for the library's articles
    copy = db.with_name(f"{db.name}.v0.bak")
    _age(copy, 30)
    assert store.prune_copies() == [] and copy.exists()
    assert store.migrate([pushed]) == 1
    assert store.prune_copies() == [copy]


async def test_the_bot_deletes_an_old_copy_when_it_starts(fake_api, bot_keeper, db):
    write_version_1_subscriptions(db, [42])
    SubscriptionStore(db)  # the upgrade, a week and a bit ago
    copy = db.with_name(f"{db.name}.v1.bak")
    _age(copy, KEEP_COPY_DAYS + 1)
    async with running_bot(fake_api, bot_keeper, SUBSCRIPTIONS_DB=str(db)):
        pass
    assert not copy.exists()
    assert SubscriptionStore(db).chats() == [42]


def test_the_outbox_is_first_in_first_out_and_follows_its_chats(db):
    store = SubscriptionStore(db)
    for chat_id in (1, 2, 3):
        store.subscribe(chat_id)
    assert store.queue(["a", "b"], [(2, "<b>alert</b>")]) == 3
    assert store.queued() == 7
    first = store.take_queued()
    assert (first.chat_id, first.article_id, first.alert) == (1, "a", None)
    assert store.unsubscribe(2)  # its new articles go; its topic alert stays
    store.move(3, -1003)
    store.forget(1)
    left = []
    while (queued := store.take_queued()) is not None:
        left.append((queued.chat_id, queued.article_id, queued.alert))
    assert left == [(-1003, "a", None), (-1003, "b", None), (2, None, "<b>alert</b>")]
    assert store.queued() == 0 and store.take_queued() is None


def test_a_version_3_database_gets_the_outbox_and_keeps_everything(db):
    with sqlite3.connect(db) as raw:
        raw.executescript(
            "CREATE TABLE subscriptions (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL);"
            "CREATE TABLE announced (article_id TEXT PRIMARY KEY, at INTEGER NOT NULL);"
            "CREATE TABLE autoanswer (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL);"
            "CREATE TABLE topics (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,"
            " since INTEGER NOT NULL, text TEXT NOT NULL, reading TEXT NOT NULL,"
            " lang TEXT NOT NULL);"
            "CREATE TABLE alerted (chat_id INTEGER NOT NULL, passage TEXT NOT NULL,"
            " at INTEGER NOT NULL, PRIMARY KEY (chat_id, passage));"
            "INSERT INTO subscriptions VALUES (42, 1700000000);"
            "INSERT INTO announced VALUES ('0123456789abcdef', 1700000000);"
            "INSERT INTO topics VALUES (1, 42, 1700000001, '日本防卫支出', '{}', 'en');"
            "PRAGMA user_version = 3;"
        )
    before = db.read_bytes()
    store = SubscriptionStore(db)
    assert (db.parent / f"{db.name}.v3.bak").read_bytes() == before
    assert store.chats() == [42] and store.topics(42) == ["日本防卫支出"]
    assert store.claim_new(["0123456789abcdef"]) == set()
    assert store.queue(["fedcba9876543210"]) == 1 and store.queued() == 1
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
