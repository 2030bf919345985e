"""The host side of sessions: the bounded output ring replayed on attach, and a
Session on the bundled shell runner through the real bridge."""

from __future__ import annotations

import time
from pathlib import Path

import pty_helpers  # noqa: F401  (puts tests/run on sys.path)
from conftest import ROOT, fixture_path

from hm.runtime.plugin import open_plugin
from hm.runtime.sessions import OutputRing, Session, supports_sessions
from hm_plugin_sdk.abi import Signal, Status
from hm_plugin_sdk.protocol import SessionSpec, StepSpec

SHELL = ROOT / "hm" / "bundled_plugins" / "shell.so"


def test_the_ring_keeps_only_its_last_bytes() -> None:
    ring = OutputRing(capacity=1 << 20)
    for i in range(3):
        ring.append(bytes([65 + i]) * (1 << 20))
    ring.append(b"tail")
    data = ring.snapshot()
    assert len(data) == 1 << 20
    assert data.endswith(b"C" * 100 + b"tail")
    assert ring.dropped == 3 * (1 << 20) + 4 - (1 << 20)


def test_attaching_replays_the_ring_then_streams() -> None:
    ring = OutputRing(capacity=8)
    ring.append(b"0123456789")
    got: list[bytes] = []
    ring.attach(got.append)
    ring.append(b"new")
    ring.attach(None)
    ring.append(b"unseen")
    assert got == [b"23456789", b"new"]


def _spec(workspace: Path, argv: list[str]) -> SessionSpec:
    return SessionSpec(
        run_id="r1", step=StepSpec(key="a", cmd="x"), workspace=str(workspace), argv=argv, rows=9, cols=33
    )


def test_a_session_replays_what_it_printed_before_the_terminal_attached(tmp_path: Path) -> None:
    plugin = open_plugin(SHELL)
    assert supports_sessions(plugin, "shell")
    session = Session(plugin, _spec(tmp_path, ["/bin/sh", "-c", "stty size; echo early; exit 6"])).start()
    assert session.wait(10).exit_code == 6
    got: list[bytes] = []
    session.ring.attach(got.append)
    assert b"9 33" in got[0] and b"early" in got[0]
    # the session is over: its handle is stale for every control entry
    assert session.write(b"x") == Status.ERR_STALE_CALL
    assert session.resize(10, 10) == Status.ERR_STALE_CALL
    assert session.signal(Signal.INTERRUPT) == Status.ERR_STALE_CALL


def test_signal_close_and_bad_resize_of_a_running_session(tmp_path: Path) -> None:
    session = Session(open_plugin(SHELL), _spec(tmp_path, ["/bin/sh", "-c", "echo up; sleep 30"])).start()
    deadline = time.monotonic() + 10
    while b"up" not in session.ring.snapshot() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session.resize(0, 80) == Status.ERR_INVALID_ARGUMENT
    assert session.signal(Signal.TERMINATE) == Status.OK
    assert session.wait(10).exit_code == 128 + 15  # the shell died of SIGTERM


def test_a_missing_workspace_is_a_plugin_error(tmp_path: Path) -> None:
    import pytest

    from hm.errors import PluginCallError

    session = Session(open_plugin(SHELL), _spec(tmp_path / "gone", [])).start()
    with pytest.raises(PluginCallError) as info:
        session.wait(10)
    assert info.value.code == "workspace_missing"
    assert "gone" in info.value.what


def test_a_1_0_plugin_has_no_sessions() -> None:
    assert not supports_sessions(open_plugin(fixture_path("abi-1-0-runner")), "old")


def test_session_output_is_only_for_a_session_open_call() -> None:
    from hm.runtime import host_calls
    from hm.runtime.calls import CallContext
    from hm.runtime.host_services import HostServices
    from hm.runtime.sessions import SessionServices

    step = CallContext("p", "/p.so", "execute_step", HostServices(), "a")
    assert host_calls.session_output(step, b"x")[0] == Status.ERR_UNAVAILABLE
    ring = OutputRing()
    import threading

    session = CallContext("p", "/p.so", "session_open", SessionServices(ring, threading.Event()), "a")
    assert host_calls.session_output(session, b"hello")[0] == Status.OK
    assert ring.snapshot() == b"hello"
    # a session_open call whose services are not a session's (a bug) is refused, not a crash
    assert host_calls.session_output(CallContext("p", "/p.so", "session_open", HostServices()), b"x")[0] == 9


def test_sigterm_during_hm_shell_ends_the_session_and_restores_the_terminal(tmp_path: Path) -> None:
    import os
    import signal
    import termios

    from pty_helpers import Terminal
    from run_helpers import Project

    project = Project(tmp_path / "p").pipeline("step('bad', 'exit 3')")
    assert project.run().returncode == 1
    t = Terminal(["shell", "bad"], cwd=project.root)
    try:
        t.expect("$ ")
        os.kill(t.pid, signal.SIGTERM)
        assert t.wait() == 128 + signal.SIGHUP  # the runner hung the session up
        # hm put its terminal back: echo and canonical mode are on again
        lflag = termios.tcgetattr(t.fd)[3]
        assert lflag & termios.ECHO and lflag & termios.ICANON
    finally:
        t.kill()
