"""Where a step runs: chains inherit snapshots, forks get copies, fresh chains
start from the project (its archive, honouring ``.gitignore``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_hm
from run_helpers import Project, events, finished, hm_env, logs


def test_a_chain_step_sees_the_files_its_parent_wrote(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        a = step(
            "write",
            "mkdir -p out && echo built-by-write > out/artifact.txt && "
            "printf '#!/bin/sh\\necho tool-ran\\n' > tool.sh && chmod +x tool.sh",
        )
        b = step("read", "cat out/artifact.txt && echo appended >> out/artifact.txt", builds_in=a)
        step("again", "cat out/artifact.txt; ./tool.sh", builds_in=b)
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    assert logs(evs, "read") == ["built-by-write"]
    # ...and file modes survive the snapshot: the script is still executable.
    assert logs(evs, "again") == ["built-by-write", "appended", "tool-ran"]


@pytest.mark.parametrize("parallelism", ["1", "2"])
def test_forks_each_get_their_own_copy(tmp_path: Path, parallelism: str) -> None:
    # Both branches delete the shared file; whichever runs second would fail if
    # they shared one workspace.
    project = Project(tmp_path).pipeline(
        """
        base = step("base", "echo shared > shared.txt")
        step("left", "cat shared.txt && rm shared.txt && echo left > mine.txt", builds_in=base)
        step("right", "cat shared.txt && rm shared.txt && test ! -e mine.txt", builds_in=base)
        """
    )
    result, evs = project.run_json("-j", parallelism)
    assert result.returncode == 0, result.stderr + result.stdout
    assert logs(evs, "left", "stdout") == ["shared"]
    assert logs(evs, "right", "stdout") == ["shared"]
    assert {k: e["status"] for k, e in finished(evs).items()} == dict.fromkeys(("base", "left", "right"), "succeeded")


def test_a_fork_child_does_not_see_a_sibling_or_descendant_changes(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        base = step("base", "echo v1 > f.txt")
        l1 = step("l1", "echo v2 > f.txt", builds_in=base)
        step("l2", "cat f.txt", builds_in=l1)
        step("r1", "sleep 0.3; cat f.txt", builds_in=base)
        """
    )
    result, evs = project.run_json("-j", "4")
    assert result.returncode == 0, result.stderr
    assert logs(evs, "l2") == ["v2"]
    assert logs(evs, "r1") == ["v1"]


def test_a_fresh_chain_starts_from_the_project_files(tmp_path: Path) -> None:
    (tmp_path / "data.txt").write_text("project data\n")
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / "nested.txt").write_text("nested\n")
    project = Project(tmp_path).pipeline(
        """
        step("one", "cat data.txt sub/deeper/nested.txt; echo changed > data.txt; touch new-file")
        step("two", "sleep 0.2; cat data.txt; test ! -e new-file; pwd")
        """
    )
    result, evs = project.run_json("-j", "2")
    assert result.returncode == 0, result.stderr + result.stdout
    assert logs(evs, "one") == ["project data", "nested"]
    assert logs(evs, "two")[0] == "project data"
    # It ran in a workspace of its own, removed after the run.
    cwd = Path(logs(evs, "two")[1])
    assert cwd.resolve() != tmp_path.resolve()
    assert not cwd.exists(), "the per-step workspace was left behind after the run"
    # A step works on a copy: the project itself is untouched.
    assert (tmp_path / "data.txt").read_text() == "project data\n"
    assert not (tmp_path / "new-file").exists()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_gitignored_files_are_not_in_the_workspace_of_a_git_project(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, capture_output=True)
    (tmp_path / ".gitignore").write_text("secret.txt\nbuild/\n")
    (tmp_path / "secret.txt").write_text("do not ship\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "old.o").write_text("stale\n")
    (tmp_path / "untracked.txt").write_text("untracked but not ignored\n")
    project = Project(tmp_path).pipeline(
        """
        step(
            "look",
            "cat untracked.txt; test -f .gitignore; test ! -e secret.txt; test ! -e build/old.o; test ! -e .git",
        )
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stdout + result.stderr
    assert logs(evs, "look") == ["untracked but not ignored"]


def test_without_git_every_project_file_is_in_the_workspace(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("secret.txt\n")  # no repository: it means nothing
    (tmp_path / "secret.txt").write_text("present\n")
    project = Project(tmp_path).pipeline('step("look", "cat secret.txt")')
    result, evs = project.run_json()
    assert result.returncode == 0, result.stdout + result.stderr
    assert logs(evs, "look") == ["present"]


def test_unusual_project_file_names_modes_and_symlinks_reach_the_step(tmp_path: Path) -> None:
    (tmp_path / "with space.txt").write_text("spaced\n")
    (tmp_path / "run.sh").write_text("#!/bin/sh\necho script-ran\n")
    (tmp_path / "run.sh").chmod(0o755)
    (tmp_path / "link").symlink_to("with space.txt")
    (tmp_path / b"caf\xe9-latin1.txt".decode("utf-8", "surrogateescape")).write_text("latin1 name\n")
    project = Project(tmp_path).pipeline(
        """
        step(
            "look",
            "cat 'with space.txt'; ./run.sh; readlink link; cat caf*-latin1.txt; ls | od -An -c | tr -d ' \\\\n'",
        )
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 0, result.stdout + result.stderr
    out = logs(evs, "look", "stdout")
    assert out[:4] == ["spaced", "script-ran", "with space.txt", "latin1 name"]
    assert "caf351-latin1" in out[4], out[4]  # the byte 0xe9 (octal 351) kept as is


def test_keep_workspaces_leaves_the_step_workspace_for_inspection(tmp_path: Path) -> None:
    project = Project(tmp_path / "p").pipeline('step("w", "echo kept > proof.txt; pwd")')
    result, evs = project.run_json(env={"HM_KEEP_WORKSPACES": "1"})
    assert result.returncode == 0, result.stderr
    (cwd,) = logs(evs, "w")
    try:
        assert (Path(cwd) / "proof.txt").read_text() == "kept\n"
        human = project.run(env={"HM_KEEP_WORKSPACES": "1"})
        (said,) = [line for line in human.stderr.splitlines() if line.startswith("workspaces kept in ")]
        kept = Path(said.removeprefix("workspaces kept in ").split(" (")[0])
        assert (kept / "w" / "proof.txt").read_text() == "kept\n"
        shutil.rmtree(kept.parent, ignore_errors=True)
    finally:
        run_dir = Path(cwd).parent.parent
        if run_dir.name.startswith("hm-run-") and run_dir != Path(cwd) and len(run_dir.parts) > 2:
            shutil.rmtree(run_dir, ignore_errors=True)


def test_hm_run_finds_the_project_from_a_subdirectory_and_with_project_option(tmp_path: Path) -> None:
    (tmp_path / "top.txt").write_text("top of the project\n")
    project = Project(tmp_path).pipeline('step("s", "cat top.txt")')
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    result = run_hm("run", "--format", "json", cwd=sub, env=hm_env())
    assert result.returncode == 0, result.stderr
    assert logs(events(result.stdout), "s") == ["top of the project"]
    elsewhere = run_hm("-C", str(project.root), "run", "--format", "json", cwd=tmp_path.parent, env=hm_env())
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert logs(events(elsewhere.stdout), "s") == ["top of the project"]
