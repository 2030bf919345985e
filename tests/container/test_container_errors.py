"""Bad input for container steps gets one clear line: a missing image, an engine that
is not running, an image on a runner that cannot run one, runner_args of the wrong
type. No traceback, exit codes that tell the truth, nothing left behind.

(A socket we may not use, EACCES, is reported as engine_permission_denied; these
tests run as root, which no socket refuses, so that message is not exercised here.)"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from container_engine import (  # noqa: F401  (pytest fixtures)
    IMAGE,
    Engine,
    engine_fixture,
    no_container_left_fixture,
    runner_built_fixture,
)
from run_helpers import Project, finished, no_traceback

pytestmark = pytest.mark.usefixtures("runner_built")


def _error_line(evs: list[dict], key: str) -> str:  # type: ignore[type-arg]
    step = finished(evs)[key]
    assert step["status"] == "error", step
    return str(step["message"])


def test_a_missing_image_names_it_and_how_to_get_it(tmp_path: Path, no_container_left: Engine) -> None:
    project = Project(tmp_path).pipeline('step("build", "true", image="localhost/hm-no-such-image:7")')
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 5, result.stderr
    no_traceback(result)
    line = _error_line(evs, "build")
    assert "image 'localhost/hm-no-such-image:7' is not in the container engine's image store" in line
    assert "podman pull localhost/hm-no-such-image:7" in line and "[image_not_found]" in line


def test_an_engine_that_is_not_running_names_the_socket_and_how_to_start_it(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(f'step("build", "true", image={IMAGE!r})')
    missing = tmp_path / "no-engine.sock"
    result, evs = project.run_json(env={"DOCKER_HOST": f"unix://{missing}"})
    assert result.returncode == 5, result.stderr
    no_traceback(result)
    line = _error_line(evs, "build")
    assert f"cannot reach the container engine at unix://{missing} (DOCKER_HOST)" in line
    assert "No such file or directory" in line
    assert "podman system service" in line and "[engine_unreachable]" in line


def test_a_stale_socket_with_no_engine_behind_it(tmp_path: Path) -> None:
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))  # the file stays, nobody listens: what a crashed engine leaves
    project = Project(tmp_path).pipeline(f'step("build", "true", image={IMAGE!r})')
    result, evs = project.run_json(env={"DOCKER_HOST": f"unix://{stale}"})
    assert result.returncode == 5, result.stderr
    assert f"cannot reach the container engine at unix://{stale} (DOCKER_HOST): Connection refused" in _error_line(
        evs, "build"
    )


def test_docker_host_over_tcp_is_refused_with_what_to_set(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(f'step("build", "true", image={IMAGE!r})')
    result, evs = project.run_json(env={"DOCKER_HOST": "tcp://127.0.0.1:2375"})
    assert result.returncode == 5, result.stderr
    line = _error_line(evs, "build")
    assert "DOCKER_HOST=tcp://127.0.0.1:2375 is not supported" in line
    assert "DOCKER_HOST=unix:///path/to/the/engine.sock" in line


def test_an_image_on_the_shell_runner_is_refused_before_anything_runs(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("first", "touch ran")
        step("build", "make", image="gcc:14", runner="shell")
        """
    )
    result, evs = project.run_json()
    assert result.returncode == 3, result.stderr
    no_traceback(result)
    assert evs == []  # not even the first step ran
    assert not (tmp_path / "ran").exists()
    assert "step 'build' (steps[1]): runner 'shell' cannot run images, but the step has image 'gcc:14'" in result.stderr
    assert "leave `runner` unset" in result.stderr


def test_runner_args_of_the_wrong_type_are_refused_before_anything_runs(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        f"""
        step("ok", "true", image={IMAGE!r})
        step("bad", "true", image={IMAGE!r},
             runner_args={{"memory": [512], "cpus": "two", "network": "wifi", "user": "a b", "netwrok": "none"}})
        """
    )
    result = project.run("--dry-run")
    assert result.returncode == 3, result.stderr
    no_traceback(result)
    err = result.stderr
    assert "step 'bad' (steps[1]): runner_args.memory must be a string or an int, got list [512]" in err
    assert "runner_args.cpus must be a number, got string 'two'" in err
    assert "runner_args.network must be one of none, host, bridge, got 'wifi'" in err
    assert "runner_args.user 'a b' is not valid" in err
    assert "runner_args 'netwrok' is not an argument of runner 'container'" in err and "did you mean 'network'" in err
    assert "5 problems" in err


def test_a_memory_size_the_runner_cannot_read_is_refused_up_front(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(f'step("bad", "true", image={IMAGE!r}, runner_args={{"memory": "lots"}})')
    result = project.run()
    assert result.returncode == 3, result.stderr
    assert "runner_args.memory 'lots' is not valid (memory limit: bytes as an int" in result.stderr


def test_dry_run_shows_where_each_step_runs(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline(
        f"""
        a = step("a", "make", image={IMAGE!r})
        step("b", "make test", builds_in=a)
        """
    )
    result = project.run("--dry-run")
    assert result.returncode == 0, result.stderr
    assert f"a  runner: container  image: {IMAGE}  $ make" in result.stdout
    assert "b  runner: shell  builds in: a  $ make test" in result.stdout
