"""hm's command line. :func:`main` is the console entry point and the one place
where errors become messages and exit codes."""

from __future__ import annotations

import sys
import traceback

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
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="hm", standalone_mode=False)
        return int(result) if isinstance(result, int) else int(ExitCode.OK)
    except HmError as err:
        if SESSION.verbose:
            traceback.print_exc()
        output.print_error(err)
        return int(err.exit_code)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(ExitCode.USAGE)
    except click.exceptions.Abort:
        output.stderr.print("cancelled")
        return int(ExitCode.CANCELLED)
    except KeyboardInterrupt:
        output.stderr.print("cancelled")
        return int(ExitCode.CANCELLED)
    except Exception as exc:  # noqa: BLE001 - the last net before the user's terminal
        if SESSION.verbose:
            traceback.print_exc()
        output.stderr.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {exc}; this is a bug in hm — "
            "run again with --verbose for the traceback and report it"
        )
        return INTERNAL_ERROR


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
