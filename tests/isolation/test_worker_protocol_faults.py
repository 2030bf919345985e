"""A worker that breaks the protocol (exits during the handshake, speaks another
version, never answers, sends a frame over 64 MiB or garbage, answers a call
nobody made): each is one clear line naming the plugin, and hm goes on."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm
from iso_helpers import RunTrace

FAKE = Path(__file__).with_name("fake_worker.py")


def fake_worker(tmp_path: Path) -> Path:
    exe = tmp_path / "fake-hm-worker"
    exe.write_text(f"#!{sys.executable}\n" + FAKE.read_text())
    exe.chmod(0o755)
    return exe


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("exit-in-handshake", "exited with status 3 while starting (its last output: fake worker: giving up at once)"),
        ("version-2", "its worker speaks protocol 2.0, this hm speaks 1.0"),
        ("silent", "did not finish starting within 5 s and was stopped"),
        ("big-frame", "its worker broke the protocol: a frame of 104857600 bytes (the limit is 67108864)"),
        ("garbage", "its worker broke the protocol: a frame that is not msgpack"),
    ],
)
def test_a_broken_worker_is_one_clear_line_naming_the_plugin(mode: str, said: str, tmp_path: Path) -> None:
    trace = RunTrace(tmp_path)
    env = {
        **trace.env,
        "HM_PLUGIN_PATH": str(fixture_path("noop-executor")),
        "HM_WORKER_EXE": str(fake_worker(tmp_path)),
        "HM_FAKE_WORKER_MODE": mode,
    }
    result = run_hm("plugin", "list", "--format", "json", env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    (noop,) = [p for p in json.loads(result.stdout)["plugins"] if p["path"] == str(fixture_path("noop-executor"))]
    assert noop["status"] == "broken"
    assert said in noop["error"]["what"]
    assert noop["error"]["where"] == f"plugin {fixture_path('noop-executor')}"
    assert "Traceback" not in result.stderr
    trace.assert_clean()


def test_an_answer_to_a_call_nobody_made_is_ignored_with_a_warning(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / ".hm").mkdir(parents=True)
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n    step('x', 'true', runner='noop')\n"
    )
    trace = RunTrace(tmp_path)
    env = {
        **trace.env,
        "HM_PLUGIN_PATH": str(fixture_path("noop-executor")),
        "HM_WORKER_EXE": str(fake_worker(tmp_path)),
        "HM_FAKE_WORKER_MODE": "unknown-id",
    }
    result = run_hm("run", "--isolate", cwd=root, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "its worker answered a call hm did not make; the answer was ignored" in result.stderr
    trace.assert_clean()
