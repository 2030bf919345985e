"""``hm plugin check`` on stdio plugins: the good fixtures pass, the bad ones fail
with what is wrong."""

from __future__ import annotations

import json

import pytest
from conftest import run_hm
from stdio_helpers import descriptor


@pytest.mark.parametrize("name", ["py-all", "node-all"])
def test_the_good_fixtures_pass(name: str) -> None:
    result = run_hm("plugin", "check", "--format", "json", str(descriptor(name)), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    # the subcommand check really runs `hm NAME sample`, which greets on stdout first
    greeting, _, report = result.stdout.partition("{")
    assert greeting == "hello sample count=1\n"
    doc = json.loads("{" + report)
    status = {c["name"]: c["status"] for c in doc["checks"]}
    assert doc["plugin"] == name and doc["passed"]
    assert status == {
        "load": "passed",
        "header": "passed",
        "manifest": "passed",
        f"step_executor:{name}": "passed",
        "lifecycle_hook:after": "passed",
        f"subcommand:{name}": "passed",
        "free": "skipped",
        "threads": "passed",
        "older-host": "skipped",
        "host-1.0": "skipped",
    }


#: fixture -> the failed check and what its line says
BAD = {
    "wrong-version": ("load", "speaks stdio protocol 2.0 while this hm speaks 1.x"),
    "garbage-on-start": ("load", "a line on stdout that is not JSON: 'Hello from a plugin that prints on stdout'"),
    "not-executable": ("load", "its command './not-executable.sh' is not executable"),
    "crash": ("step_executor:crash", "exited with status 3 (its last output: misbehave: giving up)"),
    "hang": ("step_executor:hang", "hung while calling execute_step for runner hang"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_the_bad_ones_fail_naming_what_is_wrong(name: str) -> None:
    result = run_hm("plugin", "check", "--timeout", "3", str(descriptor(name)), timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    check, what = BAD[name]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(f"✗ {check}:")]
    assert what in line
    assert "Traceback" not in result.stderr
