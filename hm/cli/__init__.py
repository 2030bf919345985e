"""hm's command line. :func:`main` is the console entry point and the one place
where errors become messages and exit codes."""

from __future__ import annotations

import os
import sys
import traceback
from typing import NoReturn

import click

from hm.errors import ExitCode, HmError

#: An error in hm itself (not in a plugin or the user's input).
INTERNAL_ERROR = 70


def main(argv: list[str] | None = None) -> int:
    """Run ``hm`` and return its exit code (see the README's table)."""
    import typer.main

    from hm.cli import output
    from hm.cli.app import app
    from hm.cli.session import SESSION

    args = sys.argv[1:] if argv is None else argv
    try:
        ext_code = _run_extension_if_named(args)
        if ext_code is not None:
            return ext_code
        command = typer.main.get_command(app)
        result = command.main(args=args, prog_name="hm", standalone_mode=False)
        return int(result) if isinstance(result, int) else int(ExitCode.OK)
    except HmError as err:
        if SESSION.verbose:
            traceback.print_exc()
        output.print_error(err)
        return int(err.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # `hm` or `hm plugin` alone: the help text, as asked
        return int(ExitCode.USAGE)
    except click.ClickException as exc:
        output.print_error(_from_click(exc))
        return int(ExitCode.USAGE)
    except (click.exceptions.Abort, KeyboardInterrupt):
        output.stderr.print("cancelled")
        return int(ExitCode.CANCELLED)
    except Exception as exc:  # the last net before the user's terminal
        if SESSION.verbose:
            traceback.print_exc()
        output.stderr.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc}; this is a bug in hm — "
            "run again with --verbose for the traceback and report it"
        )
        return INTERNAL_ERROR


def _from_click(exc: click.ClickException) -> HmError:
    """click's usage errors in hm's one-line style: ``error: hm run: no such option '--x'; see …``.

    click would print the usage, a "Try …" line and ``Error: …``: three lines in another style.
    """
    text = exc.format_message().strip().removesuffix(".").replace(". Did you mean", "; did you mean")
    text = text[:1].lower() + text[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is None:
        return HmError(text)
    return HmError(text, where=ctx.command_path, hint=f"`{ctx.command_path} --help` shows the usage")


def _run_extension_if_named(args: list[str]) -> int | None:
    """Run ``hm-NAME`` for ``hm [globals] NAME ARGS…`` when NAME is an extension.

    Done before click parses anything, so every argument after NAME (``--help``
    and ``--`` included) reaches the extension verbatim.
    """
    from hm.cli import extensions
    from hm.cli.app import app
    from hm.cli.group import apply_globals, split_globals
    from hm.cli.session import SESSION

    global_args, name, rest = split_globals(args)
    builtins = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if name is None or name in builtins:
        return None
    path = extensions.find_extension(name)
    if path is None:
        return None
    apply_globals(global_args)
    import typer.main

    group = typer.main.get_command(app)
    if name in group.plugin_commands()[0]:  # type: ignore[attr-defined]
        return None  # a plugin verb wins over an extension
    ctx = extensions.context(project_root=SESSION.project_root, fmt="human", verbose=SESSION.verbose)
    return extensions.run_extension(path, rest, ctx)


def finish(code: int) -> NoReturn:
    """Leave the process with ``code``, whatever plugins left running.

    Workers get an orderly end (their plugins' ``destroy``). Processes plugins
    left behind are killed, except after a plugin's own command or an extension,
    which may start what outlives them on purpose. A call abandoned
    after a timeout may still be running inside hm (an in-process plugin that
    ignored ``should_cancel``); its thread would keep the interpreter from
    exiting, so then hm exits without waiting for threads.
    """
    from hm.cli.session import SESSION

    if "hm.runtime.worker" in sys.modules:
        from hm.runtime import shutdown_workers

        shutdown_workers()
    if "hm.telemetry" in sys.modules:  # traced: send the last spans before leaving
        from hm.telemetry import shutdown

        shutdown()
    if SESSION.reap_leftovers and os.name == "posix":
        # what plugins left behind (a daemon forked while loading) ends with hm
        from hm.child_process import kill_descendants

        kill_descendants()
    abandoned = False
    if "hm.runtime.loader" in sys.modules:
        from hm.runtime import exit_expected, live_calls

        exit_expected()
        abandoned = live_calls() > 0
    if abandoned:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)
    sys.exit(code)


def entry() -> None:
    """Console-script entry point."""
    finish(main())
