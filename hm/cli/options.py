"""Option types shared by several commands."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

#: For commands that print one result: a table or text, or one JSON document.
FormatOption = Annotated[
    Literal["human", "json"],
    typer.Option("--format", help="human: tables and text; json: one JSON document on stdout."),
]

#: For ``hm run``, whose JSON output is a stream of events, not one document.
RunFormatOption = Annotated[
    Literal["human", "json"],
    typer.Option(
        "--format",
        help="human: live progress and a summary; json: one JSON event per line on stdout, "
        "nothing else there (schema: `hm schema events`).",
    ),
]
