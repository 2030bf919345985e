"""``hm shell STEP [--run RUN_ID] [-- CMD…]``: a terminal session into a failed
step's kept workspace (hm.run.kept), opened by the step's runner (ABI 1.1
``session_open``). The session's exit code becomes hm's."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hm.cli.session import SESSION

if TYPE_CHECKING:
    from hm.run.records import RunInfo


def shell(
    step: str = typer.Argument(..., help="The key of a failed step of the run."),
    cmd: list[str] | None = typer.Argument(
        None, help="The command to run (after `--`); default: an interactive shell.", show_default=False
    ),
    run: str | None = typer.Option(None, "--run", help="A run id (or its first characters); default: the newest."),
) -> int:
    """Open a terminal in a failed step's environment: its kept workspace, its env, its runner."""
    from hm.run.records import RunStore

    info = RunStore(SESSION.project_root).find(run)
    return open_session(info, step, list(cmd or []))


def open_session(info: RunInfo, step: str, argv: list[str]) -> int:
    """Open a session into ``step`` of the recorded run ``info`` and attach the terminal.

    :raises UsageError: the step was not in the run, did not fail, or its workspace is gone.
    :raises PluginError: its runner cannot open sessions, or failed to.
    """
    from hm.cli.terminal import attach, terminal_size
    from hm.run.kept import find_kept
    from hm.runtime import Session, open_plugin, session_error, supports_sessions
    from hm_plugin_sdk.protocol import SessionSpec

    steps, statuses = _plan_and_statuses(info.dir)
    kept = find_kept(info, step, steps, statuses)
    registry = SESSION.registry
    _runner, rec = registry.executor_for(kept.runner)
    # sessions run in hm's own process (the worker protocol has none), whatever the run's isolation
    plugin = open_plugin(Path(rec.path), isolation="in-process")
    if not supports_sessions(plugin, kept.runner):
        raise session_error(plugin, kept.runner)
    rows, cols = terminal_size(sys.stdin.fileno())
    spec = SessionSpec(
        run_id=kept.run_id,
        step=kept.step,
        workspace=kept.workspace,
        env=kept.env,
        image=kept.step.image,
        argv=argv,
        rows=rows,
        cols=cols,
        target=kept.session_target,
        project_root=kept.project_root,
    )
    return attach(Session(plugin, spec).start())


def _plan_and_statuses(record: Path) -> tuple[list[str], dict[str, str]]:
    """The run's step keys in plan order, and how each ended (from its events)."""
    from hm.run.records import _read_info, read_events

    info = _read_info(record)
    steps: list[str] = []
    try:
        stages = json.loads((record / "plan.json").read_text())["stages"]
        steps = [key for stage in stages for chain in stage for key in chain]
    except (OSError, ValueError, KeyError):
        pass
    statuses: dict[str, str] = {}
    if info is not None:
        for e in read_events(info):
            if e.get("kind") == "step_finished":
                statuses[str(e.get("step_key"))] = str(e.get("status"))
    return steps, statuses
