"""Every host-API function, exercised by the host-fn-probe fixture through the real bridge."""

from __future__ import annotations

import io
from pathlib import Path

from conftest import fixture_path

from hm.runtime.calls import CALLS, CallContext
from hm.runtime.host_services import HostServices, HostStatus
from hm.runtime.kv_store import PluginKvStore
from hm.runtime.plugin import open_plugin
from hm_plugin_sdk.abi import Status
from hm_plugin_sdk.protocol import SubcommandInput

EXPECTED = {
    "log": 0,
    "kv_set": 0,
    "kv_get": 0,
    "kv_get_missing": 4,  # HM_ERR_NOT_FOUND
    "kv_set_build": 9,  # HM_ERR_UNAVAILABLE outside a run
    "kv_set_step": 9,
    "emit_event": 0,
    "emit_step_log": 9,  # not a step
    "should_cancel": 0,
    "write_stdout": 0,
    "write_stderr": 0,
    "archive_total_size": 9,
    "archive_read": 9,
    "fs_read_config": 0,
    "fs_read_config_escape": 6,  # HM_ERR_DENIED
    "stale_call": 5,  # HM_ERR_STALE_CALL
    "free": 0,
}


def run_probe(project: Path) -> tuple[int, str, dict[str, int], bytes]:
    plugin = open_plugin(fixture_path("host-fn-probe"))
    out, err = io.BytesIO(), io.BytesIO()
    info = plugin.run_subcommand(
        SubcommandInput(verb_path=["probe", "host"]), HostServices(project_root=project, stdout=out, stderr=err)
    )
    statuses = {}
    for line in out.getvalue().decode().splitlines():
        if line.startswith("host_fn "):
            _, name, status, verdict = line.split()
            assert verdict == "ok", line
            statuses[name] = int(status)
    return info.exit_code, info.message or "", statuses, err.getvalue()


def project_with_config(root: Path, text: str = "hello") -> Path:
    (root / ".hm").mkdir()
    (root / ".hm" / "probe.txt").write_text(text)
    return root


def test_every_host_function_behaves_outside_a_run(tmp_path: Path) -> None:
    code, message, statuses, stderr = run_probe(project_with_config(tmp_path))
    assert statuses == EXPECTED
    assert code == 0
    assert message == "host-fn-probe: 17/17 host functions behaved"
    assert stderr == b"probe: stderr\n"


def test_plugin_scope_kv_persists_and_is_private_to_the_plugin(tmp_path: Path) -> None:
    run_probe(project_with_config(tmp_path))
    assert PluginKvStore.default().get("host-fn-probe", b"probe") == b"42"
    assert PluginKvStore.default().get("other-plugin", b"probe") is None


def test_no_call_handle_outlives_its_call(tmp_path: Path) -> None:
    before = len(CALLS)
    run_probe(project_with_config(tmp_path))
    assert len(CALLS) == before


def test_read_config_refuses_paths_outside_dot_hm(tmp_path: Path) -> None:
    (tmp_path / ".hm").mkdir()
    (tmp_path / "secret").write_text("s")
    (tmp_path / ".hm" / "link").symlink_to(tmp_path / "secret")
    svc = HostServices(project_root=tmp_path)
    ctx = CallContext("p", "/p.so", "test", svc)
    for bad in ("../secret", "/etc/passwd", "link", "a/../../secret"):
        try:
            svc.read_config(ctx, bad)
        except HostStatus as exc:
            assert exc.status == Status.ERR_DENIED, bad
        else:
            raise AssertionError(f"{bad} was read")
