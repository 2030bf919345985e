"""The step cache on the container runner, through the real ``hm run`` against a real
Podman (container_engine.py): a hit runs no container, and the key follows the
image's id, not its name.

After every test the engine has no container left (``no_container_left``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from container_engine import (  # noqa: F401  (pytest fixtures)
    IMAGE,
    Engine,
    _busybox_rootfs_tar,
    engine_fixture,
    no_container_left_fixture,
)
from run_helpers import Project, by_key, finished, logs, no_traceback


def cache_of(evs: list[dict[str, Any]]) -> dict[str, str | None]:
    return {k: e["cache"] for k, e in finished(evs).items()}


def test_a_hit_runs_no_container_and_gives_back_the_workspace_and_log(
    tmp_path: Path, no_container_left: Engine
) -> None:
    (tmp_path / "src.txt").write_text("from the project\n")
    project = Project(tmp_path).pipeline(
        f"""
        build = step(
            "build",
            "date +%s%N > stamp; cat stamp src.txt; mkdir -p out; echo built > out/f; echo warn >&2",
            image={IMAGE!r},
            cache="read_write",
        )
        step("check", "cat stamp out/f", builds_in=build, runner="shell")
        """
    )
    first, evs1 = project.run_json(env=no_container_left.env())
    assert first.returncode == 0, first.stderr
    assert cache_of(evs1) == {"build": "stored", "check": None}
    stamp = logs(evs1, "build", "stdout")[0]

    second, evs2 = project.run_json(env=no_container_left.env())
    assert second.returncode == 0, second.stderr
    assert cache_of(evs2) == {"build": "hit", "check": None}
    # The command did not run again: the stamp is the first run's, in the log and in the workspace.
    assert logs(evs2, "build", "stdout") == [stamp, "from the project"]
    assert logs(evs2, "build", "stderr") == ["warn"]
    assert all(e["replayed"] for e in by_key(evs2, "step_log")["build"])
    assert logs(evs2, "check") == [stamp, "built"]
    no_traceback(second)


def test_a_new_image_under_the_same_name_is_a_miss(tmp_path: Path, no_container_left: Engine) -> None:
    image = "localhost/hm-cache-test:1"
    no_container_left.podman("tag", IMAGE, image)
    try:
        project = Project(tmp_path).pipeline(
            f'step("s", "echo [$FLAVOUR]", image={image!r}, cache="read_write")',
        )
        env = no_container_left.env()
        result, evs = project.run_json(env=env)
        assert result.returncode == 0, result.stderr
        assert (cache_of(evs), logs(evs, "s")) == ({"s": "stored"}, ["[]"])
        assert cache_of(project.run_json(env=env)[1]) == {"s": "hit"}
        # Another image is given the same name: the step runs again, in it.
        tar = _busybox_rootfs_tar(tmp_path.parent)
        no_container_left.podman("import", "--change", "ENV PATH=/bin", "--change", "ENV FLAVOUR=new", str(tar), image)
        result, evs = project.run_json(env=env)
        assert result.returncode == 0, result.stderr
        assert (cache_of(evs), logs(evs, "s")) == ({"s": "stored"}, ["[new]"])
        assert not any(e["replayed"] for e in by_key(evs, "step_log")["s"])
        assert cache_of(project.run_json(env=env)[1]) == {"s": "hit"}
    finally:
        no_container_left.podman("rmi", "--force", image, check=False)


def test_a_cached_step_whose_engine_is_down_fails_as_it_would_uncached(tmp_path: Path) -> None:
    missing = tmp_path / "no-engine.sock"
    project = Project(tmp_path).pipeline(f'step("s", "true", image={IMAGE!r}, cache="read_write")')
    result, evs = project.run_json(env={"DOCKER_HOST": f"unix://{missing}"})
    assert result.returncode == 5, result.stderr
    step = finished(evs)["s"]
    assert (step["status"], step["cache"]) == ("error", "miss")
    assert f"cannot reach the container engine at unix://{missing} (DOCKER_HOST)" in step["message"]
    no_traceback(result)
