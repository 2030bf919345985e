"""``hm schema NAME`` prints the shipped JSON Schema files, through the real CLI."""

from __future__ import annotations

import json
import re

import pytest
from conftest import run_hm

from hm.schemas import EVENTS_SCHEMA, PIPELINE_SCHEMA


@pytest.mark.parametrize(("name", "path"), [("pipeline", PIPELINE_SCHEMA), ("events", EVENTS_SCHEMA)])
def test_hm_schema_prints_the_shipped_file(name: str, path: object) -> None:
    result = run_hm("schema", name)
    assert result.returncode == 0, result.stderr
    assert result.stdout == path.read_text()  # type: ignore[attr-defined]
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert result.stderr == ""


def test_an_unknown_schema_name_is_a_usage_error() -> None:
    result = run_hm("schema", "nope")
    assert result.returncode == 2
    assert "'nope' is not one of 'pipeline', 'events'" in result.stderr
    assert result.stdout == ""


def test_hm_help_lists_the_schema_command() -> None:
    help_text = run_hm("--help").stdout
    assert re.search(r"\n  schema +Print the JSON Schema of the pipeline IR or of the run events\.", help_text)
