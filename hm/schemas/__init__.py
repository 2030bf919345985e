"""Published JSON Schemas: ``events.schema.json`` describes each line of
``hm run --format json``. Regenerate with ``python -m hm.schemas``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

EVENTS_SCHEMA = Path(__file__).resolve().parent / "events.schema.json"


def events_schema() -> dict[str, Any]:
    """The schema as generated from the event structs (the source of truth)."""
    from hm_plugin_sdk.protocol import BuildEvent

    schema = msgspec.json.schema(BuildEvent)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hm run --format json event (one per line)"
    return schema


def render() -> str:
    return json.dumps(events_schema(), indent=2, sort_keys=True) + "\n"
