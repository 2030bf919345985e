"""What a plugin cannot do through the host API, in process and isolated: act
with another plugin's call handle, guess one, crash hm with a hostile message,
or read outside ``.hm/`` by racing a symlink."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from conftest import run_hm
from iso_helpers import RunTrace, events, hm_env

MODES = pytest.mark.parametrize("isolate", [[], ["--isolate"]], ids=["in-process", "isolated"])
STALE, DENIED, INVALID = 5, 6, 3


def project(root: Path, body: str) -> Path:
    (root / ".hm").mkdir(parents=True, exist_ok=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n"
        + "".join(f"    {line}\n" for line in body.strip().splitlines())
    )
    return root


def run(root: Path, isolate: list[str], plugins: list[str], env: dict[str, str]):
    result = run_hm("run", "--format", "json", *isolate, cwd=root, env={**hm_env(plugins), **env})
    evs = events(result.stdout)
    lines = {e["step_key"]: [] for e in evs if e["kind"] == "step_started"}
    for e in evs:
        if e["kind"] == "step_log":
            lines.setdefault(e["step_key"], []).append(e["line"])
    return result, evs, lines


@MODES
def test_a_plugin_using_another_plugins_live_handle_is_refused(isolate: list[str], tmp_path: Path) -> None:
    root = project(tmp_path / "p", 'step("victim", "x", runner="victim")\nstep("thief", "steal", runner="thief")')
    trace = RunTrace(tmp_path)
    env = {**trace.env, "HM_HANDLE_FILE": str(tmp_path / "handle"), "HM_HANDLE_DONE": str(tmp_path / "done")}
    result, _evs, lines = run(root, isolate, ["handle-victim", "handle-thief"], env)
    assert result.returncode == 0, result.stderr
    (said,) = [line for line in lines["thief"] if line.startswith("steal ")]
    fields = dict(part.split("=", 1) for part in said.split()[1:])
    for call in ("kv_get", "kv_set", "log", "cancel"):
        assert int(fields[call]) in (STALE, DENIED), said
    assert fields["got"] == "-"  # the victim's secret never reached the thief
    assert "injected by the thief" not in lines.get("victim", [])
    trace.assert_clean()


@MODES
def test_guessing_call_handles_finds_none(isolate: list[str], tmp_path: Path) -> None:
    root = project(tmp_path / "p", 'step("guess", "guess", runner="thief")\nstep("busy", "sleep 2")')
    result, _, lines = run(root, isolate, ["handle-thief"], {})
    assert result.returncode == 0, result.stderr
    assert "guess hits=0" in lines["guess"]


@MODES
def test_a_deeply_nested_or_ext_typed_event_is_refused_not_a_crash(isolate: list[str], tmp_path: Path) -> None:
    root = project(tmp_path / "p", 'step("deep", "deep", runner="thief")')
    result, evs, lines = run(root, isolate, ["handle-thief"], {})
    assert result.returncode == 0, result.stderr
    assert f"deep nested={INVALID} ext={INVALID}" in lines["deep"]
    assert not [e for e in evs if e["kind"] == "plugin_event"]
    assert "Traceback" not in result.stderr


@MODES
def test_swapping_a_symlink_under_hm_while_a_plugin_reads_config_leaks_nothing(
    isolate: list[str], tmp_path: Path
) -> None:
    root = project(tmp_path / "p", 'step("race", "config 20000", runner="thief")')
    (root / "outside").write_text("OUTSIDE")
    (root / ".hm" / "inside").write_text("INSIDE")
    cfg = root / ".hm" / "cfg"
    os.symlink("inside", cfg)
    stop = threading.Event()

    def swap() -> None:
        targets = [str(root / "outside"), "inside"]
        flip = 0
        while not stop.is_set():
            tmp = root / ".hm" / f"cfg.{flip}"
            os.symlink(targets[flip % 2], tmp)
            os.replace(tmp, cfg)
            flip += 1

    swapper = threading.Thread(target=swap)
    swapper.start()
    try:
        result, _, lines = run(root, isolate, ["handle-thief"], {})
    finally:
        stop.set()
        swapper.join()
    assert result.returncode == 0, result.stderr
    (said,) = [line for line in lines["race"] if line.startswith("config ")]
    fields = dict(part.split("=", 1) for part in said.split()[1:])
    assert fields["leaks"] == "0", said
    assert int(fields["ok"]) > 0, said  # the race really ran: some reads got the inside file


def test_a_fifo_and_an_oversized_file_are_refused_without_blocking(tmp_path: Path) -> None:
    from hm.runtime import CallContext, HostServices, HostStatus
    from hm.runtime.limits import MAX_CONFIG_BYTES

    (tmp_path / ".hm").mkdir()
    os.mkfifo(tmp_path / ".hm" / "fifo")
    with open(tmp_path / ".hm" / "big", "wb") as f:
        f.truncate(MAX_CONFIG_BYTES + 1)
    svc = HostServices(project_root=tmp_path)
    ctx = CallContext("p", "/p.so", "test", svc)
    for name in ("fifo", "big"):
        started = time.monotonic()
        with pytest.raises(HostStatus) as caught:
            svc.read_config(ctx, name)
        assert caught.value.status == DENIED
        assert time.monotonic() - started < 2
