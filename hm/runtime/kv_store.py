"""The persistent, plugin-scope key-value store (``HM_KV_SCOPE_PLUGIN``).

One SQLite database under hm's state directory; rows are keyed by plugin name so
plugins cannot read each other's values. SQLite does the locking between
processes; a connection per thread keeps it safe for concurrent plugin threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hm import paths

#: How long a statement waits for another connection's lock.
_BUSY_SECONDS = 10.0


def _retry_locked(statement: Callable[[], object]) -> None:
    """Run ``statement``, retrying "database is locked" until _BUSY_SECONDS pass.

    Switching a new database to WAL, and a first CREATE TABLE racing another
    process's, can fail with SQLITE_BUSY at once, without the busy timeout: SQLite
    refuses to wait where waiting could deadlock. Seen with 8 threads' first
    kv_set on a fresh store (3 runs in 40)."""
    deadline = time.monotonic() + _BUSY_SECONDS
    delay = 0.001
    while True:
        try:
            statement()
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class PluginKvStore:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._local = threading.local()
        #: The database has WAL on and its table (made once per process).
        self._ready = False
        self._init_lock = threading.Lock()

    @classmethod
    def default(cls) -> PluginKvStore:
        return cls(paths.state_dir() / "kv.sqlite3")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.db_path, timeout=_BUSY_SECONDS, isolation_level=None)
            if not self._ready:
                with self._init_lock:  # this process's threads one at a time; other processes: retried
                    if not self._ready:
                        _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                        _retry_locked(
                            lambda: conn.execute(
                                "CREATE TABLE IF NOT EXISTS kv (plugin TEXT NOT NULL, key BLOB NOT NULL,"
                                " value BLOB NOT NULL, PRIMARY KEY (plugin, key))"
                            )
                        )
                        self._ready = True
            self._local.conn = conn
        return conn

    def get(self, plugin: str, key: bytes) -> bytes | None:
        row = self._conn().execute("SELECT value FROM kv WHERE plugin = ? AND key = ?", (plugin, key)).fetchone()
        return None if row is None else bytes(row[0])

    def compare_and_swap(self, plugin: str, key: bytes, expected: bytes | None, value: bytes) -> bool:
        """Store ``value`` if the stored value is ``expected`` (``None``: no row).

        One ``BEGIN IMMEDIATE`` transaction: it takes SQLite's write lock before it
        reads, so no other thread or process can write between the comparison and
        the update (a deferred transaction would read first and could lose an
        update to a concurrent writer). Other writers wait up to the connection's
        busy timeout.
        """
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT value FROM kv WHERE plugin = ? AND key = ?", (plugin, key)).fetchone()
            current = None if row is None else bytes(row[0])
            if current != expected:
                conn.execute("ROLLBACK")
                return False
            conn.execute(
                "INSERT INTO kv (plugin, key, value) VALUES (?, ?, ?)"
                " ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
                (plugin, key, value),
            )
            conn.execute("COMMIT")
            return True
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def set(self, plugin: str, key: bytes, value: bytes) -> None:
        self._conn().execute(
            "INSERT INTO kv (plugin, key, value) VALUES (?, ?, ?)"
            " ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value",
            (plugin, key, value),
        )
