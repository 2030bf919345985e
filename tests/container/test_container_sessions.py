"""``hm shell`` into a failed container step (ABI 1.1 sessions through the Engine
API's exec with a TTY), on a real PTY and a real Podman (see container_engine.py).
After every test the engine has no container left: the session's is removed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from container_engine import IMAGE, Engine, engine_fixture, no_container_left_fixture  # noqa: F401  (pytest fixtures)
from run_helpers import Project

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sessions"))
from pty_helpers import Terminal


@pytest.fixture
def term(tmp_path: Path, no_container_left: Engine) -> Iterator[Terminal]:
    project = Project(tmp_path / "p").pipeline(
        f"step('bad', 'echo data > made.txt; exit 3', image={IMAGE!r}, env={{'GREETING': 'hello'}})"
    )
    result = project.run(env=no_container_left.env())
    assert result.returncode == 1, result.stderr
    t = Terminal(["shell", "bad"], cwd=project.root, env=no_container_left.env())
    t.expect("# ")  # busybox ash's prompt
    yield t
    t.kill()
    time.sleep(0.5)  # the runner removes the session's container as the session ends


def test_a_container_session_has_the_steps_workspace_env_and_image(term: Terminal) -> None:
    term.type("cat made.txt; echo got-$GREETING-$HM_STEP_KEY; pwd\r")
    term.expect("data")
    term.expect("got-hello-bad")
    term.expect("/workspace")
    term.type("exit 4\r")
    assert term.wait() == 4


def test_resize_and_ctrl_c_in_a_container_session(term: Terminal) -> None:
    term.type("stty size\r")
    term.expect("30 100")
    term.resize(42, 120)
    time.sleep(0.5)  # the resize is a request to the engine
    term.type("stty size\r")
    term.expect("42 120")
    term.type("echo sleeping-$GREETING; sleep 30; echo not-interrupted\r")
    term.expect("sleeping-hello")
    time.sleep(0.3)
    term.type(b"\x03")
    term.type("echo still-$GREETING\r")
    term.expect("still-hello", timeout=10)
    assert "not-interrupted" not in term.seen.decode(errors="replace")
    term.type("exit 0\r")
    assert term.wait() == 0
