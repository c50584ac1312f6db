"""Which chats want new articles pushed, and which articles were already pushed: one SQLite file.

Plain stdlib sqlite3 with a short-lived connection per call, so the store is safe to use from
any thread (the bot calls it through asyncio.to_thread) and needs no shutdown step. Every call
is one small transaction; a second process on the same file waits up to `TIMEOUT` seconds.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path

TIMEOUT = 10.0  # seconds to wait for another writer's lock
_SCHEMA = (
    # since: unix time of /subscribe
    "CREATE TABLE IF NOT EXISTS subscriptions"
    " (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL)",
    # at: unix time the article was pushed, or recorded as already known
    "CREATE TABLE IF NOT EXISTS announced (article_id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
)


class SubscriptionStore:
    """Subscribed chat ids and announced article ids, in the SQLite file at `path`.

    Opening creates the file and its tables (raising sqlite3.Error if the path is unusable),
    so a bad SUBSCRIPTIONS_DB shows at start-up, not at the first /subscribe.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    @contextmanager
    def _transaction(self, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction. A writing one takes the write lock up front (IMMEDIATE), so a read
        followed by a write (claim_new, baseline) cannot interleave with another thread's."""
        with closing(sqlite3.connect(self.path, timeout=TIMEOUT, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # ---- subscriptions --------------------------------------------------------------------

    def subscribe(self, chat_id: int) -> bool:
        """Subscribe a chat; False if it already was."""
        with self._transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO subscriptions (chat_id, since) VALUES (?, ?)",
                (chat_id, int(time.time())),
            )
            return cursor.rowcount == 1

    def unsubscribe(self, chat_id: int) -> bool:
        """Unsubscribe a chat; False if it was not subscribed."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
            return cursor.rowcount == 1

    def move(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup (new id): keep its subscription."""
        with self._transaction() as db:
            db.execute(
                "UPDATE OR REPLACE subscriptions SET chat_id = ? WHERE chat_id = ?",
                (new_chat_id, old_chat_id),
            )

    def chats(self) -> list[int]:
        """Every subscribed chat, oldest subscription first."""
        with self._transaction(write=False) as db:
            rows = db.execute("SELECT chat_id FROM subscriptions ORDER BY since, chat_id")
            return [chat_id for (chat_id,) in rows]

    # ---- announced articles ---------------------------------------------------------------

    def claim_new(self, article_ids: Iterable[str]) -> set[str]:
        """Record the ids as announced; return those that were not recorded before.

        Recording before sending makes pushes at-most-once: a crash mid-push loses a message
        rather than sending it twice after the restart."""
        now = int(time.time())
        with self._transaction() as db:
            known = {row[0] for row in db.execute("SELECT article_id FROM announced")}
            new = {article_id for article_id in article_ids if article_id not in known}
            db.executemany(
                "INSERT INTO announced (article_id, at) VALUES (?, ?)",
                ((article_id, now) for article_id in new),
            )
        return new

    def baseline(self, article_ids: Iterable[str]) -> int:
        """On the very first start (nothing announced yet), record every existing article as
        announced so subscribers are not flooded with the backlog. Returns how many were
        recorded (0 when this is not the first start)."""
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM announced LIMIT 1").fetchone() is not None:
                return 0
            now = int(time.time())
            cursor = db.executemany(
                "INSERT OR IGNORE INTO announced (article_id, at) VALUES (?, ?)",
                ((article_id, now) for article_id in article_ids),
            )
            return max(cursor.rowcount, 0)
