"""``hm cache …``: list, prune and clear the step cache (:mod:`hm.cache`).

Safe while a run uses the cache: what a run is about to restore and finds gone
is a miss, and the step runs.
"""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from hm.cli import output
from hm.cli.group import HelpGroup
from hm.cli.options import FormatOption
from hm.cli.output import safe
from hm.cli.session import SESSION
from hm.errors import HmError, UsageError

app = typer.Typer(help="List, prune and clear the step cache.", no_args_is_help=True, cls=HelpGroup)


def _config() -> Any:
    from hm.cache import CacheConfig

    return CacheConfig.from_environment(SESSION.project_root)


def _failed(what: str, exc: OSError, config: Any) -> HmError:
    return HmError(
        f"could not {what}: {exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""),
        where=f"the step cache ({config.dir})",
        hint="check the folder's permissions, or set HM_CACHE_DIR to another folder",
    )


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


@app.command("list")
def list_entries(format: FormatOption = "human") -> None:
    """List the stored steps, least recently used first, and how full the cache is."""
    from hm.cache import CacheStore, format_size

    config = _config()
    store = CacheStore(config.dir)
    try:
        infos = store.list_entries()
        usage = store.usage()
    except OSError as exc:
        raise _failed("read it", exc, config) from None
    if format == "json":
        output.print_json(
            {
                "dir": str(config.dir),
                "max_size": config.max_size,
                "max_size_from": config.max_size_from,
                "size": usage,
                "entries": [
                    {
                        "key": info.key,
                        "damaged": info.entry is None,
                        "last_used": _iso(info.last_used),
                        **(_entry_json(info.entry) if info.entry is not None else {}),
                    }
                    for info in infos
                ],
            }
        )
        return
    if not infos:
        output.stdout.print(f"The step cache is empty ({safe(config.dir)}).")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for col in ("KEY", "STEP", "RUNNER", "IMAGE", "SIZE", "STORED", "LAST USED"):
        table.add_column(col)
    for info in infos:
        e = info.entry
        if e is None:
            table.add_row(info.key[:12], "[red]damaged[/]", "-", "-", format_size(info.file_size), "-", "-")
            continue
        table.add_row(
            e.key[:12],
            safe(f"{e.pipeline}/{e.step_key}"),
            safe(e.runner),
            safe(e.image or "-"),
            format_size(e.size),
            safe(e.created[:16].replace("T", " ")),
            _when(info.last_used),
        )
    output.stdout.print(table)
    output.stdout.print(
        f"{len(infos)} entr{'y' if len(infos) == 1 else 'ies'}, {format_size(usage)} of "
        f"{format_size(config.max_size)} ({safe(config.max_size_from)}) in {safe(config.dir)}"
    )


def _entry_json(e: Any) -> dict[str, Any]:
    return {
        "pipeline": e.pipeline,
        "step_key": e.step_key,
        "runner": e.runner,
        "plugin": e.plugin,
        "plugin_version": e.plugin_version,
        "image": e.image,
        "image_id": e.image_id,
        "run_id": e.run_id,
        "created": e.created,
        "duration_ms": e.duration_ms,
        "size": e.size,
        "files": sum(1 for n in e.files if n.kind == "f"),
        "log_lines": e.log_lines,
    }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


@app.command("prune")
def prune(
    max_size: str | None = typer.Option(
        None, "--max-size", help="Prune down to this size (e.g. 1G) instead of the configured bound."
    ),
    format: FormatOption = "human",
) -> None:
    """Evict the least recently used steps until the cache fits its bound; drop damaged ones."""
    from hm.cache import GRACE_SECONDS, CacheStore, format_size, parse_size

    config = _config()
    bound = config.max_size
    if max_size is not None:
        parsed = parse_size(max_size)
        if parsed is None:
            raise UsageError(
                f"--max-size {max_size!r} is not a size", where="hm cache prune", hint='e.g. "500M" or "2GiB"'
            )
        bound = parsed
    store = CacheStore(config.dir)
    try:
        result = store.evict(bound, low_water=1.0, sweep=True)
    except OSError as exc:
        raise _failed("prune it", exc, config) from None
    kept = ""
    if result.total > bound and result.kept:
        minutes = int(GRACE_SECONDS // 60)
        kept = f" ({format_size(result.kept)} written in the last {minutes} minutes is kept: a run may be storing it)"
    _report("pruned", result, format, f"; it holds {format_size(result.total)} of {format_size(bound)}{kept}")


@app.command("clear")
def clear(format: FormatOption = "human") -> None:
    """Delete every stored step."""
    from hm.cache import CacheStore

    config = _config()
    try:
        result = CacheStore(config.dir).clear()
    except OSError as exc:
        raise _failed("clear it", exc, config) from None
    _report("cleared", result, format, "")


def _report(verb: str, result: Any, format: str, tail: str) -> None:
    from hm.cache import format_size

    if format == "json":
        output.print_json(
            {
                "entries": result.entries,
                "blobs": result.blobs,
                "freed": result.freed,
                "size": result.total,
                "kept_recent": result.kept,
            }
        )
        return
    n = result.entries
    output.stdout.print(
        f"{verb} {n} entr{'y' if n == 1 else 'ies'} and {result.blobs} blob{'' if result.blobs == 1 else 's'} "
        f"({format_size(result.freed)} freed){tail}"
    )
