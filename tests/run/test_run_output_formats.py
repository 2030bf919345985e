"""``hm run`` on the bundled shell runner: what a user sees in each output format."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

from run_helpers import Project, events, finished, hm_env, logs, no_traceback, popen_hm, stop_process

STEP_EVENT_KINDS = {"step_queued", "step_started", "step_log", "step_finished"}


# -- human -------------------------------------------------------------------------


def test_success_human_summary_on_stderr_in_plain_text_and_nothing_on_stdout(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("hello", "echo hello-from-step")
        step("other", "echo other-step-out >&2")
        """,
        slug="greet",
    )
    result = project.run()
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    err = result.stderr
    assert "greet" in err
    # Not a terminal: plain lines, each output line prefixed with its step.
    assert "\x1b[" not in err, "escape codes in non-terminal output"
    assert re.search(r"hello\s*\|\s*hello-from-step", err), err
    assert re.search(r"other\s*\|\s*other-step-out", err), err
    assert re.search(r"hello\s+succeeded", err), err
    assert re.search(r"other\s+succeeded", err), err
    assert "build succeeded" in err
    no_traceback(result)


def test_human_summary_of_failures(tmp_path: Path) -> None:
    # Several ways to fail in one run (--keep-going lets them all finish).
    project = Project(tmp_path).pipeline(
        r"""
        step("loud", "seq 200000; echo last words >&2; exit 2")
        step("slow", "sleep 10", timeout_seconds=0.5)
        step("missing", "hm-no-such-command-xyz")
        step("bytes", "printf '\\377\\376 ok\\n'")
        """
    )
    result = project.run("--keep-going")
    assert result.returncode == 1
    err = result.stderr
    no_traceback(result)
    assert re.search(r"loud\s+failed", err), err[-3000:]
    assert re.search(r"slow\s+timed_out", err) and "timed out" in err, err[-3000:]
    assert re.search(r"missing\s+failed", err) and "127" in err, err[-3000:]
    assert "\ufffd\ufffd ok" in err  # not UTF-8: replacement characters, no crash
    assert "build failed" in err
    # A failed step's output is shown again in the summary, but only its tail.
    marker = err.find("── output of loud")
    assert marker != -1, err[-3000:]
    section = []
    for line in err[marker:].splitlines()[1:]:
        if line.startswith("──") or not line.strip():
            break
        section.append(line)
    assert 1 <= len(section) <= 200, f"{len(section)} lines in the summary tail"
    assert "last words" in section
    assert "200000" in section and "100000" not in section


def test_live_view_on_a_terminal_renders_and_ends_with_the_summary(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("a", "for i in 1 2 3; do echo line $i; sleep 0.1; done")
        step("b", "echo '[bold]not markup[/bold]'; exit 2")
        """
    )
    env = {**os.environ, **hm_env(), "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("NO_COLOR")
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hm", "run", "-k"],
        cwd=project.root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    try:
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=30)
    finally:
        os.close(leader)
        stop_process(proc)
    screen = b"".join(chunks).decode("utf-8", "replace")
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    assert proc.returncode == 1, plain
    assert "\x1b[" in screen, "no terminal styling on a terminal"
    assert "[bold]not markup[/bold]" in plain, "step output was read as rich markup"
    assert re.search(r"a\s+succeeded", plain) and re.search(r"b\s+failed", plain), plain
    assert "build failed" in plain
    assert "Traceback" not in plain


# -- json ---------------------------------------------------------------------------


def test_json_stdout_is_only_event_lines_in_a_sensible_order(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        a = step("a", "echo out-line; echo err-line >&2")
        step("b", "echo second", builds_in=a)
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n")
    assert all(line.strip() for line in result.stdout.splitlines()), "blank line on stdout"
    kinds = [e["kind"] for e in evs]
    assert kinds[0] == "build_started" and kinds.count("build_started") == 1
    assert kinds[-1] == "build_finished" and kinds.count("build_finished") == 1
    run_id = evs[0]["run_id"]
    for e in evs:
        assert {"kind", "run_id", "ts"} <= e.keys(), e
        assert e["run_id"] == run_id
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", e["ts"]), e["ts"]
        if e["kind"] in STEP_EVENT_KINDS:
            assert e["step_key"] in ("a", "b"), e
    assert [e["ts"] for e in evs] == sorted(e["ts"] for e in evs), "timestamps go backwards"
    # Per step: queued, started, its logs, finished.
    for key in ("a", "b"):
        mine = [e["kind"] for e in evs if e.get("step_key") == key]
        assert mine[0] == "step_queued" and mine[1] == "step_started" and mine[-1] == "step_finished", mine
        assert set(mine[2:-1]) == {"step_log"}, mine
    # The chain runs in order: b starts after a finished.
    index = {(e["kind"], e.get("step_key")): i for i, e in enumerate(evs)}
    assert index[("step_finished", "a")] < index[("step_started", "b")]
    assert logs(evs, "a", "stdout") == ["out-line"]
    assert logs(evs, "a", "stderr") == ["err-line"]
    assert logs(evs, "b") == ["second"]
    started = next(e for e in evs if e["kind"] == "step_started")
    assert started["runner"] == "shell" and started["plugin"] == "shell"
    done = finished(evs)
    assert done["a"]["status"] == "succeeded" and done["a"]["exit_code"] == 0
    assert evs[-1]["status"] == "succeeded" and evs[-1]["exit_code"] == 0
    assert evs[0]["pipeline"] == "t" and evs[0]["steps"] == 2


def test_json_failure_reports_step_chain_and_build(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("bad", "echo about to fail; exit 3")')
    result, evs = project.run_json()
    assert result.returncode == 1
    done = finished(evs)["bad"]
    assert done["status"] == "failed" and done["exit_code"] == 3
    assert "3" in done["message"]
    chain_failed = [e for e in evs if e["kind"] == "chain_failed"]
    assert len(chain_failed) == 1 and chain_failed[0]["step_key"] == "bad"
    assert evs[-1]["kind"] == "build_finished"
    assert evs[-1]["status"] == "failed" and evs[-1]["exit_code"] == 1
    assert "bad" in evs[-1]["message"]


def test_env_from_pipeline_and_step_with_step_winning(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("e", 'echo "A=$HM_T_A B=$HM_T_B C=$HM_T_C"', env={"HM_T_B": "step-b", "HM_T_C": "step-c"})
        """,
        env={"HM_T_A": "pipe-a", "HM_T_B": "pipe-b"},
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    assert logs(evs, "e") == ["A=pipe-a B=step-b C=step-c"]


def test_command_not_found_fails_with_exit_code_127(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("missing", "hm-no-such-command-xyz --flag")')
    result, evs = project.run_json()
    assert result.returncode == 1
    done = finished(evs)["missing"]
    assert done["status"] == "failed"
    assert done["exit_code"] == 127
    assert "not found" in done["message"]
    # The shell's own complaint reaches the user on the stderr stream.
    assert any("hm-no-such-command-xyz" in line for line in logs(evs, "missing", "stderr"))


def test_output_that_is_not_utf8_shows_replacement_characters(tmp_path: Path) -> None:
    # dash's printf has no \x escapes: octal 377 376 are the bytes 0xff 0xfe.
    project = Project(tmp_path).pipeline(
        r"""step("bytes", "printf '\\377\\376 ok\\n'; printf 'caf\\303\\251\\n'; printf 'no newline'")"""
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    # ...and a last line without a newline is not lost.
    assert logs(evs, "bytes") == ["\ufffd\ufffd ok", "café", "no newline"]


def test_big_output_arrives_complete_in_json(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("big", "seq 200000")')
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    lines = logs(evs, "big", "stdout")
    assert len(lines) == 200000
    assert lines == [str(i) for i in range(1, 200001)]


def test_a_huge_line_without_newlines_is_cut_into_bounded_lines(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline("""step("wide", "head -c 300000 /dev/zero | tr '\\\\0' a")""")
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    lines = logs(evs, "wide")
    assert "".join(lines) == "a" * 300000
    # Cut at about 64 KiB (plus at most one read of the runner): memory stays bounded.
    assert len(lines) > 1 and max(len(line) for line in lines) <= 4 * 64 * 1024


def test_a_step_does_not_read_hm_stdin(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("reader", "cat; echo after-cat")')
    proc = popen_hm(project.root, "--format", "json", stdin=subprocess.PIPE)
    try:
        proc.wait(timeout=20)  # stdin stays open: a step reading it would hang
        out = proc.stdout.read().decode()  # type: ignore[union-attr]
        assert proc.returncode == 0
        assert logs(events(out), "reader") == ["after-cat"]
    finally:
        stop_process(proc)


def test_the_run_goes_on_when_the_json_reader_goes_away(tmp_path: Path) -> None:
    marker = tmp_path / "finished"
    project = Project(tmp_path / "p").pipeline(
        f"""
        a = step("a", "seq 20000")
        step("b", "seq 20000; sleep 0.3; touch {marker}", builds_in=a)
        """
    )
    proc = popen_hm(project.root, "--format", "json")
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert json.loads(first)["kind"] == "build_started"
        proc.stdout.close()  # type: ignore[union-attr]  # like `hm run --format json | head -1`
        proc.wait(timeout=30)
        err = proc.stderr.read().decode()  # type: ignore[union-attr]
        assert proc.returncode == 0, err
        assert marker.exists()
        assert "Traceback" not in err and "BrokenPipe" not in err, err
    finally:
        stop_process(proc)


# -- live output ---------------------------------------------------------------------


def _read_until(stream, predicate, found: threading.Event, seen: list[str]) -> None:  # type: ignore[no-untyped-def]
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace")
        seen.append(line)
        if predicate(line):
            found.set()


def _handshake_step(tmp_path: Path, fmt: str) -> tuple[bool, list[str]]:
    """A step prints a line, then waits until the test has seen that line: so the
    line must reach the reader while the step is still running."""
    go = tmp_path / "go"
    project = Project(tmp_path / "proj").pipeline(
        f"""
        step(
            "live",
            "echo first-line; i=0; "
            "while [ ! -e {str(go)!r} ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; "
            "echo second-line",
        )
        """
    )
    proc = popen_hm(project.root, "--format", fmt)
    found = threading.Event()
    seen: list[str] = []
    stream = proc.stdout if fmt == "json" else proc.stderr
    other = proc.stderr if fmt == "json" else proc.stdout
    reader = threading.Thread(target=_read_until, args=(stream, lambda s: "first-line" in s, found, seen), daemon=True)
    reader.start()
    try:
        live = found.wait(timeout=2.5)
        go.touch()
        proc.wait(timeout=30)
        reader.join(timeout=10)
        other.read()  # type: ignore[union-attr]
        assert proc.returncode == 0, "".join(seen)
        return live, seen
    finally:
        stop_process(proc)


def test_human_output_is_live(tmp_path: Path) -> None:
    live, seen = _handshake_step(tmp_path, "human")
    assert live, "the step's first line was not shown while the step ran:\n" + "".join(seen)


def test_json_step_log_lines_reach_a_reader_while_the_step_runs(tmp_path: Path) -> None:
    live, seen = _handshake_step(tmp_path, "json")
    lines = [json.loads(s) for s in seen]
    assert [e["line"] for e in lines if e["kind"] == "step_log"] == ["first-line", "second-line"]
    assert live, (
        "a step_log line stayed in hm's stdout buffer until the step finished, so a reader of "
        "--format json sees no output of a running step"
    )
