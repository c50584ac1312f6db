"""Which chats want new articles pushed, which articles were already pushed, which groups
have /autoanswer on, the topics chats follow, the passages pushed to them as alerts, and the
pushes queued and not sent yet: one SQLite file.

Plain stdlib sqlite3 with a short-lived connection per call, so the store is safe to use from
any thread (the bot calls it through asyncio.to_thread) and needs no shutdown step. Every call
is one small transaction; a second process on the same file waits up to `TIMEOUT` seconds.

The file's `PRAGMA user_version` says how its article ids are made:
  0  sha1 of the URL as written (before the seed-file module defined canonical URLs)
  1  retrieval.seedfile.article_id: sha1 of the canonical URL (no #fragment, lower-case host)
  2  the same, and the table `autoanswer`
  3  the same, and the tables `topics` (what /follow keeps) and `alerted` (passages pushed)
  4  the same, and the table `outbox` (pushes queued: what a stop left unsent goes next start)
A database at version 0 is brought up to date by `migrate`, which needs the library's
articles, so the bot calls it at start-up; one at version 1, 2 or 3 only needs the new
tables, which opening it adds.

Opening checks the file before anything is written to it: a damaged file (zeroed pages,
flipped bytes), another program's database or a wrong schema raises `UnusableDatabase`, one
line, and the file is left as it is. A file about to be upgraded is first copied, byte for
byte, to `<name>.v<version>.bak` (an existing copy is kept: it is the older one), so the bot
never changes a file it did not write in today's format without a copy kept. The copy holds
the chats subscribed at the time, those that left since included, so `prune_copies` deletes
it `KEEP_COPY_DAYS` after it was made, once the upgrade is done.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from retrieval import ArticleRef

TIMEOUT = 10.0  # seconds to wait for another writer's lock
# Time to notice an upgrade gone wrong and restore its copy; after that the copy only keeps
# former subscribers' chat ids.
KEEP_COPY_DAYS = 7
SCHEMA_VERSION = 4
_COLUMNS = {
    "subscriptions": ("chat_id", "since"),
    "announced": ("article_id", "at"),
    "autoanswer": ("chat_id", "since"),
    "topics": ("id", "chat_id", "since", "text", "reading", "lang"),
    "alerted": ("chat_id", "passage", "at"),
    "outbox": ("id", "chat_id", "article_id", "alert", "at"),
}
# The tables of a file at an older version, which opening it completes.
_TABLES_BEFORE = {
    0: {"subscriptions", "announced"},
    1: {"subscriptions", "announced"},
    2: {"subscriptions", "announced", "autoanswer"},
    3: {"subscriptions", "announced", "autoanswer", "topics", "alerted"},
}
_SCHEMA = (
    # since: unix time of /subscribe
    "CREATE TABLE IF NOT EXISTS subscriptions"
    " (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL)",
    # at: unix time the article was pushed, or recorded as already known
    "CREATE TABLE IF NOT EXISTS announced (article_id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
    # groups with /autoanswer on; since: unix time it was turned on
    "CREATE TABLE IF NOT EXISTS autoanswer (chat_id INTEGER PRIMARY KEY, since INTEGER NOT NULL)",
    # followed topics, numbered in a chat by id; since: unix time of /follow; reading: the
    # engine's reading of the text (retrieval.Topic.dumps), read again when it is stale;
    # lang: the language of the bot's words in its alerts (the follower's)
    "CREATE TABLE IF NOT EXISTS topics (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,"
    " since INTEGER NOT NULL, text TEXT NOT NULL, reading TEXT NOT NULL, lang TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS topics_of_chat ON topics (chat_id, id)",
    # passages pushed to a chat as alerts, by article URL and a hash of the paragraph (alert
    # keys: bot.news), so none is pushed twice whatever merges renumber; at: unix time
    "CREATE TABLE IF NOT EXISTS alerted (chat_id INTEGER NOT NULL, passage TEXT NOT NULL,"
    " at INTEGER NOT NULL, PRIMARY KEY (chat_id, passage))",
    # pushes queued, sent in id order: a new article (article_id) or a topic alert (alert:
    # its HTML, rendered in the follower's language); at: unix time it was queued
    "CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, chat_id INTEGER NOT NULL,"
    " article_id TEXT, alert TEXT, at INTEGER NOT NULL)",
    "CREATE INDEX IF NOT EXISTS outbox_of_chat ON outbox (chat_id)",
)


@dataclass(frozen=True)
class Queued:
    """A push taken from the outbox: a new article (its id) or a topic alert (its HTML)."""

    chat_id: int
    article_id: str | None
    alert: str | None


class UnusableDatabase(sqlite3.DatabaseError):
    """The file is damaged, another program's, or of a schema this bot does not know; str()
    says which in one line. The file was not changed."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}; the file was left as it is")


class SubscriptionStore:
    """Subscribed chat ids and announced article ids, in the SQLite file at `path`.

    Opening checks the file, then creates it and its tables if need be (raising sqlite3.Error,
    UnusableDatabase included, if the path is unusable), so a bad SUBSCRIPTIONS_DB shows at
    start-up, not at the first /subscribe.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # The write lock is held from here on: nobody writes while the file is checked and
        # copied, and this connection writes nothing until the checks pass.
        with self._transaction() as db:
            tables = _check(db)
            version = _version(db)
            if not tables:  # a new file: nothing to migrate, ever
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version < SCHEMA_VERSION:
                self._keep_copy(f"v{version}")
            for statement in _SCHEMA:
                db.execute(statement)
            if version in (1, 2, 3):  # versions 2, 3 and 4 only add tables
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _keep_copy(self, label: str) -> None:
        """Copy the file as it is to `<name>.<label>.bak`, unless a copy is there already."""
        copy = self.path.with_name(f"{self.path.name}.{label}.bak")
        if copy.exists():
            return
        partial = copy.with_name(f".{copy.name}.tmp")
        try:
            shutil.copyfile(self.path, partial)  # under the write lock: the bytes are stable
            os.replace(partial, copy)
        except OSError as exc:
            with suppress(OSError):
                partial.unlink()
            raise UnusableDatabase(f"cannot keep a copy of it before upgrading it ({exc})") from exc

    def prune_copies(self, keep_days: float = KEEP_COPY_DAYS) -> list[Path]:
        """Delete the copies made before upgrades that are more than `keep_days` old, once the
        file is at today's schema (a copy is what an unfinished upgrade would be redone or
        undone from); the paths deleted. One that cannot be deleted waits for the next call."""
        with self._transaction(write=False) as db:
            if _version(db) < SCHEMA_VERSION:
                return []
        copy_name = re.compile(rf"{re.escape(self.path.name)}\.v\d+\.bak")
        oldest = time.time() - keep_days * 86400
        deleted = []
        for copy in self.path.parent.iterdir():
            if copy_name.fullmatch(copy.name):
                with suppress(OSError):
                    if copy.stat().st_mtime <= oldest:  # made then: copyfile sets the time
                        copy.unlink()
                        deleted.append(copy)
        return deleted

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
        """Unsubscribe a chat (the new articles queued for it go too); False if it was not
        subscribed."""
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM subscriptions WHERE chat_id = ?", (chat_id,))
            db.execute(
                "DELETE FROM outbox WHERE chat_id = ? AND article_id IS NOT NULL", (chat_id,)
            )
            return cursor.rowcount == 1

    def move(self, old_chat_id: int, new_chat_id: int) -> None:
        """A group became a supergroup (new id): keep its subscription, /autoanswer, topics
        the passages already pushed to it and those queued for it."""
        with self._transaction() as db:
            for table in ("subscriptions", "autoanswer", "topics", "alerted", "outbox"):
                db.execute(
                    f"UPDATE OR REPLACE {table} SET chat_id = ? WHERE chat_id = ?",
                    (new_chat_id, old_chat_id),
                )

    def forget(self, chat_id: int) -> None:
        """The bot was blocked or removed: the chat's subscription, topics and queue go."""
        with self._transaction() as db:
            for table in ("subscriptions", "topics", "alerted", "outbox"):
                db.execute(f"DELETE FROM {table} WHERE chat_id = ?", (chat_id,))

    def chats(self) -> list[int]:
        """Every subscribed chat, oldest subscription first."""
        with self._transaction(write=False) as db:
            return _subscribed(db)

    # ---- /autoanswer ---------------------------------------------------------------------

    def set_autoanswer(self, chat_id: int, on: bool) -> None:
        with self._transaction() as db:
            if on:
                db.execute(
                    "INSERT OR IGNORE INTO autoanswer (chat_id, since) VALUES (?, ?)",
                    (chat_id, int(time.time())),
                )
            else:
                db.execute("DELETE FROM autoanswer WHERE chat_id = ?", (chat_id,))

    def autoanswers(self, chat_id: int) -> bool:
        """Whether the group has /autoanswer on."""
        with self._transaction(write=False) as db:
            row = db.execute("SELECT 1 FROM autoanswer WHERE chat_id = ?", (chat_id,))
            return row.fetchone() is not None

    # ---- followed topics --------------------------------------------------------------------

    def follow(
        self, chat_id: int, text: str, reading: str, lang: str, at_most: int
    ) -> tuple[str, int]:
        """Follow a topic in a chat: ("followed", its number), ("already", its number) when
        the chat follows the same text, or ("full", at_most) when it follows `at_most`."""
        with self._transaction() as db:
            rows = db.execute("SELECT text FROM topics WHERE chat_id = ? ORDER BY id", (chat_id,))
            texts = [t for (t,) in rows]
            if text in texts:
                return "already", texts.index(text) + 1
            if len(texts) >= at_most:
                return "full", at_most
            db.execute(
                "INSERT INTO topics (chat_id, since, text, reading, lang) VALUES (?, ?, ?, ?, ?)",
                (chat_id, int(time.time()), text, reading, lang),
            )
            return "followed", len(texts) + 1

    def topics(self, chat_id: int) -> list[str]:
        """A chat's topics, in the order they were followed (/following numbers them so)."""
        with self._transaction(write=False) as db:
            rows = db.execute("SELECT text FROM topics WHERE chat_id = ? ORDER BY id", (chat_id,))
            return [text for (text,) in rows]

    def unfollow(self, chat_id: int, number: int | None) -> list[str]:
        """Stop following topic `number` (1-based, as /following lists them), or every topic
        with None; the texts of those removed."""
        with self._transaction() as db:
            rows = list(
                db.execute("SELECT id, text FROM topics WHERE chat_id = ? ORDER BY id", (chat_id,))
            )
            if number is not None:
                rows = rows[number - 1 : number] if number >= 1 else []
            db.executemany("DELETE FROM topics WHERE id = ?", ((i,) for i, _ in rows))
            return [text for _, text in rows]

    def followed(self) -> list[tuple[int, int, str, str, str]]:
        """Every followed topic: (topic id, chat, text, reading, lang), chat by chat in the
        order each chat followed them."""
        with self._transaction(write=False) as db:
            rows = db.execute(
                "SELECT id, chat_id, text, reading, lang FROM topics ORDER BY chat_id, id"
            )
            return list(rows)

    def reread(self, readings: Iterable[tuple[int, str]]) -> None:
        """Store topics read again (topic id, reading), after the engine's analysis changed."""
        with self._transaction() as db:
            db.executemany(
                "UPDATE topics SET reading = ? WHERE id = ?", ((r, i) for i, r in readings)
            )

    def claim_alerts(self, chat_id: int, passages: Iterable[str]) -> set[str]:
        """Record these passages (alert keys) as pushed to the chat; those that were not
        recorded before. As claim_new: recorded before sending, so never sent twice."""
        now = int(time.time())
        with self._transaction() as db:
            wanted = list(dict.fromkeys(passages))
            known = {
                p
                for (p,) in db.execute(
                    f"SELECT passage FROM alerted WHERE chat_id = ? AND passage IN "
                    f"({', '.join('?' * len(wanted))})",
                    (chat_id, *wanted),
                )
            }
            new = [p for p in wanted if p not in known]
            db.executemany(
                "INSERT INTO alerted (chat_id, passage, at) VALUES (?, ?, ?)",
                ((chat_id, p, now) for p in new),
            )
        return set(new)

    def prune_alerts(self, keep_days: float) -> int:
        """Forget the passages pushed more than `keep_days` ago; how many were."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM alerted WHERE at < ?", (int(time.time() - keep_days * 86400),)
            )
            return max(cursor.rowcount, 0)

    # ---- the outbox ------------------------------------------------------------------------

    def queue(self, article_ids: Iterable[str], alerts: Iterable[tuple[int, str]] = ()) -> int:
        """Queue, in one transaction, each article in order for every subscribed chat (oldest
        subscription first), then each (chat id, HTML) topic alert; how many chats the
        articles go to."""
        now = int(time.time())
        with self._transaction() as db:
            chats = _subscribed(db)
            db.executemany(
                "INSERT INTO outbox (chat_id, article_id, at) VALUES (?, ?, ?)",
                ((chat_id, article_id, now) for article_id in article_ids for chat_id in chats),
            )
            db.executemany(
                "INSERT INTO outbox (chat_id, alert, at) VALUES (?, ?, ?)",
                ((chat_id, html, now) for chat_id, html in alerts),
            )
        return len(chats)

    def take_queued(self) -> Queued | None:
        """The push queued first, taken off the queue (None when it is empty). Taken before
        it is sent, as articles are claimed: a crash loses one push, never sends one twice."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT id, chat_id, article_id, alert FROM outbox ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute("DELETE FROM outbox WHERE id = ?", (row[0],))
        return Queued(*row[1:])

    def queued(self) -> int:
        """How many pushes are queued."""
        with self._transaction(write=False) as db:
            return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

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

    def migrate(self, articles: Iterable[ArticleRef]) -> int:
        """Bring a database from an older version up to SCHEMA_VERSION, given the articles the
        library holds now: each one pushed under its old id is recorded under its current id
        too, so nothing is pushed twice. Returns how many were; 0 when already up to date."""
        articles = list(articles)
        with self._transaction() as db:
            if _version(db) >= SCHEMA_VERSION:
                return 0
            if not articles:
                # Nothing to translate the old ids with (SEEDS_DIR empty for now): stay at the
                # old version, so the next start, with articles, still migrates.
                return 0
            pushed = {row[0] for row in db.execute("SELECT article_id FROM announced")}
            renamed = [a.id for a in articles if _v0_article_id(a.url) in pushed]
            now = int(time.time())
            cursor = db.executemany(
                "INSERT OR IGNORE INTO announced (article_id, at) VALUES (?, ?)",
                ((article_id, now) for article_id in renamed),
            )
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return max(cursor.rowcount, 0)

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


def _check(db: sqlite3.Connection) -> set[str]:
    """The file's tables, after checking that this bot can use it; raises UnusableDatabase."""
    [problem] = db.execute("PRAGMA quick_check(1)").fetchone()
    if problem != "ok":
        raise UnusableDatabase(f"damaged ({' '.join(problem.split())[:200]})")
    version = _version(db)
    if version > SCHEMA_VERSION:
        raise UnusableDatabase(
            f"written by a newer version of the bot (schema {version}, this one knows "
            f"{SCHEMA_VERSION})"
        )
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    tables = {name for (name,) in rows}
    if tables and tables != set(_COLUMNS) and tables != _TABLES_BEFORE.get(version):
        raise UnusableDatabase(
            f"not a subscriptions database: its tables are {', '.join(sorted(tables))}"
        )
    for table in (t for t in _COLUMNS if t in tables):
        columns = tuple(row[1] for row in db.execute(f"PRAGMA table_info({table})"))
        if columns != _COLUMNS[table]:
            raise UnusableDatabase(
                f"wrong schema: table {table} has columns ({', '.join(columns)}), "
                f"expected ({', '.join(_COLUMNS[table])})"
            )
    return tables


def _subscribed(db: sqlite3.Connection) -> list[int]:
    """Every subscribed chat, oldest subscription first."""
    rows = db.execute("SELECT chat_id FROM subscriptions ORDER BY since, chat_id")
    return [chat_id for (chat_id,) in rows]


def _version(db: sqlite3.Connection) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def _v0_article_id(url: str) -> str:
    """How version 0 made article ids (kept for `migrate` only): sha1 of the URL as written."""
    return hashlib.sha1(url.strip().encode("utf-8")).hexdigest()[:16]
