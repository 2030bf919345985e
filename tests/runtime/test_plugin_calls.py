"""Typed capability calls and the status/error translator."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from conftest import fixture_path

from hm.errors import ExitCode, PluginCallError
from hm.runtime.host_services import HostServices
from hm.runtime.plugin import open_plugin, translate
from hm_plugin_sdk.abi import Status
from hm_plugin_sdk.protocol import (
    BuildStarted,
    ExecutorInput,
    HookEvent,
    PluginError,
    StepResult,
    StepSpec,
    SubcommandInput,
)


def test_failing_subcommand_returns_exit_7_and_its_message() -> None:
    plugin = open_plugin(fixture_path("failing-subcommand"))
    info = plugin.run_subcommand(SubcommandInput(verb_path=["fail"], args={"reason": "testing"}), HostServices())
    assert info.exit_code == 7
    assert info.message == "failing-subcommand failed: testing"


def test_noop_executor_runs_a_step(tmp_path: Path) -> None:
    plugin = open_plugin(fixture_path("noop-executor"))
    result = plugin.execute_step(
        ExecutorInput(run_id="r1", step=StepSpec(key="a", cmd="true"), workspace=str(tmp_path)), HostServices()
    )
    assert result == StepResult(exit_code=0, status="succeeded")


def test_noop_hook_continues() -> None:
    plugin = open_plugin(fixture_path("noop-executor"))
    event = HookEvent(phase="after", event=BuildStarted(run_id="r", ts="t", pipeline="p", steps=1))
    assert plugin.on_hook_event(event, HostServices()).kind == "continue"


def test_capability_the_plugin_does_not_have() -> None:
    plugin = open_plugin(fixture_path("failing-subcommand"))
    with pytest.raises(PluginCallError) as info:
        plugin.execute_step(ExecutorInput(run_id="r", step=StepSpec(key="a", cmd="x"), workspace="/"), HostServices())
    assert "does not implement execute_step" in info.value.what
    assert "failing-subcommand" in info.value.one_line()


def test_an_invalid_input_report_is_shown() -> None:
    plugin = open_plugin(fixture_path("failing-subcommand"))
    with pytest.raises(PluginCallError) as info:
        plugin.run_subcommand(SubcommandInput(verb_path=["fail"], args={"reason": 3}), HostServices())
    assert "ERR_INVALID_ARGUMENT" in info.value.what and "[invalid_input]" in info.value.what


def test_plugin_error_is_carried_with_code_and_suggestion() -> None:
    err = PluginError(code="image_missing", message="no image x", suggestion="pull it", retryable=True)
    with pytest.raises(PluginCallError) as info:
        translate(Status.ERR_FAILED, msgspec.msgpack.encode(err), StepResult, plugin="p", path="/p.so", op="run")
    assert info.value.code == "image_missing"
    assert info.value.retryable is True
    assert info.value.one_line() == "plugin p (/p.so): no image x [image_missing]; pull it; it may work if retried"
    assert info.value.report == {
        "code": "image_missing",
        "message": "no image x",
        "suggestion": "pull it",
        "retryable": True,
    }


def test_every_field_of_a_plugin_error_is_rendered_by_the_one_renderer() -> None:
    err = PluginError(
        code="pull_failed",
        message="the registry answered 503",
        title="Image pull failed",
        suggestion="check the registry",
        retryable=True,
        retry_commands=["hm run --step build", "podman pull x"],
        doc_url="https://example.invalid/pull",
    )
    for status in (Status.ERR_FAILED, Status.ERR_IO):  # a report with any failing status reads the same
        with pytest.raises(PluginCallError) as info:
            translate(status, msgspec.msgpack.encode(err), StepResult, plugin="p", path="/p.so", op="execute_step")
        assert info.value.what.endswith("Image pull failed: the registry answered 503 [pull_failed]")
        assert info.value.hint == (
            "check the registry; retry with: `hm run --step build` or `podman pull x`; see https://example.invalid/pull"
        )
        assert info.value.to_dict()["report"]["retry_commands"] == ["hm run --step build", "podman pull x"]
    assert info.value.exit_code == ExitCode.PLUGIN_RUNTIME


def test_malformed_output_names_the_plugin() -> None:
    bad = msgspec.msgpack.encode({"exit_code": "zero"})
    with pytest.raises(PluginCallError) as info:
        translate(Status.OK, bad, StepResult, plugin="p", path="/p.so", op="execute_step")
    assert info.value.code == "malformed_output"
    assert "execute_step returned a malformed StepResult" in info.value.what


def test_every_status_code_is_translated() -> None:
    for status in Status:
        if status in (Status.OK, Status.ERR_FAILED):
            continue
        with pytest.raises(PluginCallError) as info:
            translate(status, b"", StepResult, plugin="p", path="/p.so", op="execute_step")
        assert info.value.code == status.name.lower()
