"""The root ``hm`` command: global options and the built-in commands."""

from __future__ import annotations

from pathlib import Path

import typer

from hm import __version__
from hm.cli import cache_cmd, output, pipelines_cmd, plugin_cmds, run_cmd, runs_cmd, schema_cmd, shell_cmd
from hm.cli.group import HmGroup
from hm.cli.options import FormatOption
from hm.cli.session import SESSION

app = typer.Typer(
    name="hm",
    cls=HmGroup,
    help="hm runs build pipelines; every runner, hook and extra command is a native plugin.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(plugin_cmds.app, name="plugin")
app.add_typer(cache_cmd.app, name="cache")
app.command("run")(run_cmd.run)
app.command("schema")(schema_cmd.schema)
app.add_typer(runs_cmd.app, name="runs")
app.command("logs")(runs_cmd.logs)
app.command("artifacts")(runs_cmd.artifacts)
app.command("pipelines")(pipelines_cmd.pipelines)
app.command("shell")(shell_cmd.shell)


def _print_version(value: bool) -> None:
    if value:
        output.stdout.print(f"hm {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logs, and tracebacks on errors."),
    project: Path | None = typer.Option(
        None, "--project", "-C", help="Run as if hm was started in this directory.", file_okay=False
    ),
    _version: bool = typer.Option(
        False,
        "--version",
        help="Print hm's version and exit (`hm version` also shows the plugin ABI).",
        is_eager=True,
        callback=_print_version,
    ),
) -> None:
    SESSION.verbose = verbose
    SESSION.project_dir = project
    SESSION.configure_logging()


@app.command("version")
def version(format: FormatOption = "human") -> None:
    """Show hm's version, the plugin ABI it speaks and how many plugins it finds."""
    from hm_plugin_sdk.abi import ABI_MAJOR, ABI_MINOR

    registry = SESSION.registry
    doc = {
        "hm": __version__,
        "abi": f"{ABI_MAJOR}.{ABI_MINOR}",
        "plugins": len(registry.active()),
        "broken_plugins": len(registry.broken()),
    }
    if format == "json":
        output.print_json(doc)
        return
    output.stdout.print(f"hm {doc['hm']}")
    output.stdout.print(f"plugin ABI {doc['abi']}")
    broken = f" ({doc['broken_plugins']} broken, see `hm plugin list`)" if doc["broken_plugins"] else ""
    output.stdout.print(f"plugins: {doc['plugins']}{broken}")
