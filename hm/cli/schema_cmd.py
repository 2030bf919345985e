"""``hm schema pipeline|events``: print a shipped JSON Schema (see :mod:`hm.schemas`)."""

from __future__ import annotations

import sys
from typing import Literal

import typer

SchemaName = Literal["pipeline", "events"]


def schema(name: SchemaName = typer.Argument(..., help="pipeline or events.")) -> None:
    """Print the JSON Schema of the pipeline IR or of the run events.

    NAME is `pipeline` (the IR that `hm run --file PIPELINE.json` reads) or `events`
    (each line of `hm run --format json`). docs/pipelines.md describes both.
    """
    from hm.schemas import SCHEMAS

    path, _ = SCHEMAS[name]
    # The shipped file, byte for byte: what editors and validators are pointed at.
    sys.stdout.buffer.write(path.read_bytes())
    sys.stdout.flush()
