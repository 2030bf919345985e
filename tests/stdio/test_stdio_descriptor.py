"""``NAME.plugin.toml``: found in the plugin folders, listed with its kind, its
manifest read once (no process on the next listing), a malformed one named with
file:line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import run_hm
from stdio_helpers import STDIO, stdio_env

from hm.errors import PluginLoadError
from hm.runtime.stdio_descriptor import read_descriptor


def _plugin_dir(tmp_path: Path, name: str = "py-all") -> Path:
    """A copy of a fixture's plugin directory, with a start counter in its script."""
    folder = tmp_path / "plugins" / name
    shutil.copytree(STDIO / name, folder)
    script = folder / "plugin.py"
    script.write_text(
        "import os\nwith open(os.environ['STARTS_FILE'], 'a') as f:\n    f.write('started\\n')\n" + script.read_text()
    )
    return folder


def test_a_plugin_directory_is_listed_as_stdio_and_listing_again_starts_no_process(tmp_path: Path) -> None:
    folder = _plugin_dir(tmp_path)
    starts = tmp_path / "starts"
    env = stdio_env(extra={"HM_PLUGIN_PATH": str(folder.parent), "STARTS_FILE": str(starts)})
    first = run_hm("plugin", "list", env=env)
    assert first.returncode == 0, first.stderr
    (row,) = [line for line in first.stdout.splitlines() if line.startswith("py-all")]
    assert row.split()[:6] == ["py-all", "1.2.0", "stdio", "1.0", "ok", "env"]
    assert "runner py-all" in row and "after hook" in row and "command `hm py-all`" in row
    assert starts.read_text() == "started\n"
    again = run_hm("plugin", "list", "--format", "json", env=env)
    doc = {p["name"]: p for p in json.loads(again.stdout)["plugins"]}
    assert doc["py-all"]["kind"] == "stdio" and doc["py-all"]["isolation"] == "stdio"
    assert doc["py-all"]["path"] == str(folder / "py-all.plugin.toml")
    assert doc["py-all"]["command"] == ["python3", "plugin.py"] and doc["shell"]["command"] is None
    assert doc["shell"]["kind"] == "native"
    assert starts.read_text() == "started\n", "the cached manifest was not used"
    # Editing the script is a change on disk, as rebuilding a library is.
    script = folder / "plugin.py"
    script.write_text(script.read_text().replace('"1.2.0"', '"1.3.0"'))
    third = run_hm("plugin", "info", "py-all", env=env)
    assert third.returncode == 0, third.stderr
    assert "py-all 1.3.0" in third.stdout and "kind:      stdio" in third.stdout
    assert "protocol:  1.0 (stdio)" in third.stdout
    assert "command:   python3 plugin.py (in hm's working directory)" in third.stdout
    assert starts.read_text() == "started\nstarted\n"


def test_a_malformed_descriptor_is_one_line_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "broken.plugin.toml"
    bad.write_text('protocol = "1.0"\ncommand = ["python3", "plugin.py"\n')
    result = run_hm("plugin", "list", env=stdio_env(extra={"HM_PLUGIN_PATH": str(bad)}))
    assert result.returncode == 0
    (line,) = [w for w in result.stderr.splitlines() if "broken.plugin.toml" in w]
    assert line.startswith(f"warning: {bad}:2: is not valid TOML")
    assert "Traceback" not in result.stderr
    info = run_hm("plugin", "info", "broken", env=stdio_env(extra={"HM_PLUGIN_PATH": str(bad)}))
    assert info.returncode == 4
    assert "kind:      stdio" in info.stdout and "status:    broken" in info.stdout


def test_descriptor_fields_are_checked_with_the_line_to_blame(tmp_path: Path) -> None:
    cases = {
        'command = "python3 plugin.py"\nprotocol = "1.0"\n': (1, "`command` must be a non-empty list"),
        'command = ["x"]\nprotocol = 1\n': (2, "`protocol` must be the protocol version"),
        'command = ["x"]\nprotocol = "1.0"\nname = "y"\n': (3, "unknown setting(s) name"),
        'command = ["x"]\nprotocol = "1.0"\n[env]\nA = 1\n': (3, "`env` must be a table of strings"),
    }
    for text, (line, what) in cases.items():
        path = tmp_path / "p.plugin.toml"
        path.write_text(text)
        try:
            read_descriptor(path)
        except PluginLoadError as exc:
            assert exc.where == f"{path}:{line}", text
            assert what in exc.what, text
        else:
            raise AssertionError(f"accepted {text!r}")
    path = tmp_path / "q.plugin.toml"
    path.write_text('protocol = "1.0"\n')
    try:
        read_descriptor(path)
    except PluginLoadError as exc:
        assert "has no `command`" in exc.one_line() and str(path) in exc.one_line()
