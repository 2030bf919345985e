"""``hm runs``, ``hm logs`` and ``hm artifacts``: reading back what runs recorded
(:mod:`hm.run.records`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from hm.cli import output
from hm.cli.group import HelpGroup
from hm.cli.options import FormatOption
from hm.cli.output import safe
from hm.cli.session import SESSION
from hm.errors import UsageError

app = typer.Typer(
    help="List the recorded runs of this project, or prune them.", cls=HelpGroup, invoke_without_command=True
)


def _store():
    from hm.run.records import RunStore

    return RunStore(SESSION.project_root)


def _duration(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:.1f}s"


@app.callback()
def runs(ctx: typer.Context, format: FormatOption = "human") -> None:
    """List the recorded runs of this project, newest first: id, pipeline, start, result, duration."""
    if ctx.invoked_subcommand is not None:
        return
    found = _store().runs()
    if format == "json":
        output.print_json(
            [
                {
                    "run_id": r.run_id,
                    "pipeline": r.pipeline,
                    "started": r.started,
                    "status": r.shown_status,
                    "exit_code": r.exit_code,
                    "duration_ms": r.duration_ms,
                    "path": str(r.dir),
                }
                for r in found
            ]
        )
        return
    if not found:
        output.stdout.print("No recorded runs in this project yet: `hm run` records every run.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("RUN", "PIPELINE", "STARTED", "RESULT", "DURATION"):
        table.add_column(col)
    for r in found:
        table.add_row(r.run_id, safe(r.pipeline), r.started, r.shown_status, _duration(r.duration_ms))
    output.stdout.print(table)


@app.command("prune")
def prune(
    keep: int | None = typer.Option(None, "--keep", min=0, help="How many of the newest runs to keep."),
    workspaces: bool = typer.Option(
        False, "--workspaces", help="Delete the kept workspaces of failed steps instead (of all but --keep runs)."
    ),
) -> None:
    """Delete all but the newest runs of this project (a running one is never deleted),
    or with --workspaces only the failed steps' workspaces they kept for `hm shell`."""
    if workspaces:
        from hm.run.kept import prune_kept

        pruned = prune_kept(_store(), keep or 0)
        output.stdout.print(f"deleted the kept workspaces of {len(pruned)} run{'' if len(pruned) == 1 else 's'}")
        return
    if keep is None:
        raise UsageError(
            "give --keep N (runs to keep) or --workspaces", where="hm runs prune", hint="`hm runs prune --keep 5`"
        )
    gone = _store().prune(keep)
    output.stdout.print(f"deleted {len(gone)} run record{'' if len(gone) == 1 else 's'}")


def logs(
    run: str | None = typer.Argument(None, help="A run id (or its first characters); default: the newest run."),
    step: str | None = typer.Argument(None, help="One step's log; default: every step's, prefixed with its key."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing while the run is still going."),
    timestamps: bool = typer.Option(False, "--timestamps", "-t", help="Show each line's time and stream."),
) -> None:
    """Print the full logs a run recorded (all of each step's output, not just its tail)."""
    from hm.run.records import read_log

    store = _store()
    info = store.find(run)
    keys = _step_keys(info)
    if step is not None and step not in keys:
        known = ", ".join(keys) or "none"
        raise UsageError(
            f"run {info.run_id} has no step {step!r} (its steps: {known})",
            where="hm logs",
            hint="`hm logs RUN` prints every step's log",
        )
    shown = [step] if step is not None else keys
    offsets = dict.fromkeys(shown, 0)
    while True:
        for key in shown:
            lines, offsets[key] = read_log(info, key, start=offsets[key])
            for entry in lines:
                prefix = f"{entry['ts']} {entry['stream']:<6} " if timestamps else ""
                who = "" if step is not None else f"{key} | "
                output.stdout.print(f"{who}{prefix}{entry['line']}", markup=False, highlight=False)
        if not follow or not store.find(info.run_id).live:
            break
        time.sleep(0.2)
        if step is None:  # steps that started since
            for key in _step_keys(info):
                offsets.setdefault(key, 0)
            shown = list(offsets)


def _step_keys(info) -> list[str]:
    """The run's steps in plan order."""
    import json

    try:
        stages = json.loads((info.dir / "plan.json").read_text())["stages"]
    except (OSError, ValueError, KeyError):
        return sorted(p.stem for p in (info.dir / "logs").glob("*.log"))
    return [key for stage in stages for chain in stage for key in chain]


def artifacts(
    run: str | None = typer.Argument(None, help="A run id (or its first characters); default: the newest run."),
    to: Path | None = typer.Option(None, "--to", help="Copy them into this folder, as STEP/PATH.", file_okay=False),
    format: FormatOption = "human",
) -> None:
    """List (or copy out) the artifacts a run kept: step, path, size and SHA-256."""
    from hm.run.artifacts import copy_out
    from hm.run.records import read_events

    info = _store().find(run)
    kept = [
        {"step": e["step_key"], **a}
        for e in read_events(info)
        if e.get("kind") == "step_finished"
        for a in e.get("artifacts", [])
    ]
    if to is not None:
        copied = copy_out(info.dir, to)
        output.stdout.print(
            f"copied {len(copied)} artifact{'' if len(copied) == 1 else 's'} of run {info.run_id} to {safe(to)}"
        )
        return
    if format == "json":
        output.print_json({"run_id": info.run_id, "artifacts": kept})
        return
    if not kept:
        output.stdout.print(f"run {info.run_id} kept no artifacts")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("STEP", "PATH", "SIZE", "SHA256"):
        table.add_column(col)
    for a in kept:
        table.add_row(safe(a["step"]), safe(a["path"]), str(a["size"]), a["sha256"])
    output.stdout.print(table)
