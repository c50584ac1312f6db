"""Files as older versions of the bot wrote them, for the tests of upgrades."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path


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
