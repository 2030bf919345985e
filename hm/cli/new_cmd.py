"""``hm plugin new``: start a plugin project from a template."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from hm.cli import output


def new(
    name: str = typer.Argument(..., help="Plugin name: lowercase letters, digits and '-'."),
    lang: Literal["c", "rust", "python"] = typer.Option(
        ..., "--lang", help="The plugin's language (python: a stdio plugin, nothing to build)."
    ),
    capability: Literal["executor", "hook", "subcommand"] = typer.Option(
        "executor", "--capability", help="What the plugin does: a step runner, a lifecycle hook or a command."
    ),
    directory: Path | None = typer.Option(
        None, "--dir", help="Where to create the project (default: ./NAME).", file_okay=False
    ),
) -> None:
    """Create a plugin project that builds with one command and passes `hm plugin check`."""
    from hm.scaffold import create_project

    dest = directory or Path.cwd() / name
    project = create_project(dest, name, lang, capability)
    output.stdout.print(f"created {lang} {capability} plugin '{name}' in {project.path}", markup=False)
    if project.build_command:
        output.stdout.print(f"  build:  cd {project.path} && {project.build_command}", markup=False)
    output.stdout.print(f"  check:  hm plugin check {project.path / project.library}", markup=False)
    # a stdio plugin is installed as its directory (descriptor and script together)
    installed = project.path if lang == "python" else project.path / project.library
    output.stdout.print(f"  use:    hm plugin install {installed}", markup=False)


def register(app: typer.Typer) -> None:
    app.command("new")(new)
