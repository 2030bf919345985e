"""Pipeline IR v0: the structs, their JSON form, and the errors a bad IR file gets.

Every decode error must say *which file* and *where in it* (msgspec's ``$.steps[2].cmd``
path, or ``file:line:col`` for broken JSON), and a misspelt field name gets a
did-you-mean hint listing the fields allowed at that place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from hm.errors import ExitCode, PipelineError
from hm.pipeline import (
    IR_VERSION,
    CachePolicy,
    CommandStep,
    Pipeline,
    WaitStep,
    load_ir_file,
    pipeline_from_json,
    pipeline_json_schema,
    pipeline_to_json,
)

COMMAND_FIELDS = (
    "kind, key, label, cmd, env, image, runner, runner_args, timeout_seconds, cache, builds_in, artifacts, "
    "artifacts_required"
)
SCHEMA_HINT = "the IR v0 fields are described in docs/pipelines.md; `hm schema pipeline` prints the JSON Schema"


def decode_error(doc: Any, source: str = "ci.json") -> PipelineError:
    """Decode ``doc`` (JSON-encoded first unless it is already bytes) and return the error."""
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    with pytest.raises(PipelineError) as info:
        pipeline_from_json(data, source=source)
    return info.value


def command(key: str = "a", **fields: Any) -> dict[str, Any]:
    return {"kind": "command", "key": key, "cmd": "true", **fields}


# --- decoding what is valid -------------------------------------------------------------


def test_minimal_ir_decodes_with_every_default() -> None:
    p = pipeline_from_json(b'{"slug": "ci", "steps": [{"kind": "command", "key": "a", "cmd": "make"}]}', source="x")
    assert p == Pipeline(slug="ci", steps=[CommandStep(key="a", cmd="make")])
    assert p.version == IR_VERSION == "0"
    assert p.env == {} and p.default_image is None
    step = p.steps[0]
    assert isinstance(step, CommandStep)
    assert (step.label, step.env, step.image, step.runner) == (None, {}, None, None)
    assert (step.runner_args, step.timeout_seconds, step.cache, step.builds_in) == ({}, None, None, None)


def test_every_field_decodes_into_the_right_struct() -> None:
    doc = {
        "version": "0",
        "slug": "ci",
        "env": {"CI": "1"},
        "default_image": "debian:12",
        "steps": [
            {
                "kind": "command",
                "key": "build",
                "label": "Build it",
                "cmd": "make",
                "env": {"X": "y"},
                "image": "gcc:14",
                "runner": "shell",
                "runner_args": {"nested": {"list": [1, 2.5, True, None]}},
                "timeout_seconds": 90,
                "cache": {"policy": "read_write", "key": "deps-v1"},
                "builds_in": None,
                "artifacts": [],
                "artifacts_required": False,
            },
            {"kind": "wait", "key": "gate", "continue_on_failure": True},
            {"kind": "wait"},
        ],
    }
    p = pipeline_from_json(json.dumps(doc).encode(), source="x")
    build, gate, bare = p.steps
    assert build == CommandStep(
        key="build",
        label="Build it",
        cmd="make",
        env={"X": "y"},
        image="gcc:14",
        runner="shell",
        runner_args={"nested": {"list": [1, 2.5, True, None]}},
        timeout_seconds=90.0,
        cache=CachePolicy(policy="read_write", key="deps-v1"),
    )
    assert isinstance(build.timeout_seconds, float)
    assert gate == WaitStep(key="gate", continue_on_failure=True)
    assert bare == WaitStep(key=None, continue_on_failure=False)
    assert (p.env, p.default_image) == ({"CI": "1"}, "debian:12")


def test_encoding_writes_every_field_with_kind_first_and_round_trips() -> None:
    p = Pipeline(
        slug="ci",
        steps=[CommandStep(key="a", cmd="x", cache=CachePolicy(policy="read")), WaitStep()],
    )
    data = pipeline_to_json(p)
    assert data == (
        b'{"version":"0","slug":"ci","env":{},"default_image":null,"steps":['
        b'{"kind":"command","key":"a","label":null,"cmd":"x","env":{},"image":null,"runner":null,'
        b'"runner_args":{},"timeout_seconds":null,"cache":{"policy":"read","key":null},"builds_in":null,'
        b'"artifacts":[],"artifacts_required":false},'
        b'{"kind":"wait","key":null,"continue_on_failure":false}]}'
    )
    assert pipeline_from_json(data, source="x") == p


def test_structs_are_frozen() -> None:
    step = CommandStep(key="a", cmd="x")
    with pytest.raises(AttributeError):
        step.key = "b"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Pipeline(slug="ci", steps=[]).slug = "other"  # type: ignore[misc]


def test_json_schema_describes_both_step_kinds_and_forbids_unknown_fields() -> None:
    schema = pipeline_json_schema()
    defs = schema["$defs"]
    assert schema["$ref"] == "#/$defs/Pipeline"
    assert defs["Pipeline"]["required"] == ["slug", "steps"]
    assert defs["Pipeline"]["additionalProperties"] is False
    items = defs["Pipeline"]["properties"]["steps"]["items"]
    assert items["discriminator"]["propertyName"] == "kind"
    assert set(items["discriminator"]["mapping"]) == {"command", "wait"}
    assert set(defs["CommandStep"]["properties"]) == set(COMMAND_FIELDS.split(", "))
    assert defs["CommandStep"]["additionalProperties"] is False
    assert defs["CachePolicy"]["properties"]["policy"]["enum"] == ["none", "read", "read_write"]


# --- errors: where and what ------------------------------------------------------------


def test_a_wrong_type_names_the_source_and_the_msgspec_path() -> None:
    err = decode_error({"slug": "ci", "steps": [command("a"), {"kind": "wait"}, command("b", cmd=3)]})
    assert err.what == "invalid pipeline IR: Expected `str`, got `int`"
    assert err.where == "ci.json at $.steps[2].cmd"
    assert err.hint == SCHEMA_HINT
    assert str(err) == f"ci.json at $.steps[2].cmd: invalid pipeline IR: Expected `str`, got `int`; {SCHEMA_HINT}"
    assert err.exit_code == ExitCode.PIPELINE_INVALID == 3


def test_a_missing_required_field_is_named() -> None:
    err = decode_error({"slug": "ci", "steps": [{"kind": "command", "key": "a"}]})
    assert err.what == "invalid pipeline IR: Object missing required field `cmd`"
    assert err.where == "ci.json at $.steps[0]"


def test_a_typo_in_a_command_step_field_gets_did_you_mean() -> None:
    err = decode_error({"slug": "ci", "steps": [command("a", timeout_secs=3)]})
    assert err.what == "invalid pipeline IR: Object contains unknown field `timeout_secs`"
    assert err.where == "ci.json at $.steps[0]"
    assert err.hint == f"did you mean `timeout_seconds`? allowed fields here: {COMMAND_FIELDS}"


def test_a_typo_in_a_wait_step_lists_the_wait_fields() -> None:
    err = decode_error({"slug": "ci", "steps": [command("a"), {"kind": "wait", "contnue_on_failure": True}]})
    assert err.where == "ci.json at $.steps[1]"
    assert err.hint == "did you mean `continue_on_failure`? allowed fields here: kind, key, continue_on_failure"


def test_a_typo_at_the_top_level_gets_did_you_mean() -> None:
    err = decode_error({"slug": "ci", "stepz": []})
    assert err.what == "invalid pipeline IR: Object contains unknown field `stepz`"
    assert err.where == "ci.json at $"
    assert err.hint == "did you mean `steps`? allowed fields here: version, slug, env, default_image, steps"


def test_a_typo_inside_cache_lists_the_cache_fields() -> None:
    err = decode_error({"slug": "ci", "steps": [command("a", cache={"polcy": "read"})]})
    assert err.where == "ci.json at $.steps[0].cache"
    assert err.hint == "did you mean `policy`? allowed fields here: policy, key"


def test_an_unknown_field_with_no_close_match_still_lists_the_allowed_fields() -> None:
    err = decode_error({"slug": "ci", "steps": [command("a", zzzzzz=1)]})
    assert err.hint == f"allowed fields here: {COMMAND_FIELDS}"


def test_an_unknown_step_kind_says_which_kinds_exist() -> None:
    err = decode_error({"slug": "ci", "steps": [{"kind": "cmd", "key": "a", "cmd": "x"}]})
    assert err.what == "invalid pipeline IR: Invalid value 'cmd'"
    assert err.where == "ci.json at $.steps[0].kind"
    assert err.hint == 'a step\'s `kind` is "command" or "wait"'


def test_another_ir_version_is_refused_with_the_supported_one() -> None:
    err = decode_error({"version": "1", "slug": "ci", "steps": []})
    assert err.where == "ci.json at $.version"
    assert err.hint == 'this hm reads pipeline IR version "0"; regenerate the file or upgrade hm'


def test_a_bad_cache_policy_names_its_path() -> None:
    err = decode_error({"slug": "ci", "steps": [command("a"), command("b", cache={"policy": "always"})]})
    assert err.what == "invalid pipeline IR: Invalid enum value 'always'"
    assert err.where == "ci.json at $.steps[1].cache.policy"


def test_malformed_json_is_located_by_line_and_column() -> None:
    err = decode_error(b'{"slug": "ci",\n "steps": [,]}', source="ci.json")
    assert err.what == "not valid JSON: JSON is malformed: invalid character"
    assert err.where == "ci.json:2:12"
    assert err.hint == "fix the JSON syntax (an IR file is one JSON object with `slug` and `steps`)"


def test_truncated_json_names_the_source() -> None:
    err = decode_error(b'{"slug": "ci"', source="p.json")
    assert err.what == "not valid JSON: Input data was truncated"
    assert err.where == "p.json"


def test_a_top_level_array_is_rejected_at_the_root() -> None:
    err = decode_error(b"[1, 2]")
    assert err.what == "invalid pipeline IR: Expected `object`, got `array`"
    assert err.where == "ci.json at $"


# --- IR files --------------------------------------------------------------------------


def test_load_ir_file_reads_a_file_and_names_it_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    good = tmp_path / "sub" / "ok.json"
    good.write_bytes(msgspec.json.encode({"slug": "ci", "steps": [command("a")]}))
    assert load_ir_file(good, cwd=tmp_path) == Pipeline(slug="ci", steps=[CommandStep(key="a", cmd="true")])

    bad = tmp_path / "sub" / "bad.json"
    bad.write_bytes(msgspec.json.encode({"slug": "ci", "steps": [command("a", cmd=["make"])]}))
    with pytest.raises(PipelineError) as info:
        load_ir_file(bad, cwd=tmp_path)
    assert info.value.where == "sub/bad.json at $.steps[0].cmd"


def test_load_ir_file_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PipelineError) as info:
        load_ir_file(tmp_path / "nope.json", cwd=tmp_path)
    assert info.value.what == "cannot read the pipeline file: No such file or directory"
    assert info.value.where == "nope.json"
    assert info.value.hint == "check the path and its permissions"
