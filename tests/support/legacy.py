"""Files as older versions of the bot wrote them, for the tests of upgrades, and subscription
databases damaged in the ways disks and people damage them."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

from bot.subscriptions import SubscriptionStore


def version_0_article_id(url: str) -> str:
    """Article ids before canonical URLs: the sha1 of the URL as written."""
    return hashlib.sha1(url.strip().encode("utf-8")).hexdigest()[:16]


def write_version_0_subscriptions(path: Path, chats: list[int], pushed_urls: list[str]) -> None:
    """A subscriptions database of schema version 0 (no user_version, version-0 article ids):
    `chats` subscribed, the articles at `pushed_urls` pushed."""
    with closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "CREATE TABLE subscriptions (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL)"
        )
        db.execute("CREATE TABLE announced (article_id TEXT PRIMARY KEY, at INTEGER NOT NULL)")
        db.executemany("INSERT INTO subscriptions VALUES (?, 0)", [(c,) for c in chats])
        db.executemany(
            "INSERT INTO announced VALUES (?, 0)",
            [(version_0_article_id(url),) for url in pushed_urls],
        )


def write_version_1_subscriptions(path: Path, chats: list[int]) -> None:
    """A subscriptions database of schema version 1 (before /autoanswer): `chats` subscribed."""
    write_version_0_subscriptions(path, chats, [])
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("PRAGMA user_version = 1")


def _filled(db: Path) -> bytes:
    """A real database of some size (several pages of each table); its bytes."""
    store = SubscriptionStore(db)
    for chat_id in range(1500):
        store.subscribe(chat_id)
    store.claim_new([f"{n:016x}" for n in range(2500)])
    return db.read_bytes()


def _zero_pages(data: bytes) -> bytes:
    return data[: 2 * 4096] + bytes(4 * 4096) + data[6 * 4096 :]


def _flip_bytes(data: bytes) -> bytes:
    out = bytearray(data)
    for offset in range(4096 * 3 + 500, len(out), 4096 * 4):  # inside pages, not the header
        out[offset : offset + 40] = bytes(b ^ 0xFF for b in out[offset : offset + 40])
    return bytes(out)


def _tables(db: Path, *statements: str) -> None:
    with closing(sqlite3.connect(db)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


DAMAGE = {
    "zeroed pages": lambda db: db.write_bytes(_zero_pages(_filled(db))),
    "flipped bytes": lambda db: db.write_bytes(_flip_bytes(_filled(db))),
    "wrong schema": lambda db: _tables(
        db, "CREATE TABLE subscriptions (id TEXT, name TEXT)", "CREATE TABLE announced (x)"
    ),
    "another program's database": lambda db: _tables(db, "CREATE TABLE users (id, name)"),
}
