"""Stdio plugins in the registry exactly as native ones: a project's stdio plugin
shadows a native one of the same name, and a runner claimed by a stdio and a
native plugin is a conflict naming both paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import fixture_path, run_hm
from stdio_helpers import stdio_env

PLUGIN = """\
from hm_plugin_sdk.stdio import Plugin

plugin = Plugin({name!r}, "9.0.0")


@plugin.runner({runner!r})
def run(inp, call):
    call.emit_step_log("stdio {name}\\n")
    return {{"exit_code": 0}}


plugin.serve()
"""


def _stdio_plugin(folder: Path, name: str, runner: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "plugin.py").write_text(PLUGIN.format(name=name, runner=runner))
    desc = folder / f"{name}.plugin.toml"
    desc.write_text('command = ["python3", "plugin.py"]\nprotocol = "1.0"\n')
    return desc


def test_a_project_stdio_plugin_shadows_a_native_one_of_the_same_name(tmp_path: Path) -> None:
    root = tmp_path / "p"
    desc = _stdio_plugin(root / ".hm" / "plugins" / "noop-executor", "noop-executor", "noop")
    (root / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n@pipeline('t')\ndef p():\n    step('s', 'x', runner='noop')\n"
    )
    env = stdio_env(extra={"HM_PLUGIN_PATH": str(fixture_path("noop-executor"))})
    listed = json.loads(run_hm("plugin", "list", "--format", "json", env=env, cwd=root).stdout)
    recs = [p for p in listed["plugins"] if p["name"] == "noop-executor"]
    assert [(r["kind"], r["origin"], r["status"]) for r in recs] == [
        ("stdio", "project", "ok"),
        ("native", "env", "shadowed"),
    ]
    assert recs[1]["shadowed_by"] == str(desc)
    ran = run_hm("run", "--format", "json", cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(line).get("line") for line in ran.stdout.splitlines() if '"step_log"' in line] == [
        "stdio noop-executor"
    ]


def test_a_runner_claimed_by_a_stdio_and_a_native_plugin_is_a_conflict(tmp_path: Path) -> None:
    desc = _stdio_plugin(tmp_path / "other", "other", "noop")
    native = fixture_path("noop-executor")
    env = stdio_env(extra={"HM_PLUGIN_PATH": os.pathsep.join([str(desc), str(native)])})
    result = run_hm("plugin", "list", env=env)
    (line,) = [w for w in result.stderr.splitlines() if "runner 'noop' is claimed by" in w]
    assert f"other ({desc})" in line and f"noop-executor ({native})" in line


def test_a_python_package_can_ship_a_stdio_plugin_through_an_entry_point(tmp_path: Path) -> None:
    site = tmp_path / "site"
    folder = site / "demo_pkg" / "plugins"
    folder.mkdir(parents=True)
    (site / "demo_pkg" / "__init__.py").write_text("raise RuntimeError('hm must not import the package')\n")
    _stdio_plugin(folder / "x", "demo", "demo-runner")
    for name in ("plugin.py", "demo.plugin.toml"):  # the descriptor sits in the entry point's folder
        (folder / "x" / name).rename(folder / name)
    dist = site / "demo_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hm.plugins]\ndemo = demo_pkg.plugins:demo.plugin.toml\n")
    env = stdio_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(site)])
    listed = json.loads(run_hm("plugin", "list", "--format", "json", env=env).stdout)
    (rec,) = [p for p in listed["plugins"] if p["name"] == "demo"]
    assert (rec["kind"], rec["origin"], rec["status"]) == ("stdio", "package", "ok")
    assert rec["path"] == str(folder / "demo.plugin.toml")
