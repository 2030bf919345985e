"""The shipped events schema is current, and real ``--format json`` output obeys it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import msgspec
from conftest import FIXTURES, run_hm

from hm.schemas import EVENTS_SCHEMA, render
from hm_plugin_sdk.protocol import BuildEvent, ChainFailed


def test_shipped_schema_matches_the_event_structs() -> None:
    assert EVENTS_SCHEMA.read_text() == render("events"), "run `python -m hm.schemas` to regenerate it"


def test_real_run_output_validates(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step, wait\n"
        "@pipeline('schema')\n"
        "def p():\n"
        "    step('words', 'alpha beta', runner='freestyle')\n"
        "    wait(continue_on_failure=True)\n"
        "    step('ok', 'ok', runner='freestyle')\n"
    )
    env = {"HM_PLUGIN_PATH": str(FIXTURES / "freestyle-runner.so")}
    result = run_hm("run", "--format", "json", cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    validator = jsonschema.Draft202012Validator(json.loads(EVENTS_SCHEMA.read_text()))
    kinds = []
    for line in result.stdout.splitlines():
        event = json.loads(line)
        validator.validate(event)
        kinds.append(event["kind"])
    assert kinds[0] == "build_started" and kinds[-1] == "build_finished"
    assert {"step_started", "step_log", "step_finished", "chain_failed"} <= set(kinds)
    finished = [json.loads(x) for x in result.stdout.splitlines() if '"step_finished"' in x]
    assert {e["step_key"]: e["status"] for e in finished} == {"words": "failed", "ok": "succeeded"}


def test_chain_failed_carries_the_failed_steps_exit_code_optionally() -> None:
    schema = json.loads(EVENTS_SCHEMA.read_text())
    chain_failed = schema["$defs"]["ChainFailed"]
    assert chain_failed["properties"]["exit_code"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    assert "exit_code" not in chain_failed["required"]
    validator = jsonschema.Draft202012Validator(schema)
    event = ChainFailed(run_id="r", ts="t", chain="build", step_key="test", reason="exited with code 3", exit_code=3)
    encoded = json.loads(msgspec.json.encode(event))
    assert encoded["exit_code"] == 3
    validator.validate(encoded)
    # An event from a host that predates the field still decodes and validates.
    old = {k: v for k, v in encoded.items() if k != "exit_code"}
    validator.validate(old)
    assert msgspec.json.decode(json.dumps(old), type=BuildEvent).exit_code is None  # type: ignore[union-attr]


def test_a_real_chain_failed_event_carries_the_failed_steps_exit_code(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / ".hm" / "pipeline.py").write_text(
        "from hm.dsl import pipeline, step\n"
        "@pipeline('x')\n"
        "def p():\n"
        "    step('words', 'alpha beta', runner='freestyle')\n"
    )
    result = run_hm(
        "run", "--format", "json", cwd=tmp_path, env={"HM_PLUGIN_PATH": str(FIXTURES / "freestyle-runner.so")}
    )
    events = {e["kind"]: e for e in map(json.loads, result.stdout.splitlines())}
    assert events["step_finished"]["exit_code"] == 2  # freestyle fails with the number of words
    assert events["chain_failed"]["exit_code"] == 2
