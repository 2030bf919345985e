"""``hm NAME`` runs the ``hm-NAME`` executable: arguments, stdin, context, exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_hm

SCRIPT = """#!/bin/sh
printf '%s\\n' "$@" > "$OUT_DIR/args"
cat > "$OUT_DIR/stdin"
printf '%s' "$HM_EXT_API_VERSION" > "$OUT_DIR/api"
printf '%s' "$HM_EXT_CONTEXT" > "$OUT_DIR/context"
env | grep '^HM_EXT_' | cut -d= -f1 | sort > "$OUT_DIR/ext_vars"
exit 5
"""


def make_extension(bin_dir: Path, name: str = "hello") -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / f"hm-{name}"
    path.write_text(SCRIPT)
    path.chmod(0o755)
    return path


def test_extension_gets_verbatim_args_stdin_context_and_its_exit_code_is_hms(tmp_path: Path) -> None:
    make_extension(tmp_path / "bin")
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "OUT_DIR": str(tmp_path),
        "HM_EXT_CONTEXT": "inherited-must-not-leak",
        "HM_EXT_SECRET": "inherited-must-not-leak",
    }
    result = run_hm("-v", "hello", "--help", "-C", "x", "--", "last", env=env, input=b"from stdin\n", cwd=tmp_path)
    assert result.returncode == 5
    assert (tmp_path / "args").read_text().splitlines() == ["--help", "-C", "x", "--", "last"]
    assert (tmp_path / "stdin").read_text() == "from stdin\n"
    assert (tmp_path / "api").read_text() == "1"
    assert (tmp_path / "ext_vars").read_text().split() == ["HM_EXT_API_VERSION", "HM_EXT_CONTEXT"]
    ctx = json.loads((tmp_path / "context").read_text())
    assert ctx["verbose"] is True
    assert ctx["non_interactive"] is True
    assert ctx["hm_version"]
    assert {"config_dir", "state_dir", "plugin_dir", "project_root", "format"} <= set(ctx)


def test_help_lists_extensions_without_running_them(tmp_path: Path) -> None:
    make_extension(tmp_path / "bin", "deploy")
    env = {"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", "OUT_DIR": str(tmp_path)}
    result = run_hm("--help", env=env)
    assert "Extensions:" in result.stdout and "deploy" in result.stdout
    assert not (tmp_path / "args").exists(), "listing ran the extension"


def test_unknown_command_suggests_close_matches_and_exits_2() -> None:
    result = run_hm("rnu")
    assert result.returncode == 2
    assert "unknown command 'rnu'; did you mean 'run'?" in result.stderr
    assert "Traceback" not in result.stderr
