"""ABI 1.1 grows the tables at their ends, and the growth is proven (DESIGN.md):
a plugin built against the kept 1.0 header loads and runs on this host, and a
1.1 plugin on a host table cut to 1.0 gets "unavailable" instead of a crash."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest
from conftest import fixture_path

from hm.runtime.host_services import HostServices
from hm.runtime.kv_store import PluginKvStore
from hm.runtime.plugin import open_plugin
from hm_plugin_sdk.abi import ABI_MINOR, host_table_size
from hm_plugin_sdk.protocol import ExecutorInput, StepSpec, SubcommandInput

#: sizeof(hm_plugin_vtable_t) of ABI 1.0: a header and six pointers.
VTABLE_1_0 = struct.calcsize("III" + "P" * 6)


def step_input(tmp_path: Path, key: str = "a") -> ExecutorInput:
    ws = tmp_path / key
    ws.mkdir(exist_ok=True)
    return ExecutorInput(run_id="r1", step=StepSpec(key=key, cmd="true"), workspace=str(ws))


@pytest.mark.parametrize("isolation", ["in-process", "process"])
def test_a_plugin_built_against_the_1_0_header_loads_with_its_1_0_tables(isolation: str) -> None:
    plugin = open_plugin(fixture_path("abi-1-0-runner"), isolation=isolation)  # type: ignore[arg-type]
    try:
        assert plugin.transport.abi == (1, 0)
        assert plugin.transport.facts is not None
        assert plugin.transport.facts.struct_size == VTABLE_1_0
        assert not plugin.transport.facts.offers & 8  # no session entries: its table ends before them
    finally:
        plugin.transport.close()


def test_a_1_1_plugin_on_a_host_table_cut_to_1_0_gets_unavailable(tmp_path: Path) -> None:
    plugin = open_plugin(fixture_path("kv-counter"), isolation="process", host_size=host_table_size(0), host_minor=0)
    try:
        result = plugin.execute_step(step_input(tmp_path), HostServices())
        out = io.BytesIO()
        plugin.run_subcommand(SubcommandInput(verb_path=["counter", "probe"]), HostServices(stdout=out))
    finally:
        plugin.transport.close()
    assert result.exit_code == 0
    assert result.message == "kv-counter: kv_compare_and_swap unavailable (9)"
    assert PluginKvStore.default().get("kv-counter", b"count") is None
    assert {line.split()[1]: int(line.split()[2]) for line in out.getvalue().decode().splitlines()} == {
        name: 9
        for name in (
            "create",
            "create_again",
            "wrong_expected",
            "empty_expected",
            "right_expected",
            "build_scope",
            "bad_scope",
        )
    }


def test_host_table_sizes_of_each_minor_grow() -> None:
    sizes = [host_table_size(m) for m in range(ABI_MINOR + 1)]
    assert sizes == sorted(set(sizes))
    assert sizes[-1] - sizes[0] == 2 * struct.calcsize("P")  # kv_compare_and_swap, session_output


@pytest.mark.parametrize("isolate", [False, True])
def test_a_1_0_plugin_runs_a_pipeline_step_on_the_1_1_host(tmp_path: Path, isolate: bool) -> None:
    import abi_helpers  # noqa: F401  (puts tests/run on sys.path)
    from run_helpers import Project, finished, logs

    project = Project(tmp_path / "p").pipeline("step(key='a', cmd='x', runner='old')")
    result, evs = project.run_json(*(["--isolate"] if isolate else []), plugins=["abi-1-0-runner"])
    assert result.returncode == 0, result.stderr
    assert logs(evs, "a") == ["abi-1.0: hello from a"]
    # it sees this host's whole (1.1) table and uses only its 1.0 part
    assert finished(evs)["a"]["message"] == f"abi-1.0: kv ok (struct_size {host_table_size(1)}, host ABI 1.1)"
