"""What the command line says, through the real CLI: one ``error:`` style for every
usage mistake, help texts that are not cut off, ``--version``, and validation
errors located at the line of the step they are about."""

from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import run_hm

from hm import __version__


def flat(text: str) -> str:
    """Help text with its line wrapping undone."""
    return re.sub(r"\s+", " ", text)


def project(tmp_path: Path, body: str, name: str = "pipeline.py") -> Path:
    (tmp_path / ".hm").mkdir(exist_ok=True)
    (tmp_path / ".hm" / name).write_text(body)
    return tmp_path


# --- --version and --help --------------------------------------------------------------


def test_version_option_prints_the_version() -> None:
    result = run_hm("--version")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"hm {__version__}\n", "")


def test_help_shows_each_command_description_whole() -> None:
    root = run_hm("--help").stdout
    assert "..." not in root.partition("Commands:")[2]
    assert "run Run a pipeline of the project (or --file), each step on the runner plugin it names." in flat(root)
    assert "version Show hm's version, the plugin ABI it speaks and how many plugins it finds." in flat(root)
    plugin = run_hm("plugin", "--help").stdout
    assert "..." not in plugin.partition("Commands:")[2]
    assert "install Validate a plugin in a child process, then install it atomically as <name>.<ext>." in flat(plugin)


def test_run_format_help_describes_a_stream_of_events() -> None:
    run_help = flat(run_hm("run", "--help").stdout)
    assert "json: one JSON event per line on stdout" in run_help
    assert "machine-readable document" not in run_help
    assert "json: one JSON document on stdout" in flat(run_hm("plugin", "list", "--help").stdout)


# --- one error style -------------------------------------------------------------------


def test_a_bad_option_is_one_error_line_in_hms_style() -> None:
    result = run_hm("run", "--bogus")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: hm run: no such option '--bogus'; `hm run --help` shows the usage"]


def test_a_missing_argument_and_a_bad_value_are_one_line_each() -> None:
    missing = run_hm("plugin", "install")
    assert missing.returncode == 2
    assert missing.stderr.splitlines() == [
        "error: hm plugin install: missing argument 'SOURCE'; `hm plugin install --help` shows the usage"
    ]
    bad = run_hm("run", "-j", "0")
    assert bad.returncode == 2
    (line,) = bad.stderr.splitlines()
    assert line.startswith("error: hm run: invalid value for '--parallelism' / '-j': 0 is not in the range")


def test_an_unknown_command_is_not_prefixed_with_hm() -> None:
    result = run_hm("nosuch")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: unknown command 'nosuch'; `hm --help` lists the commands, plugin commands and extensions"
    ]


def test_an_unknown_subcommand_names_its_group_and_suggests() -> None:
    result = run_hm("plugin", "instal")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: hm plugin: unknown command 'instal'; did you mean 'install' or 'list'? "
        "`hm plugin --help` lists its commands"
    ]


def test_the_empty_project_error_names_the_folder_once(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    result = run_hm("run", cwd=tmp_path)
    assert result.returncode == 3
    first = result.stderr.splitlines()[0]
    folder = str((tmp_path / ".hm").resolve())
    assert first == f"error: {folder}: no pipeline files (.py or .json) here; create .hm/pipeline.py, for example:"
    assert result.stderr.count(str(tmp_path.resolve())) == 1


# --- validation errors are located ------------------------------------------------------


def test_an_unknown_runner_is_reported_at_the_line_of_its_step(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "from hm.dsl import pipeline, step\n"
        "\n"
        "@pipeline('ci')\n"
        "def ci():\n"
        "    step('build', 'make')\n"
        "    step('test', 'make test', runner='nope')\n",
    )
    result = run_hm("run", cwd=root)
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "error: .hm/pipeline.py:6: pipeline 'ci' has 1 problem: step 'test' (steps[1]): runner 'nope' is not "
        "provided by any loaded plugin (available runners: container, shell); "
        "`hm plugin list` shows the loaded plugins and the runners they provide"
    ]


def test_an_unknown_runner_in_ir_json_names_the_file_and_step_index(tmp_path: Path) -> None:
    ir = tmp_path / "ci.json"
    ir.write_text(json.dumps({"slug": "ci", "steps": [{"kind": "command", "key": "a", "cmd": "x", "runner": "no"}]}))
    result = run_hm("run", "--file", str(ir), cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.startswith(
        "error: ci.json: pipeline 'ci' has 1 problem: step 'a' (steps[0]): runner 'no' is not provided"
    )


def test_an_env_name_no_shell_can_expand_is_warned_and_the_run_goes_on(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "from hm.dsl import pipeline, step\n"
        "\n"
        "@pipeline('ci')\n"
        "def ci():\n"
        "    step('a', 'echo ran', env={'MY VAR': '1', 'OK_NAME': '2'})\n",
    )
    result = run_hm("run", "--format", "json", cwd=root)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "warning: .hm/pipeline.py:5: pipeline 'ci', step 'a' (steps[0]): environment variable name 'MY VAR' "
        "is not a shell variable name"
    )
    events = [json.loads(line) for line in result.stdout.splitlines()]  # stdout holds events only
    assert events[-1]["kind"] == "build_finished" and events[-1]["status"] == "succeeded"
