"""Workspaces of failed steps, kept for a later session (``hm shell``, ``hm run --debug``).

At the end of a recorded run, the workspace of every step that failed or timed
out is moved into the run's record (``RECORD/workspaces/KEY/``), next to a
``KEY.json`` that says how to open a session there: the step as it ran, its
environment, runner, plugin and whatever the runner kept (``session_target``,
e.g. a container). Only the newest :func:`keep_failed_runs` runs keep them
(``HM_KEEP_FAILED_WORKSPACES``, default 3; 0 keeps none): older runs' kept
workspaces are deleted after each run, and ``hm runs prune --workspaces`` deletes
them on demand. A pruned run leaves a ``workspaces.pruned`` marker, so ``hm
shell`` can say what happened instead of "not found".
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import msgspec

from hm.errors import UsageError
from hm.run.records import RunInfo, RunStore
from hm_plugin_sdk.protocol import StepSpec

__all__ = ["KEEP_FAILED_RUNS", "KeptStep", "find_kept", "keep_failed", "keep_failed_runs", "prune_kept"]

log = logging.getLogger("hm.run")

#: Runs whose failed steps' workspaces are kept unless HM_KEEP_FAILED_WORKSPACES says otherwise.
KEEP_FAILED_RUNS = 3
_DIR = "workspaces"
_PRUNED = "workspaces.pruned"


class KeptStep(msgspec.Struct, kw_only=True):
    """What a session into a kept step needs (``RECORD/workspaces/KEY.json``)."""

    run_id: str
    step: StepSpec
    env: dict[str, str] = {}
    runner: str
    plugin: str
    status: str
    exit_code: int | None = None
    session_target: str | None = None
    project_root: str = ""
    #: Set when read back: the kept workspace's absolute path.
    workspace: str = ""


def keep_failed_runs() -> int:
    try:
        return max(0, int(os.environ.get("HM_KEEP_FAILED_WORKSPACES", KEEP_FAILED_RUNS)))
    except ValueError:
        return KEEP_FAILED_RUNS


def keep_failed(record_dir: Path, workspaces_root: Path, failed: list[KeptStep]) -> list[str]:
    """Move the workspaces of ``failed`` from ``workspaces_root`` into the record;
    returns the keys kept. A workspace that cannot be moved is logged and skipped:
    keeping it is a convenience, never a reason to fail the run."""
    if not failed or keep_failed_runs() == 0:
        return []
    dest = record_dir / _DIR
    kept = []
    for entry in failed:
        key = entry.step.key
        src = workspaces_root / key
        if not src.is_dir():
            continue
        try:
            dest.mkdir(exist_ok=True)
            shutil.move(str(src), str(dest / key))  # a rename on one file system
            (dest / f"{key}.json").write_bytes(msgspec.json.encode(entry))
            kept.append(key)
        except OSError as exc:
            log.warning("the workspace of failed step %r was not kept: %s", key, exc)
    return kept


def prune_kept(store: RunStore, keep: int) -> list[RunInfo]:
    """Delete the kept workspaces of all but the newest ``keep`` runs that have
    them (never of a live run); returns the runs pruned."""
    pruned = []
    with_kept = [r for r in store.runs() if (r.dir / _DIR).is_dir()]
    for info in with_kept[keep:]:
        if info.live:
            continue
        _remove(info.dir / _DIR)
        (info.dir / _PRUNED).touch()
        pruned.append(info)
    return pruned


def _remove(path: Path) -> None:
    def writable(func, failed: str, _exc: object) -> None:  # a step may leave read-only folders
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            func(failed)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=writable)
    else:
        shutil.rmtree(path, onerror=lambda f, p, e: writable(f, p, e[1]))


def find_kept(info: RunInfo, key: str, steps: list[str], statuses: dict[str, str]) -> KeptStep:
    """The kept step ``key`` of run ``info`` (``steps``: its plan, ``statuses``: how each ended).

    :raises UsageError: the step was not in the run, did not fail, or its workspace is gone.
    """
    where = "hm shell"
    if key not in steps:
        shown = ", ".join(steps[:20]) or "none"
        raise UsageError(
            f"run {info.run_id} has no step {key!r} (its steps: {shown})",
            where=where,
            hint="give a step key of that run; `hm runs` lists the runs",
        )
    meta = info.dir / _DIR / f"{key}.json"
    if (info.dir / _PRUNED).exists() and not meta.exists():
        raise UsageError(
            f"the workspace of step {key!r} of run {info.run_id} was pruned",
            where=where,
            hint=f"hm keeps failed steps' workspaces for the last {keep_failed_runs()} runs "
            "(HM_KEEP_FAILED_WORKSPACES); run the pipeline again and open the session then",
        )
    if not meta.exists():
        status = statuses.get(key, "not run")
        if status not in ("failed", "timed_out"):
            raise UsageError(
                f"step {key!r} of run {info.run_id} {status}: hm keeps only the workspaces of failed steps",
                where=where,
                hint="sessions open into a failed step's workspace; `hm run --debug` opens one on the first failure",
            )
        raise UsageError(
            f"the workspace of step {key!r} of run {info.run_id} was not kept",
            where=where,
            hint="a run keeps failed steps' workspaces only when it is recorded and HM_KEEP_FAILED_WORKSPACES is "
            "not 0; run the pipeline again",
        )
    try:
        kept = msgspec.json.decode(meta.read_bytes(), type=KeptStep)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise UsageError(f"the record of step {key!r} is unreadable: {exc}", where=where) from None
    workspace = info.dir / _DIR / key
    if not workspace.is_dir():
        raise UsageError(
            f"the workspace of step {key!r} of run {info.run_id} is gone ({workspace})",
            where=where,
            hint="run the pipeline again and open the session then",
        )
    kept.workspace = str(workspace)
    return kept
