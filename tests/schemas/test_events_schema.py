"""The shipped events schema is current, and real ``--format json`` output obeys it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from conftest import FIXTURES, run_hm

from hm.schemas import EVENTS_SCHEMA, render


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
