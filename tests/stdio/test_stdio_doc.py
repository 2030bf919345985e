"""docs/stdio-protocol.md stays true: its descriptor parses, its transcript is
JSON-RPC 2.0 line by line, and its Python example is a plugin that works."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import ROOT, run_hm
from stdio_helpers import stdio_env, write_pipeline

from hm.runtime.stdio_descriptor import read_descriptor

TEXT = (ROOT / "docs" / "stdio-protocol.md").read_text()
_BLOCK = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(lang: str) -> list[str]:
    return [m["body"] for m in _BLOCK.finditer(TEXT) if m["lang"] == lang]


def test_the_descriptor_example_parses(tmp_path: Path) -> None:
    (toml,) = blocks("toml")
    path = tmp_path / "greeter.plugin.toml"
    path.write_text(toml)
    d = read_descriptor(path)
    assert d.command == ("python3", "plugin.py") and d.protocol == (1, 0) and d.env == {"GREETER_LEVEL": "2"}


def test_the_transcript_is_json_rpc_line_by_line() -> None:
    (transcript,) = [b for b in blocks("") if b.startswith("> ")]
    messages = [json.loads(line[2:]) for line in transcript.splitlines() if line[:2] in ("> ", "< ")]
    assert len(messages) == 13
    assert all(m["jsonrpc"] == "2.0" for m in messages)
    assert messages[0]["method"] == "initialize" and messages[-1]["result"] is None


def test_the_python_example_is_a_working_plugin(tmp_path: Path) -> None:
    (example,) = [b for b in blocks("python") if "plugin.serve()" in b]
    folder = tmp_path / "greeter"
    folder.mkdir()
    (folder / "plugin.py").write_text(example)
    (folder / "greeter.plugin.toml").write_text('command = ["python3", "plugin.py"]\nprotocol = "1.0"\n')
    env = stdio_env(extra={"HM_PLUGIN_PATH": str(folder / "greeter.plugin.toml")})
    first = run_hm("greet", "--who", "bob", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "hello bob (1)\n"
    assert run_hm("greet", env=env, cwd=tmp_path).stdout == "hello world (2)\n"
    root = write_pipeline(tmp_path / "p", 'step("s", "x", runner="greeter")\nstep("f", "fail", runner="greeter")')
    ran = run_hm("run", "--format", "json", "--keep-going", cwd=root, env=env)
    assert ran.returncode == 5
    evs = [json.loads(line) for line in ran.stdout.splitlines()]
    assert [e["line"] for e in evs if e["kind"] == "step_log"] == ["hello from s"]
    (failed,) = [e for e in evs if e["kind"] == "step_finished" and e["step_key"] == "f"]
    assert "the step asked to fail [greeter_failed]; change its cmd" in failed["message"]
