"""Run records through the real CLI: every run is kept (``hm runs``), its full
logs read back (``hm logs``, ``-f`` on a live run), its artifacts kept, listed and
copied out, old runs pruned; running part of a pipeline (``--step``,
``--rerun-failed``) and listing pipelines."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run_hm
from run_helpers import Project, finished, hm_env


def runs_json(project: Project) -> list[dict]:
    result = run_hm("runs", "--format", "json", cwd=project.root, env=hm_env())
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_run_is_recorded_with_its_full_logs(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline('step("talk", "for i in $(seq 1 100); do echo line $i; done; exit 3")')
    result = project.run()
    assert result.returncode == 1
    assert "(last 40 lines)" in result.stderr
    (run,) = runs_json(project)
    assert run["pipeline"] == "t" and run["status"] == "failed" and run["exit_code"] == 1
    assert f"full logs: `hm logs {run['run_id']}`" in result.stderr
    unknown = run_hm("logs", run["run_id"], "nope", cwd=project.root, env=hm_env())
    assert unknown.returncode == 2 and "has no step 'nope' (its steps: talk)" in unknown.stderr
    logs = run_hm("logs", run["run_id"][:6], "talk", cwd=project.root, env=hm_env())
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == [f"line {i}" for i in range(1, 101)]
    stamped = run_hm("logs", "--timestamps", cwd=project.root, env=hm_env()).stdout.splitlines()
    assert len(stamped) == 100 and stamped[0].startswith("talk | 20") and " stdout line 1" in stamped[0]


def test_each_run_is_kept_up_to_the_retention_and_can_be_pruned(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline('step("a", "true")')
    for _ in range(3):
        assert project.run(env={"HM_KEEP_RUNS": "2"}).returncode == 0
    runs = runs_json(project)
    assert len(runs) == 2
    pruned = run_hm("runs", "prune", "--keep", "1", cwd=project.root, env=hm_env())
    assert pruned.stdout.strip() == "deleted 1 run record"
    (kept,) = runs_json(project)
    assert kept["run_id"] == runs[0]["run_id"]  # the newest stays
    gone = run_hm("logs", runs[1]["run_id"], cwd=project.root, env=hm_env())
    assert gone.returncode == 2 and "no recorded run" in gone.stderr and "pruned" in gone.stderr


def test_artifacts_are_kept_named_and_copied_out(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(
        """
        step("build", "mkdir -p dist/sub && echo a > dist/a.txt && echo b > dist/sub/b.txt && echo r > report.xml",
             artifacts=["dist/**", "report.xml", "missing/*"])
        """
    )
    out = tmp_path / "out"
    result, evs = project.run_json("--artifacts-dir", str(out))
    assert result.returncode == 0, result.stderr
    kept = finished(evs)["build"]["artifacts"]
    assert [a["path"] for a in kept] == ["dist/a.txt", "dist/sub/b.txt", "report.xml"]
    assert kept[0] == {"path": "dist/a.txt", "size": 2, "sha256": hashlib.sha256(b"a\n").hexdigest()}
    assert "artifact pattern 'missing/*' matched no file" in result.stderr
    assert (out / "build" / "dist" / "sub" / "b.txt").read_text() == "b\n"
    listing = run_hm("artifacts", "--format", "json", cwd=project.root, env=hm_env())
    assert [a["path"] for a in json.loads(listing.stdout)["artifacts"]] == [a["path"] for a in kept]
    again = tmp_path / "again"
    copied = run_hm("artifacts", "--to", str(again), cwd=project.root, env=hm_env())
    assert copied.stdout.strip().startswith("copied 3 artifacts")
    assert (again / "build" / "report.xml").read_text() == "r\n"


def test_a_required_artifact_that_is_missing_fails_the_step(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline('step("build", "true", artifacts=["dist/*"], artifacts_required=True)')
    result, evs = project.run_json()
    assert result.returncode == 1
    assert finished(evs)["build"]["status"] == "failed"
    assert "artifact pattern 'dist/*' matched no file" in finished(evs)["build"]["message"]


def test_an_artifact_pattern_leaving_the_workspace_is_invalid(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline('step("build", "true", artifacts=["../secret"])')
    result = project.run()
    assert result.returncode == 3
    assert ".hm/pipeline.py:6" in result.stderr and "artifact pattern '../secret'" in result.stderr


def test_step_runs_the_step_and_the_chain_it_builds_on(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(
        """
        a = step("a", "echo a")
        b = step("b", "echo b", builds_in=a)
        step("c", "echo c", builds_in=b)
        step("d", "echo d")
        """
    )
    result, evs = project.run_json("--step", "b")
    assert result.returncode == 0, result.stderr
    assert sorted(finished(evs)) == ["a", "b"]
    _, evs = project.run_json("--step", "b", "--step", "d")
    assert sorted(finished(evs)) == ["a", "b", "d"]
    bad = project.run("--step", "bb")
    assert bad.returncode == 2
    assert "pipeline 't' has no step 'bb'; did you mean 'b'?" in bad.stderr


def test_rerun_failed_runs_only_what_failed_and_its_prefix(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    project = Project(tmp_path / "p").pipeline(
        f"""
        a = step("a", "echo a")
        b = step("b", "test -f $MARKER", builds_in=a, env={{"MARKER": {marker!r}}})
        step("d", "echo d")
        """
    )
    first, evs = project.run_json("--keep-going")
    assert first.returncode == 1 and finished(evs)["b"]["status"] == "failed"
    (tmp_path / "marker").write_text("")
    second, evs = project.run_json("--rerun-failed")
    assert second.returncode == 0, second.stderr
    assert sorted(finished(evs)) == ["a", "b"]  # d succeeded before: not run again
    third = project.run("--rerun-failed")
    assert third.returncode == 0 and "had no failed step; nothing to run" in third.stderr


def test_pipelines_lists_steps_chains_and_runners(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline(
        'a = step("a", "true")\nstep("b", "true", builds_in=a)\nwait()\nstep("c", "true")'
    )
    for args in (["pipelines"], ["run", "--list"]):
        result = run_hm(*args, cwd=project.root, env=hm_env())
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            "t (.hm/pipeline.py): 3 steps",
            "  stage 1",
            "    a (shell) → b (shell)",
            "  stage 2",
            "    c (shell)",
        ]


def test_a_record_that_cannot_be_written_is_a_warning_and_the_run_goes_on(tmp_path: Path, hm_home: Path) -> None:
    (hm_home / "state").mkdir(parents=True, exist_ok=True)
    (hm_home / "state" / "runs").write_text("not a folder")  # every write under it fails
    project = Project(tmp_path / "p").pipeline('step("a", "echo fine")')
    result = project.run()
    assert result.returncode == 0, result.stderr
    assert "could not be written" in result.stderr and "the run goes on without it" in result.stderr
    assert "Traceback" not in result.stderr


def test_logs_follow_a_live_run_to_its_end(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline('step("slow", "for i in 1 2 3 4 5; do echo tick $i; sleep 0.3; done")')
    env = {**os.environ, **hm_env(), "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen([sys.executable, "-m", "hm", "run"], cwd=project.root, env=env, stderr=subprocess.PIPE)
    try:
        deadline = 50
        while not runs_json(project) and deadline:
            deadline -= 1
            subprocess.run(["sleep", "0.1"])
        follow = run_hm("logs", "-f", cwd=project.root, env=hm_env(), timeout=30)
        assert follow.returncode == 0, follow.stderr
        assert follow.stdout.splitlines() == [f"slow | tick {i}" for i in range(1, 6)]
    finally:
        run.communicate(timeout=30)
