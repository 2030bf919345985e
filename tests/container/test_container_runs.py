"""Pipelines whose steps run in containers, through the real ``hm`` command line, the
bundled container runner and a real Podman (see container_engine.py).

After every test the engine has no container left (``no_container_left``).
"""

from __future__ import annotations

import signal
import time
from datetime import datetime
from pathlib import Path

from container_engine import IMAGE, Engine, engine_fixture, no_container_left_fixture  # noqa: F401  (pytest fixtures)
from run_helpers import Project, events, finished, logs, no_traceback, popen_hm, stop_process


def _ts(event: dict) -> float:  # type: ignore[type-arg]
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00")).timestamp()


def test_a_step_with_an_image_runs_in_it_with_env_workspace_and_exit_code(
    tmp_path: Path, no_container_left: Engine
) -> None:
    (tmp_path / "data.txt").write_text("from the project\n")
    project = Project(tmp_path).pipeline(
        f"""
        step(
            "inside",
            "cat data.txt; pwd; echo $HM_STEP_KEY $HM_WORKSPACE $FROM_PIPELINE $FROM_STEP; "
            "echo to-stderr >&2; test -x /bin/busybox && echo busybox-here; exit 3",
            image={IMAGE!r},
            env={{"FROM_STEP": "step-value"}},
        )
        """,
        env={"FROM_PIPELINE": "pipeline-value"},
    )
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 1, result.stderr
    step = finished(evs)["inside"]
    assert (step["status"], step["exit_code"], step["message"]) == ("failed", 3, "exited with code 3")
    assert logs(evs, "inside", "stdout") == [
        "from the project",
        "/workspace",
        "inside /workspace pipeline-value step-value",
        "busybox-here",
    ]
    assert logs(evs, "inside", "stderr") == ["to-stderr"]
    started = next(e for e in evs if e["kind"] == "step_started")
    assert (started["runner"], started["plugin"]) == ("container", "container")


def test_the_host_environment_does_not_leak_into_the_container(tmp_path: Path, no_container_left: Engine) -> None:
    project = Project(tmp_path).pipeline(f'step("env", "echo [$HOST_ONLY]; echo $PATH", image={IMAGE!r})')
    result, evs = project.run_json(env=no_container_left.env(HOST_ONLY="secret"))
    assert result.returncode == 0, result.stderr
    assert logs(evs, "env") == ["[]", "/bin"]  # PATH is the image's


def test_output_is_streamed_while_the_container_runs(tmp_path: Path, no_container_left: Engine) -> None:
    project = Project(tmp_path).pipeline(f'step("slow", "echo first; sleep 2; echo second", image={IMAGE!r})')
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 0, result.stderr
    lines = {e["line"]: e for e in evs if e["kind"] == "step_log"}
    assert list(lines) == ["first", "second"]
    # Buffered until the end, both lines would arrive together.
    assert _ts(lines["second"]) - _ts(lines["first"]) >= 1.5


def test_a_lot_of_output_arrives_whole_and_in_order(tmp_path: Path, no_container_left: Engine) -> None:
    # ~1.3 MB split into many frames of the multiplexed stream, across many reads.
    project = Project(tmp_path).pipeline(
        f'step("lots", "seq 1 200000; echo done >&2", image={IMAGE!r})',
    )
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 0, result.stderr
    assert logs(evs, "lots", "stdout") == [str(n) for n in range(1, 200001)]
    assert logs(evs, "lots", "stderr") == ["done"]


def test_a_chain_and_a_fork_across_container_steps(tmp_path: Path, no_container_left: Engine) -> None:
    (tmp_path / "seed.txt").write_text("seed\n")
    project = Project(tmp_path).pipeline(
        f"""
        base = step("base", "cat seed.txt > shared.txt; echo base >> shared.txt", image={IMAGE!r})
        mid = step("mid", "echo mid >> shared.txt", image={IMAGE!r}, builds_in=base)
        step("left", "cat shared.txt; rm shared.txt; echo left > mine.txt", image={IMAGE!r}, builds_in=mid)
        step("right", "sleep 0.5; cat shared.txt; test ! -e mine.txt && echo alone", image={IMAGE!r}, builds_in=mid)
        step("host", "cat shared.txt", builds_in=mid)
        """
    )
    result, evs = project.run_json("-j", "3", env=no_container_left.env())
    assert result.returncode == 0, result.stderr + result.stdout
    assert logs(evs, "left") == ["seed", "base", "mid"]
    assert logs(evs, "right") == ["seed", "base", "mid", "alone"]
    # a shell step builds in a container step: the workspace is a plain directory
    assert logs(evs, "host") == ["seed", "base", "mid"]
    runners = {e["step_key"]: e["runner"] for e in evs if e["kind"] == "step_started"}
    assert runners == {**dict.fromkeys(("base", "mid", "left", "right"), "container"), "host": "shell"}


def test_the_default_image_sends_steps_without_a_runner_to_containers(
    tmp_path: Path, no_container_left: Engine
) -> None:
    (tmp_path / ".hm" / "pipeline.py").parent.mkdir(parents=True)
    (tmp_path / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n\n\n"
        f"@pipeline('t', default_image={IMAGE!r})\n"
        "def p():\n"
        "    step('a', 'test -x /bin/busybox && echo in-image')\n"
    )
    project = Project(tmp_path)
    dry = project.run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"a  runner: container  image: {IMAGE}  $ test -x /bin/busybox" in dry.stdout
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 0, result.stderr
    assert logs(evs, "a") == ["in-image"]


def test_a_timeout_kills_the_container(tmp_path: Path, no_container_left: Engine) -> None:
    project = Project(tmp_path).pipeline(
        f'step("sleepy", "echo started; sleep 300", image={IMAGE!r}, timeout_seconds=2)',
    )
    started = time.monotonic()
    result, evs = project.run_json(env=no_container_left.env())
    took = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    step = finished(evs)["sleepy"]
    assert (step["status"], step["exit_code"]) == ("timed_out", 124)
    assert logs(evs, "sleepy") == ["started"]
    assert took < 60  # the container was killed, not waited for (sleep 300)
    assert no_container_left.containers() == []


def test_ctrl_c_kills_and_removes_the_running_container(tmp_path: Path, no_container_left: Engine) -> None:
    Project(tmp_path).pipeline(f'step("long", "echo running; sleep 300", image={IMAGE!r})')
    proc = popen_hm(tmp_path, "--format", "json", env=no_container_left.env())
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        seen: list[str] = []
        for raw in proc.stdout:  # events arrive as they happen
            seen.append(raw.decode())
            if '"line":"running"' in raw.decode().replace(" ", ""):
                break
            assert time.monotonic() < deadline, "the step never started"
        assert no_container_left.containers() != []  # it is really running in a container
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        stop_process(proc)
    assert proc.returncode == 130, err.decode()
    evs = events("".join(seen) + out.decode())
    assert finished(evs)["long"]["status"] == "cancelled"
    assert no_container_left.containers() == []


def test_runner_args_reach_the_container(tmp_path: Path, no_container_left: Engine) -> None:
    memory_limit = "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"
    project = Project(tmp_path).pipeline(
        f"""
        step("user", "id -u; id -g", image={IMAGE!r}, runner_args={{"user": "65534:65534"}})
        step("uid", "id -u", image={IMAGE!r}, runner_args={{"user": 12345}})
        step("isolated", "ls /sys/class/net", image={IMAGE!r}, runner_args={{"network": "none"}})
        step("limited", {memory_limit!r}, image={IMAGE!r}, runner_args={{"memory": "64m", "cpus": 0.5}})
        """
    )
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 0, result.stderr + result.stdout
    assert logs(evs, "user") == ["65534", "65534"]
    assert logs(evs, "uid") == ["12345"]
    assert logs(evs, "isolated") == ["lo"]
    assert logs(evs, "limited") == [str(64 * 1024 * 1024)]


def test_running_out_of_memory_says_so(tmp_path: Path, no_container_left: Engine) -> None:
    project = Project(tmp_path).pipeline(
        f"""
        step("hog", "head -c 300000000 /dev/zero | tail > /dev/null", image={IMAGE!r},
             runner_args={{"memory": "16m"}})
        """
    )
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 1, result.stderr
    step = finished(evs)["hog"]
    assert step["status"] == "failed" and step["exit_code"] == 137
    assert "out-of-memory killer" in step["message"] and "16m" in step["message"]


def test_many_steps_at_once_each_in_its_own_container(tmp_path: Path, no_container_left: Engine) -> None:
    body = "\n".join(f'step("s{i}", "echo $HM_STEP_KEY; sleep 1", image={IMAGE!r})' for i in range(6))
    project = Project(tmp_path).pipeline(body)
    result, evs = project.run_json("-j", "6", env=no_container_left.env())
    assert result.returncode == 0, result.stderr
    assert {k: logs(evs, k) for k in finished(evs)} == {f"s{i}": [f"s{i}"] for i in range(6)}


def test_human_output_names_the_runner(tmp_path: Path, no_container_left: Engine) -> None:
    project = Project(tmp_path).pipeline(f'step("hello", "echo hi", image={IMAGE!r})')
    result = project.run(env=no_container_left.env())
    assert result.returncode == 0, result.stderr
    no_traceback(result)
    assert "start  hello (container)" in result.stderr
    assert "hello | hi" in result.stderr


def test_the_engines_own_error_is_shown_and_the_container_removed(tmp_path: Path, no_container_left: Engine) -> None:
    # the engine refuses to run it (no such user): created, then removed all the same
    project = Project(tmp_path).pipeline(
        f'step("nouser", "true", image={IMAGE!r}, runner_args={{"user": "no-such-user"}})'
    )
    result, evs = project.run_json(env=no_container_left.env())
    assert result.returncode == 5, result.stderr
    step = finished(evs)["nouser"]
    assert step["status"] == "error"
    # the engine's message, verbatim, with the socket; the summary names the step
    assert "unable to find user no-such-user" in step["message"]
    assert f"the container engine ({no_container_left.docker_host}) could not" in step["message"]
    assert "'nouser': plugin container" in next(e for e in evs if e["kind"] == "build_finished")["message"]
    no_traceback(result)
