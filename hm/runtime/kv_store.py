"""The persistent, plugin-scope key-value store (``HM_KV_SCOPE_PLUGIN``).

One SQLite database under hm's state directory; rows are keyed by plugin name so
plugins cannot read each other's values. SQLite does the locking between
processes; a connection per thread keeps it safe for concurrent plugin threads.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from hm import paths


class PluginKvStore:
    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._local = threading.local()

    @classmethod
    def default(cls) -> PluginKvStore:
        return cls(paths.state_dir() / "kv.sqlite3")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kv (plugin TEXT NOT NULL, key BLOB NOT NULL,"
                " value BLOB NOT NULL, PRIMARY KEY (plugin, key))"
            )
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
