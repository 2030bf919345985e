"""Libraries that misbehave while hm lists them: hang or leave a daemon while
loading, return a 100 MB manifest, declare a capability their vtable lacks, or
hide escape sequences in their file name. Listing stays bounded, says what is
wrong once, caches the verdict, and leaves nothing running."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import ROOT, fixture_path, run_hm
from iso_helpers import RunTrace


def plugin_dir(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(fixture_path(name), folder / fixture_path(name).name)
    return folder


def listing(folder: Path, trace: RunTrace, **env: str) -> tuple[subprocess.CompletedProcess[str], dict, float]:
    started = time.monotonic()
    result = run_hm("plugin", "list", "--format", "json", env={"HM_PLUGIN_PATH": str(folder), **trace.env, **env})
    took = time.monotonic() - started
    doc = json.loads(result.stdout) if result.stdout.strip() else {}
    return result, doc, took


def entry(doc: dict, stem: str) -> dict:
    (found,) = [p for p in doc["plugins"] if Path(p["path"]).stem == stem]
    return found


def test_a_library_that_hangs_while_loading_costs_one_bounded_probe(tmp_path: Path) -> None:
    folder = plugin_dir(tmp_path, "hang-on-load", "noop-executor")
    trace = RunTrace(tmp_path)
    result, doc, took = listing(folder, trace, HM_FIXTURE_HANG="1")
    assert result.returncode == 0, result.stderr
    hung = entry(doc, "hang-on-load")
    assert hung["status"] == "broken"
    assert "did not finish loading within 5 s" in hung["error"]["what"]
    assert entry(doc, "noop-executor")["status"] == "ok"
    assert took < 15
    # the verdict is cached: the next command does not wait again
    _again, doc, took = listing(folder, trace, HM_FIXTURE_HANG="1")
    assert "did not finish loading" in entry(doc, "hang-on-load")["error"]["what"]
    assert took < 4
    trace.assert_clean()


def test_ctrl_c_during_discovery_stops_hm_at_once_and_leaves_no_probe(tmp_path: Path) -> None:
    folder = plugin_dir(tmp_path, "hang-on-load")
    trace = RunTrace(tmp_path)
    env = {**os.environ, **trace.env, "HM_PLUGIN_PATH": str(folder), "HM_FIXTURE_HANG": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hm", "plugin", "list"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 10
        while not trace.processes(wait=0) or len(trace.processes(wait=0)) < 2:  # hm and its probe worker
            assert time.monotonic() < deadline, "the probe never started"
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, err = proc.communicate(timeout=10)
        assert time.monotonic() - started < 3
        assert proc.returncode == 130, err
        assert b"Traceback" not in err
        trace.assert_clean()
    finally:
        proc.kill()
        trace.kill_leftovers()


def test_a_daemon_left_by_a_library_while_loading_neither_slows_nor_outlives_hm(tmp_path: Path) -> None:
    folder = plugin_dir(tmp_path, "daemon-on-load")
    trace = RunTrace(tmp_path)
    result, doc, took = listing(folder, trace, HM_FIXTURE_DAEMON="1")
    assert result.returncode == 0, result.stderr
    assert entry(doc, "daemon-on-load")["status"] == "ok"
    assert took < 5
    trace.assert_clean()


def test_a_100_mb_manifest_is_refused_and_not_cached(tmp_path: Path) -> None:
    folder = plugin_dir(tmp_path, "big-manifest")
    trace = RunTrace(tmp_path)
    _result, doc, _ = listing(folder, trace)
    big = entry(doc, "big-manifest")
    assert big["status"] == "broken"
    assert "more than the 1048576 bytes allowed" in big["error"]["what"]
    cache = Path(os.environ["HM_HOME"]) / "cache" / "manifests.json"
    assert cache.stat().st_size < 100_000


def test_a_declared_capability_with_a_null_entry_is_refused_at_load(tmp_path: Path) -> None:
    folder = plugin_dir(tmp_path, "null-capability")
    trace = RunTrace(tmp_path)
    _, doc, _ = listing(folder, trace)
    null = entry(doc, "null-capability")
    assert null["status"] == "broken"
    assert "it declares lifecycle_hook but its vtable's on_hook_event is NULL" in null["error"]["what"]
    assert "it declares step_executor but its vtable's execute_step is NULL" in null["error"]["what"]


def test_escape_sequences_in_a_file_name_never_reach_the_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    evil = folder / "evil\x1b[2K\rwarning: all good.so"
    shutil.copy(fixture_path("broken-no-entry"), evil)
    result = run_hm("plugin", "list", env={"HM_PLUGIN_PATH": str(folder)})
    assert "\x1b" not in result.stdout + result.stderr
    assert "\r" not in result.stdout + result.stderr
    assert "evil\\x1b[2K\\rwarning: all good" in result.stdout + result.stderr
