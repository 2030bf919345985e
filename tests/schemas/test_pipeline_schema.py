"""The shipped pipeline IR schema is current, real IR obeys it, and it refuses what hm refuses."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import msgspec
import pytest
from conftest import ROOT

from hm.pipeline import pipeline_to_json, render_file
from hm.pipeline.ir import CachePolicy, CommandStep, Pipeline, WaitStep
from hm.schemas import PIPELINE_SCHEMA, render


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(PIPELINE_SCHEMA.read_text()))


def test_shipped_schema_matches_the_ir_structs() -> None:
    assert PIPELINE_SCHEMA.read_text() == render("pipeline"), "run `python -m hm.schemas` to regenerate it"


def test_every_field_has_a_description() -> None:
    schema = json.loads(PIPELINE_SCHEMA.read_text())
    for name, definition in schema["$defs"].items():
        for field, spec in definition["properties"].items():
            if field != "kind":  # the tag, added by msgspec
                assert spec.get("description"), f"{name}.{field} has no description"


def test_the_example_pipeline_rendered_from_the_dsl_obeys_the_schema() -> None:
    example = ROOT / "examples" / "hello"
    (pipeline,) = render_file(example / ".hm" / "pipeline.py", cwd=example)
    validator().validate(json.loads(pipeline_to_json(pipeline)))


def test_a_pipeline_with_every_field_obeys_the_schema() -> None:
    full = Pipeline(
        slug="ci",
        env={"CI": "1"},
        default_image="debian:12",
        steps=[
            CommandStep(
                key="build",
                label="Build",
                cmd="make",
                env={"X": "1"},
                image="alpine",
                runner="shell",
                runner_args={"kill_grace_seconds": 1, "nested": [1, {"a": None}]},
                timeout_seconds=1.5,
                cache=CachePolicy(policy="read_write", key="k"),
                builds_in=None,
            ),
            WaitStep(key="gate", continue_on_failure=True),
            CommandStep(key="test", cmd="make test", builds_in="build"),
        ],
    )
    validator().validate(json.loads(pipeline_to_json(full)))


@pytest.mark.parametrize(
    "doc",
    [
        {"slug": "ci", "steps": [{"kind": "command", "key": "a", "cmd": "x", "timeout_secs": 1}]},
        {"slug": "ci", "steps": [{"kind": "shell", "key": "a", "cmd": "x"}]},
        {"slug": "ci", "steps": [{"kind": "command", "key": "a"}]},
        {"slug": "ci", "version": "1", "steps": []},
        {"slug": "ci", "steps": [{"kind": "command", "key": "a", "cmd": "x", "cache": {"policy": "all"}}]},
        {"steps": []},
    ],
    ids=["unknown-field", "unknown-kind", "missing-cmd", "other-version", "bad-cache-policy", "no-slug"],
)
def test_what_hm_refuses_the_schema_refuses_too(doc: dict[str, Any]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(doc, Pipeline)
    assert not validator().is_valid(doc)
