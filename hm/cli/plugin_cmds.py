"""``hm plugin …``: list and inspect plugins."""

from __future__ import annotations

from typing import Any

import msgspec
import typer
from rich.table import Table

from hm.cli import output
from hm.cli.group import HelpGroup
from hm.cli.options import FormatOption
from hm.cli.session import SESSION
from hm.errors import ExitCode, UsageError
from hm.runtime.registry import PluginRecord, Registry
from hm.runtime.unavailable import UnavailablePlugin, unavailable_bundled
from hm_plugin_sdk.protocol import (
    LifecycleHookCapability,
    StepExecutorCapability,
    SubcommandCapability,
)

app = typer.Typer(help="List, inspect and manage plugins.", no_args_is_help=True, cls=HelpGroup)


def describe_capability(cap: object) -> str:
    if isinstance(cap, StepExecutorCapability):
        notes = [n for n, on in (("default", cap.default), ("images", cap.images)) if on]
        return f"runner {', '.join(cap.runners)}" + (f" ({', '.join(notes)})" if notes else "")
    if isinstance(cap, LifecycleHookCapability):
        events = ", ".join(cap.events) if cap.events else "all events"
        return f"{cap.phase} hook: {events}"
    if isinstance(cap, SubcommandCapability):
        return f"command `hm {' '.join(cap.verb)}`"
    return type(cap).__name__


def _status(rec: PluginRecord) -> str:
    if rec.error is not None:
        return "broken"
    if rec.shadowed_by is not None:
        return "shadowed"
    return "ok"


def record_to_json(rec: PluginRecord) -> dict[str, Any]:
    return {
        "name": rec.name,
        "version": rec.manifest.version if rec.manifest else None,
        "status": _status(rec),
        "path": str(rec.path),
        "origin": rec.origin,
        "abi": f"{rec.abi[0]}.{rec.abi[1]}" if rec.abi else None,
        "manifest": msgspec.to_builtins(rec.manifest) if rec.manifest else None,
        "error": rec.error.to_dict() if rec.error else None,
        "shadowed_by": str(rec.shadowed_by) if rec.shadowed_by else None,
    }


@app.command("list")
def list_plugins(format: FormatOption = "human") -> None:
    """List every plugin hm finds, including broken ones and why."""
    registry = SESSION.registry
    missing = _unavailable(registry)
    if format == "json":
        output.print_json(
            {
                "plugins": [record_to_json(r) for r in registry.records],
                "conflicts": [c.to_dict() for c in registry.conflicts],
                "unavailable": [
                    {"name": u.name, "runners": list(u.runners), "reason": u.reason, "hint": u.hint} for u in missing
                ],
            }
        )
        return
    _print_table(registry, missing)


def _unavailable(registry: Registry) -> list[UnavailablePlugin]:
    """Bundled plugins the build left out, unless another plugin of that name stands in."""
    active = {rec.name for rec in registry.active()}
    return [u for u in unavailable_bundled() if u.name not in active]


def _print_table(registry: Registry, missing: list[UnavailablePlugin]) -> None:
    if not registry.records and not missing:
        output.stdout.print("No plugins found. `hm plugin install PATH` adds one; README.md lists where hm looks.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "VERSION", "ABI", "STATUS", "ORIGIN", "PROVIDES"):
        table.add_column(col)
    for rec in registry.records:
        provides = "; ".join(describe_capability(c) for c in rec.manifest.capabilities) if rec.manifest else ""
        status = _status(rec)
        style = {"broken": "red", "shadowed": "dim"}.get(status, "")
        table.add_row(
            rec.name,
            rec.manifest.version if rec.manifest else "-",
            f"{rec.abi[0]}.{rec.abi[1]}" if rec.abi else "-",
            f"[{style}]{status}[/]" if style else status,
            rec.origin,
            provides,
        )
    for u in missing:
        table.add_row(u.name, "-", "-", "[yellow]unavailable[/]", "bundled", f"runner {', '.join(u.runners)}")
    output.stdout.print(table)
    for u in missing:
        output.stderr.print(f"note: {output._escape(u.what)}; {output._escape(u.hint)}")
    for rec in registry.broken():
        output.print_warning(rec.error)  # type: ignore[arg-type]
    for rec in registry.records:
        if rec.shadowed_by is not None:
            output.stderr.print(f"note: {rec.label} is shadowed by {rec.shadowed_by}")
    for conflict in registry.conflicts:
        output.print_warning(conflict)


@app.command("info")
def info(
    name: str = typer.Argument(..., help="Plugin name (or library file name without suffix)."),
    format: FormatOption = "human",
) -> None:
    """Show a plugin's path, ABI version, manifest and capabilities."""
    registry = SESSION.registry
    rec = registry.find(name)
    if rec is None:
        known = ", ".join(sorted({r.name for r in registry.records})) or "none"
        raise UsageError(
            f"no plugin named '{name}' (found: {known})",
            where="hm plugin info",
            hint="`hm plugin list` shows every plugin",
        )
    if format == "json":
        output.print_json(record_to_json(rec))
    else:
        _print_info(rec)
    if rec.error is not None:
        raise typer.Exit(int(ExitCode.PLUGIN_LOAD))


def _default_text(kind: str, default: object) -> str:
    if default is not None:
        return f"default {default!r}"
    return "default off" if kind == "flag" else "optional"


def _print_info(rec: PluginRecord) -> None:
    out = output.stdout
    m = rec.manifest
    out.print(f"[bold]{rec.name}[/] {m.version if m else ''}".rstrip())
    if m and m.description:
        out.print(m.description)
    out.print(f"path:     {rec.path}")
    out.print(f"origin:   {rec.origin}")
    out.print(f"abi:      {f'{rec.abi[0]}.{rec.abi[1]}' if rec.abi else 'unknown'}")
    out.print(f"status:   {_status(rec)}")
    if m and m.requires_hm:
        out.print(f"requires: hm {m.requires_hm}")
    if rec.shadowed_by:
        out.print(f"shadowed by {rec.shadowed_by}")
    if rec.error:
        out.print(f"[red]error:[/]    {output._escape(rec.error.one_line())}")
    if m:
        out.print("capabilities:")
        for cap in m.capabilities:
            out.print(f"  - {describe_capability(cap)}")
            if isinstance(cap, SubcommandCapability):
                if cap.summary:
                    out.print(f"      {cap.summary}")
                for arg in cap.args:
                    req = "required" if arg.required else _default_text(arg.kind, arg.default)
                    out.print(f"      {arg.name} ({arg.kind}, {arg.type}, {req}) {arg.help}")
            elif isinstance(cap, LifecycleHookCapability):
                out.print(f"      timeout {cap.timeout_ms} ms")
            elif isinstance(cap, StepExecutorCapability) and cap.runner_args:
                out.print("      runner_args:")
                for spec in cap.runner_args:
                    kinds = " or ".join(spec.types)
                    choices = f" ({' | '.join(spec.choices)})" if spec.choices else ""
                    out.print(f"        {spec.name} ({kinds}){choices} {output._escape(spec.help)}".rstrip())


from hm.cli import install_cmds  # noqa: E402  (registers install/remove on `app`)

install_cmds.register(app)


from hm.cli import new_cmd  # noqa: E402  (registers `new` on `app`)

new_cmd.register(app)

from hm.cli import check_cmd  # noqa: E402  (registers `check` on `app`)

check_cmd.register(app)
