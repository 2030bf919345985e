"""kv_compare_and_swap (ABI 1.1): its rules, served in process and over the
worker transport, and a count that stays exact under 32 parallel steps in two
concurrent ``hm run``s (one of them isolated)."""

from __future__ import annotations

import io
import re
import sqlite3
import threading
from pathlib import Path

import abi_helpers  # noqa: F401  (puts tests/run on sys.path)
import pytest
from conftest import fixture_path
from run_helpers import Project, events, logs, popen_hm

from hm.runtime.host_services import HostServices
from hm.runtime.kv_store import PluginKvStore
from hm.runtime.plugin import open_plugin
from hm_plugin_sdk.protocol import SubcommandInput

EXPECTED = {
    "create": 0,  # absent expected, key absent: created
    "create_again": 12,  # HM_ERR_CONFLICT: it exists now
    "wrong_expected": 12,
    "empty_expected": 12,  # a zero-length expected value is not "absent"
    "right_expected": 0,
    "build_scope": 9,  # HM_ERR_UNAVAILABLE outside a run
    "bad_scope": 3,  # HM_ERR_INVALID_ARGUMENT
}


@pytest.mark.parametrize("isolation", ["in-process", "process"])
def test_cas_rules_outside_a_run(isolation: str) -> None:
    plugin = open_plugin(fixture_path("kv-counter"), isolation=isolation)  # type: ignore[arg-type]
    out = io.BytesIO()
    try:
        info = plugin.run_subcommand(SubcommandInput(verb_path=["counter", "probe"]), HostServices(stdout=out))
    finally:
        plugin.transport.close()
    assert info.exit_code == 0
    statuses = {line.split()[1]: int(line.split()[2]) for line in out.getvalue().decode().splitlines()}
    assert statuses == EXPECTED
    assert PluginKvStore.default().get("kv-counter", b"probe") == b"2"


def test_store_cas_is_atomic_across_threads_and_connections(tmp_path: Path) -> None:
    """Two stores on one file (as two processes have) and 8 threads each: no lost update."""
    db = tmp_path / "kv.sqlite3"
    stores = [PluginKvStore(db), PluginKvStore(db)]

    def bump(store: PluginKvStore) -> None:
        for _ in range(50):
            while True:
                old = store.get("p", b"n")
                new = str(int(old or b"0") + 1).encode()
                if store.compare_and_swap("p", b"n", old, new):
                    break

    threads = [threading.Thread(target=bump, args=(stores[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].get("p", b"n") == b"400"
    with sqlite3.connect(db) as conn:  # the rows are the plugin's own: nothing else was written
        assert conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0] == 1


COUNTING = "\n".join(f"step(key='c{i}', cmd='count', runner='counter')" for i in range(32))


def test_32_parallel_steps_in_two_concurrent_runs_count_exactly(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(COUNTING)
    runs = [
        popen_hm(project.root, "--format", "json", "--parallelism", "32", plugins=["kv-counter"]),
        popen_hm(project.root, "--format", "json", "--parallelism", "32", "--isolate", plugins=["kv-counter"]),
    ]
    outputs = [p.communicate(timeout=120) for p in runs]
    for p, (_out, err) in zip(runs, outputs, strict=True):
        assert p.returncode == 0, err.decode()
    builds: list[list[int]] = []
    plugin_counts: list[int] = []
    for out, _err in outputs:
        evs = events(out.decode())
        counted = [line for i in range(32) for line in logs(evs, f"c{i}")]
        assert len(counted) == 32
        nums = [re.match(r"counted plugin=(\d+) build=(\d+) retries=\d+$", line) for line in counted]
        assert all(nums), counted
        plugin_counts += [int(m[1]) for m in nums if m]
        builds.append(sorted(int(m[2]) for m in nums if m))
    # BUILD scope: each run counted 1..32 on its own
    assert builds == [list(range(1, 33)), list(range(1, 33))]
    # PLUGIN scope: shared by both runs (two processes, one SQLite file): every value once
    assert sorted(plugin_counts) == list(range(1, 65))
    assert PluginKvStore.default().get("kv-counter", b"count") == b"64"


def test_a_plugin_error_reads_the_same_in_a_step_and_in_a_subcommand(tmp_path: Path) -> None:
    from conftest import run_hm
    from run_helpers import finished, hm_env

    expected = (
        "Counting failed: the counter is jammed [counter_jammed]; unjam it; "
        "retry with: `hm run --step c0` or `hm counter probe`; see https://example.invalid/jammed"
    )
    verb = run_hm("counter", "fail", env=hm_env(["kv-counter"]))
    assert verb.returncode == 5
    assert expected in verb.stderr
    project = Project(tmp_path / "p").pipeline("step(key='c0', cmd='fail', runner='counter')")
    human = project.run(plugins=["kv-counter"])
    assert human.returncode == 5
    assert expected in human.stderr
    _result, evs = project.run_json(plugins=["kv-counter"])
    assert expected in finished(evs)["c0"]["message"]
