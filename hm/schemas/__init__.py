"""Published JSON Schemas, shipped as files next to this module and printed by ``hm schema NAME``:

- ``pipeline.schema.json``: pipeline IR v0, what ``hm run --file PIPELINE.json`` reads
  (generated from the structs in :mod:`hm.pipeline.ir`);
- ``events.schema.json``: each line of ``hm run --format json`` (generated from the
  event structs in :mod:`hm_plugin_sdk.protocol`).

The structs are the source of truth; the files are generated from them with
``python -m hm.schemas`` and a test fails when a file is out of date, so the two
cannot drift.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import msgspec

__all__ = ["EVENTS_SCHEMA", "PIPELINE_SCHEMA", "SCHEMAS", "events_schema", "pipeline_schema", "render"]

_HERE = Path(__file__).resolve().parent
_DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"

EVENTS_SCHEMA: Final = _HERE / "events.schema.json"
PIPELINE_SCHEMA: Final = _HERE / "pipeline.schema.json"


def events_schema() -> dict[str, Any]:
    """The events schema as generated from the event structs."""
    from hm_plugin_sdk.protocol import BuildEvent

    schema = msgspec.json.schema(BuildEvent)
    schema["$schema"] = _DRAFT
    schema["title"] = "hm run --format json event (one per line)"
    return schema


def pipeline_schema() -> dict[str, Any]:
    """The pipeline IR v0 schema as generated from the IR structs."""
    from hm.pipeline.ir import pipeline_json_schema

    schema = pipeline_json_schema()
    schema["$schema"] = _DRAFT
    schema["title"] = "hm pipeline IR v0 (docs/pipelines.md)"
    return schema


#: Name (as ``hm schema NAME`` takes it) -> (shipped file, generator).
SCHEMAS: Final[dict[str, tuple[Path, Callable[[], dict[str, Any]]]]] = {
    "pipeline": (PIPELINE_SCHEMA, pipeline_schema),
    "events": (EVENTS_SCHEMA, events_schema),
}


def render(name: str) -> str:
    """The text the shipped file ``name`` must hold: sorted, indented JSON and a newline."""
    _, generate = SCHEMAS[name]
    return json.dumps(generate(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
