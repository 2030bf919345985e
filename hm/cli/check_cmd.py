"""``hm plugin check PATH``: run the conformance suite (:mod:`hm.check`) on a library."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from hm.cli import output
from hm.cli.options import FormatOption
from hm.errors import UsageError

if TYPE_CHECKING:
    from hm.check import SuiteReport

_HELP = """Check that a plugin library follows hm's plugin contract.

Each check runs in its own process, so a crash or a hang fails that check, not hm:
load (opens, exports hm_load_plugin, which returns a vtable); header (ABI major,
table size, required entries); manifest (decodes, validates, every declared
capability has its vtable entry); one check per capability with realistic sample
inputs; free (many calls, every output released through the plugin's free, with
heap checks on); threads (calls from 8 threads at once); older-host (a host table
of an older minor version).

Warning: the subcommand checks REALLY RUN the plugin's commands (with their
defaults or sample arguments), once in their own check and once in older-host.
Step executors run a step whose command is `true` in an empty temporary workspace.

Exit status: 0 when every check passed (skipped checks are allowed), 1 when any
check failed, 2 for a bad argument."""


def register(app: typer.Typer) -> None:
    """Add ``check`` to the ``hm plugin`` group."""
    app.command("check", help=_HELP)(check)


def check(
    path: Path = typer.Argument(..., help="The plugin library (.so / .dylib / .dll) to check."),
    format: FormatOption = "human",
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds each check may run before it fails as hung."),
) -> None:
    from hm.check import render_human, run_suite, to_json

    where = "hm plugin check"
    if timeout <= 0:
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout:g}", where=where)
    if not path.exists():
        raise UsageError(f"{path}: no such file", where=where, hint="give the path of a built plugin library")
    if not path.is_file():
        raise UsageError(f"{path} is not a file", where=where, hint="give the library file, not its project folder")
    # Absolute: pathlib spells ./demo.so as demo.so, and dlopen() looks a name without a
    # slash up on the library search path instead of in the current directory.
    report = run_suite(path.absolute(), timeout=timeout)
    _mark_shadowed_verbs(report)
    if format == "json":
        output.print_json(to_json(report))
    else:
        render_human(report, output.stdout)
    if not report.passed:
        raise typer.Exit(1)


def _mark_shadowed_verbs(report: SuiteReport) -> None:
    """A verb whose first word is a built-in command is never offered: say so on its check."""
    from dataclasses import replace

    from hm.cli.plugin_cmds import is_builtin

    for index, check in enumerate(report.checks):
        if check.name.startswith("subcommand:") and is_builtin(check.name.removeprefix("subcommand:").split()[0]):
            verb = check.name.removeprefix("subcommand:")
            report.checks[index] = replace(
                check,
                detail=f"{check.detail} (note: `hm {verb.split()[0]}` is a built-in command, so hm never offers "
                f"`hm {verb}`; rename the verb)",
            )
