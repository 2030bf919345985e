"""The PLUGIN-scope store's first use: steps running in parallel may all make
their first KV call at once on a fresh database. SQLite can refuse the switch to
WAL (and a racing CREATE TABLE) with "database is locked" at once, without its
busy timeout; it used to reach a plugin as HM_ERR_IO (seen in CI: one of six
parallel steps' first kv_set failed)."""

from __future__ import annotations

import threading
from pathlib import Path

from hm.runtime.kv_store import PluginKvStore


def test_threads_using_a_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    failures: list[str] = []
    for trial in range(40):  # the race lost about 1 run in 13 before the fix
        store = PluginKvStore(tmp_path / f"kv{trial}.sqlite3")
        barrier = threading.Barrier(8)

        def first_call(
            i: int, store: PluginKvStore = store, barrier: threading.Barrier = barrier, trial: int = trial
        ) -> None:
            barrier.wait()
            try:
                store.set("plugin", b"k%d" % i, b"v")
            except Exception as exc:  # recorded: the assertion says which
                failures.append(f"trial {trial}: {exc!r}")

        threads = [threading.Thread(target=first_call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(store.get("plugin", b"k%d" % i) == b"v" for i in range(8))
    assert failures == []
