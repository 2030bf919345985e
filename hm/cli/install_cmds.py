"""``hm plugin install`` and ``hm plugin remove``: the command-line side of :mod:`hm.runtime.install`.

Results go to stdout (one JSON document with ``--format json``); notes about
shadowing and conflicts go to stderr, as ``note:`` lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import typer

from hm.cli import output
from hm.cli.options import FormatOption
from hm.cli.session import SESSION

if TYPE_CHECKING:  # the install machinery (urllib, ssl) loads on first use, not for --help
    from hm.runtime import InstallResult, PluginFile, PluginRecord, RemoveResult

_ORIGINS = {
    "project": "this project's plugin folder",
    "env": "HM_PLUGIN_PATH",
    "user": "the user plugin folder",
    "package": "a Python package",
    "bundled": "hm's bundled plugins",
}


def _start() -> Path:
    return SESSION.project_dir or Path.cwd()


def install(
    source: str = typer.Argument(
        ...,
        help="A plugin library (a file path, or an https:// URL: needs --pin), or a stdio plugin: its "
        "directory, its NAME.plugin.toml or a .tar.gz/.tgz/.zip of the directory.",
    ),
    pin: str | None = typer.Option(
        None, "--pin", metavar="SHA256", help="The SHA-256 the file must have (required for URLs)."
    ),
    project: bool = typer.Option(False, "--project", help="Install into this project's .hm/plugins/."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace what is there even if it is not an older version of this plugin "
        "(another plugin, a broken file, a newer version).",
    ),
    format: FormatOption = "human",
) -> None:
    """Validate a plugin in a child process, then install it atomically as <name>.<ext>.

    A newer version or a new build of the same plugin replaces the installed one, and hm
    says old → new version. Replacing anything else (another plugin of that file name, a
    file that cannot be loaded, a newer version) needs --force.
    """
    from hm.runtime import install_plugin

    result = install_plugin(source, pin=pin, scope="project" if project else "user", start=_start(), force=force)
    if format == "json":
        output.print_json(_install_json(result))
        return
    _print_install(result)


def remove(
    name: str = typer.Argument(..., help="The plugin's name (as `hm plugin list` shows it)."),
    project: bool = typer.Option(False, "--project", help="Remove it from this project's .hm/plugins/."),
    format: FormatOption = "human",
) -> None:
    """Remove a plugin installed with `hm plugin install` and say from where."""
    from hm.runtime import folder_label, remove_plugin

    result = remove_plugin(name, scope="project" if project else "user", start=_start())
    if format == "json":
        output.print_json(_remove_json(result))
        return
    r = result.removed
    version = f" {r.version}" if r.version else ""
    output.stdout.print(
        f"removed {output._escape(r.name)}{version} from {folder_label(result.scope)}: {output._escape(str(r.path))}"
    )
    if result.now_uses is not None:
        output.stderr.print(f"note: hm now uses {output._escape(_describe_record(result.now_uses))}")


def register(app: typer.Typer) -> None:
    """Add ``install`` and ``remove`` to the ``hm plugin`` app."""
    app.command("install")(install)
    app.command("remove")(remove)


# -- rendering --------------------------------------------------------------------------


def _describe_record(rec: PluginRecord) -> str:
    version = f" {rec.manifest.version}" if rec.manifest else ""
    return f"{rec.name}{version} from {_ORIGINS.get(rec.origin, rec.origin)} ({rec.path})"


def _provides(manifest: Any) -> list[str]:
    from hm.cli.plugin_cmds import describe_capability  # plugin_cmds imports this module

    return [describe_capability(c) for c in manifest.capabilities] if manifest else []


def _print_install(result: InstallResult) -> None:
    from hm.runtime import folder_label

    out, esc = output.stdout, output._escape
    p = result.plugin
    where = folder_label(result.scope)
    old = result.replaced
    if result.status == "already_installed":
        out.print(f"{esc(p.label)} is already installed in {where} (identical file): {esc(str(p.path))}")
    else:
        if result.status == "upgraded" and old is not None:
            out.print(f"upgraded {esc(p.name)} {esc(old.version or '?')} → {esc(p.version or '?')} in {where}")
        elif result.status == "reinstalled":
            out.print(f"reinstalled {esc(p.label)} in {where} (a new build of the same version)")
        else:
            out.print(f"{result.status} {esc(p.label)} into {where}")
        out.print(f"  path:     {esc(str(p.path))}")
        out.print(f"  abi:      {p.abi[0]}.{p.abi[1]}" if p.abi else "  abi:      unknown")
        out.print(f"  sha256:   {p.sha256}")
        out.print(f"  provides: {esc('; '.join(_provides(p.manifest)) or 'nothing')}")
        if result.replaced is not None:
            out.print(f"  replaced: {esc(result.replaced.label)} (sha256 {result.replaced.sha256})")
    for note in _notes(result):
        output.stderr.print(f"note: {esc(note)}")


def _notes(result: InstallResult) -> list[str]:
    notes = []
    for rec in result.shadows:
        notes.append(f"it shadows {_describe_record(rec)}: hm now uses the plugin just installed instead")
    if result.shadowed_by is not None:
        notes.append(
            f"{_describe_record(result.shadowed_by)} takes precedence, so hm keeps using that one; "
            f"remove it to use the plugin just installed"
        )
    for conflict in result.conflicts:
        notes.append(f"{conflict.what}: neither is used until one is removed ({conflict.hint})")
    return notes


def _file_json(f: PluginFile | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {
        "name": f.name,
        "version": f.version,
        "path": str(f.path),
        "abi": f"{f.abi[0]}.{f.abi[1]}" if f.abi else None,
        "sha256": f.sha256,
        "error": f.error.to_dict() if f.error else None,
    }


def _record_json(rec: PluginRecord) -> dict[str, Any]:
    return {
        "name": rec.name,
        "version": rec.manifest.version if rec.manifest else None,
        "path": str(rec.path),
        "origin": rec.origin,
    }


def _install_json(result: InstallResult) -> dict[str, Any]:
    plugin = _file_json(result.plugin) or {}
    plugin.pop("error", None)
    plugin["provides"] = _provides(result.plugin.manifest)
    plugin["manifest"] = msgspec.to_builtins(result.plugin.manifest)
    return {
        "status": result.status,
        "scope": result.scope,
        "source": result.source,
        "plugin": plugin,
        "replaced": _file_json(result.replaced),
        "shadows": [_record_json(r) for r in result.shadows],
        "shadowed_by": _record_json(result.shadowed_by) if result.shadowed_by else None,
        "conflicts": [c.to_dict() for c in result.conflicts],
    }


def _remove_json(result: RemoveResult) -> dict[str, Any]:
    return {
        "status": "removed",
        "scope": result.scope,
        "removed": _file_json(result.removed),
        "now_uses": _record_json(result.now_uses) if result.now_uses else None,
    }
