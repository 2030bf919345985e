"""``hm plugin …``: list and inspect plugins."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import msgspec
import typer

from hm.cli import output
from hm.cli.group import HelpGroup
from hm.cli.options import FormatOption
from hm.cli.output import safe
from hm.cli.session import SESSION
from hm.errors import ExitCode, UsageError

if TYPE_CHECKING:  # the runtime loads when a command runs, not for --help
    from hm.runtime import PluginRecord, Registry, UnavailablePlugin
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
        shadowed = " (shadowed by a built-in command: never offered)" if is_builtin(cap.verb[0]) else ""
        return f"command `hm {' '.join(cap.verb)}`{shadowed}"
    return type(cap).__name__


def is_builtin(word: str) -> bool:
    """Whether ``hm WORD`` is a built-in command, which always wins over a plugin's verb."""
    from hm.cli.app import app

    return word in {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}


def _status(rec: PluginRecord) -> str:
    if rec.error is not None:
        return "broken"
    if rec.shadowed_by is not None:
        return "shadowed"
    return "ok"


def _command(rec: PluginRecord) -> list[str] | None:
    """A stdio plugin's command as its descriptor gives it (None: native, or unreadable)."""
    if rec.kind != "stdio":
        return None
    from hm.errors import PluginLoadError
    from hm.runtime import read_descriptor

    try:
        return list(read_descriptor(rec.path).command)
    except PluginLoadError:
        return None


def record_to_json(rec: PluginRecord, registry: Registry) -> dict[str, Any]:
    return {
        "name": rec.name,
        "version": rec.manifest.version if rec.manifest else None,
        "status": _status(rec),
        "kind": rec.kind,
        "path": str(rec.path),
        "command": _command(rec),
        "origin": rec.origin,
        "abi": f"{rec.abi[0]}.{rec.abi[1]}" if rec.abi else None,
        "manifest": msgspec.to_builtins(rec.manifest) if rec.manifest else None,
        "error": rec.error.to_dict() if rec.error else None,
        "shadowed_by": str(rec.shadowed_by) if rec.shadowed_by else None,
        "isolation": registry.isolation(rec),
        "isolation_from": "stdio" if rec.kind == "stdio" else registry.policy.source(rec.name),
    }


@app.command("list")
def list_plugins(format: FormatOption = "human") -> None:
    """List every plugin hm finds, including broken ones and why."""
    registry = SESSION.registry
    missing = _unavailable(registry)
    if format == "json":
        output.print_json(
            {
                "plugins": [record_to_json(r, registry) for r in registry.records],
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
    from hm.runtime import unavailable_bundled

    active = {rec.name for rec in registry.active()}
    return [u for u in unavailable_bundled() if u.name not in active]


def _print_table(registry: Registry, missing: list[UnavailablePlugin]) -> None:
    if not registry.records and not missing:
        output.stdout.print("No plugins found. `hm plugin install PATH` adds one; README.md lists where hm looks.")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("NAME", "VERSION", "KIND", "ABI", "STATUS", "ORIGIN", "ISOLATION", "PROVIDES"):
        table.add_column(col)
    for rec in registry.records:
        provides = "; ".join(describe_capability(c) for c in rec.manifest.capabilities) if rec.manifest else ""
        status = _status(rec)
        style = {"broken": "red", "shadowed": "dim"}.get(status, "")
        table.add_row(
            safe(rec.name),
            safe(rec.manifest.version) if rec.manifest else "-",
            rec.kind,
            f"{rec.abi[0]}.{rec.abi[1]}" if rec.abi else "-",
            f"[{style}]{status}[/]" if style else status,
            rec.origin,
            registry.isolation(rec) if rec.ok else "-",
            safe(provides),
        )
    for u in missing:
        table.add_row(
            u.name, "-", "native", "-", "[yellow]unavailable[/]", "bundled", "-", f"runner {', '.join(u.runners)}"
        )
    output.stdout.print(table)
    for u in missing:
        output.stderr.print(f"note: {safe(u.what)}; {safe(u.hint)}")
    for rec in registry.broken():
        output.print_warning(rec.error)  # type: ignore[arg-type]
    for rec in registry.records:
        if rec.shadowed_by is not None:
            output.stderr.print(f"note: {safe(rec.label)} is shadowed by {safe(rec.shadowed_by)}")
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
        output.print_json(record_to_json(rec, registry))
    else:
        _print_info(rec, registry)
    if rec.error is not None:
        raise typer.Exit(int(ExitCode.PLUGIN_LOAD))


def _default_text(kind: str, default: object) -> str:
    if default is not None:
        return f"default {default!r}"
    return "default off" if kind == "flag" else "optional"


def _print_info(rec: PluginRecord, registry: Registry) -> None:
    out = output.stdout
    m = rec.manifest
    out.print(f"[bold]{safe(rec.name)}[/] {safe(m.version) if m else ''}".rstrip())
    if m and m.description:
        out.print(safe(m.description))
    out.print(f"path:      {safe(rec.path)}")
    out.print(f"origin:    {rec.origin}")
    out.print(f"kind:      {rec.kind}")
    command = _command(rec)
    if command is not None:
        out.print(f"command:   {safe(shlex.join(command))} (in hm's working directory)")
    version = f"{rec.abi[0]}.{rec.abi[1]}" if rec.abi else "unknown"
    out.print(f"protocol:  {version} (stdio)" if rec.kind == "stdio" else f"abi:       {version}")
    out.print(f"status:    {_status(rec)}")
    if rec.kind == "stdio":
        out.print("isolation: stdio (a process of its own, whatever the isolation settings)")
    else:
        out.print(f"isolation: {registry.isolation(rec)} (from {registry.policy.source(rec.name)})")
    if m and m.requires_hm:
        out.print(f"requires:  hm {safe(m.requires_hm)}")
    if rec.shadowed_by:
        out.print(f"shadowed by {safe(rec.shadowed_by)}")
    if rec.error:
        out.print(f"[red]error:[/]     {safe(rec.error.one_line())}")
    if m:
        out.print("capabilities:")
        for cap in m.capabilities:
            out.print(f"  - {safe(describe_capability(cap))}")
            if isinstance(cap, SubcommandCapability):
                if cap.summary:
                    out.print(f"      {safe(cap.summary)}")
                for arg in cap.args:
                    req = "required" if arg.required else _default_text(arg.kind, arg.default)
                    out.print(f"      {safe(arg.name)} ({arg.kind}, {arg.type}, {safe(req)}) {safe(arg.help)}")
            elif isinstance(cap, LifecycleHookCapability):
                out.print(f"      timeout {cap.timeout_ms} ms")
            elif isinstance(cap, StepExecutorCapability) and cap.runner_args:
                out.print("      runner_args:")
                for spec in cap.runner_args:
                    kinds = " or ".join(spec.types)
                    choices = f" ({' | '.join(spec.choices)})" if spec.choices else ""
                    out.print(f"        {safe(spec.name)} ({kinds}){safe(choices)} {safe(spec.help)}".rstrip())


from hm.cli import install_cmds  # noqa: E402  (registers install/remove on `app`)

install_cmds.register(app)


from hm.cli import new_cmd  # noqa: E402  (registers `new` on `app`)

new_cmd.register(app)

from hm.cli import check_cmd  # noqa: E402  (registers `check` on `app`)

check_cmd.register(app)
