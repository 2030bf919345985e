"""Option types shared by several commands."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

FormatOption = Annotated[
    Literal["human", "json"],
    typer.Option("--format", help="human: tables and text; json: one machine-readable document."),
]
