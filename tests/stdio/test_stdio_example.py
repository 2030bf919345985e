"""examples/stdio-node: a plain Node plugin passes ``hm plugin check`` and does
what its README says, as a command and as a runner; and a Perl plugin written
from docs/stdio-protocol.md alone (fixtures/stdio/perl-hello) works."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, run_hm
from stdio_helpers import descriptor, stdio_env, write_pipeline

WC = ROOT / "examples" / "stdio-node" / "wc"


def test_the_node_example_passes_check() -> None:
    result = run_hm("plugin", "check", str(WC / "wc.plugin.toml"), env=stdio_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_node_example_counts_as_a_command_and_as_a_runner(tmp_path: Path) -> None:
    env = stdio_env(extra={"HM_PLUGIN_PATH": str(WC)})
    (tmp_path / "three.txt").write_text("one two\nthree\nfour five six\n")
    result = run_hm("wc", "three.txt", env=env, cwd=tmp_path)  # relative to hm's working directory
    assert result.returncode == 0, result.stderr
    assert result.stdout == "3 lines, 6 words, 28 bytes: three.txt\n"
    missing = run_hm("wc", "nope.txt", env=env, cwd=tmp_path)
    assert missing.returncode == 5
    assert f"plugin wc ({WC / 'wc.plugin.toml'}): no file nope.txt [no_such_file]; give the path" in missing.stderr
    root = write_pipeline(tmp_path / "p", 'step("count", "data.txt", runner="wc")')
    (root / "data.txt").write_text("a b\n")
    ran = run_hm("run", "--format", "json", cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(x)["line"] for x in ran.stdout.splitlines() if '"step_log"' in x]
    assert lines == ["1 lines, 2 words, 4 bytes: data.txt"]


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_a_perl_plugin_written_from_the_protocol_doc_alone_works(tmp_path: Path) -> None:
    desc = descriptor("perl-hello")
    checked = run_hm("plugin", "check", str(desc), env=stdio_env(), timeout=300)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    env = stdio_env("perl-hello")
    assert run_hm("perl-hello", "bob", env=env, cwd=tmp_path).stdout == "hello bob from perl (1)\n"
    assert run_hm("perl-hello", "bob", env=env, cwd=tmp_path).stdout == "hello bob from perl (2)\n"
    root = write_pipeline(tmp_path / "p", 'step("greet", "x", runner="perl-hello")')
    ran = run_hm("run", "--format", "json", cwd=root, env=env)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(x)["line"] for x in ran.stdout.splitlines() if '"step_log"' in x] == ["perl says hello to greet"]
