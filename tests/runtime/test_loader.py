"""Loading real fixture libraries: every broken kind gets its own exact, actionable error."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import fixture_path

from hm.errors import ExitCode, PluginLoadError
from hm.runtime.plugin import open_plugin


def load_error(name: str) -> PluginLoadError:
    with pytest.raises(PluginLoadError) as info:
        open_plugin(fixture_path(name))
    err = info.value
    assert str(fixture_path(name)) in err.one_line(), "the message must name the library's path"
    assert err.hint, "the message must say what to do next"
    assert err.exit_code == ExitCode.PLUGIN_LOAD
    return err


def test_good_plugin_loads_with_its_manifest() -> None:
    plugin = open_plugin(fixture_path("noop-executor"))
    assert plugin.name == "noop-executor"
    assert plugin.manifest.version == "1.0.0"
    assert plugin.transport.abi == (1, 1)  # built against this checkout's header (ABI 1.1)


def test_abi_major_mismatch_names_both_versions() -> None:
    err = load_error("bad-abi-version")
    assert "built for ABI 9999.0 while this hm speaks 1.x" in err.what
    assert "rebuild it against the hm_plugin.h shipped with this hm" in (err.hint or "")


def test_missing_entry_symbol() -> None:
    err = load_error("broken-no-entry")
    assert "does not export `hm_load_plugin`" in err.what


def test_entry_returning_null() -> None:
    err = load_error("broken-entry-null")
    assert "`hm_load_plugin` returned NULL" in err.what


def test_vtable_smaller_than_abi_1_0() -> None:
    err = load_error("broken-small-table")
    assert "smaller than the" in err.what and "ABI 1.0" in err.what
    assert "sizeof(hm_plugin_vtable_t)" in (err.hint or "")


def test_manifest_that_is_not_msgpack() -> None:
    err = load_error("broken-manifest-not-msgpack")
    assert "manifest is not valid msgpack" in err.what


def test_manifest_without_a_name() -> None:
    err = load_error("broken-manifest-no-name")
    assert "missing required field `name`" in err.what


def test_plugin_built_against_a_newer_minor_loads() -> None:
    plugin = open_plugin(fixture_path("newer-minor"))
    assert plugin.transport.abi == (1, 2)
    assert plugin.name == "newer-minor"


def test_file_that_is_not_a_library(tmp_path: Path) -> None:
    bogus = tmp_path / "text.so"
    bogus.write_text("not an ELF file")
    with pytest.raises(PluginLoadError) as info:
        open_plugin(bogus)
    assert "cannot be opened as a shared library" in info.value.what
    assert str(bogus) in info.value.one_line()


def test_loading_twice_returns_the_same_library() -> None:
    first = open_plugin(fixture_path("freestyle-runner"))
    second = open_plugin(fixture_path("freestyle-runner"))
    assert first.transport.abi == second.transport.abi
    assert first.manifest == second.manifest
