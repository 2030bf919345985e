"""Discovery, shadowing, conflicts and the manifest cache, on real fixture libraries."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import fixture_path, run_hm

from hm.errors import HmError, PluginConflictError
from hm.runtime.manifest_cache import ManifestCache
from hm.runtime.registry import Registry


def copy_fixtures(dest: Path, *names: str) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy2(fixture_path(name), dest / fixture_path(name).name)
    return dest


def test_broken_plugins_are_listed_with_a_reason_and_hide_nothing(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plugins = copy_fixtures(tmp_path / "p", "noop-executor", "bad-abi-version", "broken-no-entry", "recording-hook")
    monkeypatch.setenv("HM_PLUGIN_PATH", str(plugins))
    reg = Registry.discover(None)
    assert sorted(r.name for r in reg.active() if r.origin == "env") == ["noop-executor", "recording-hook"]
    broken = {r.path.name: r.error for r in reg.broken() if r.origin == "env"}
    assert set(broken) == {"bad-abi-version.so", "broken-no-entry.so"}
    assert "9999.0" in broken["bad-abi-version.so"].what  # type: ignore[union-attr]


def test_a_plugin_that_crashes_while_loading_is_listed_as_broken(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plugins = copy_fixtures(tmp_path / "p", "broken-crash-on-manifest", "noop-executor")
    monkeypatch.setenv("HM_PLUGIN_PATH", str(plugins))
    monkeypatch.setenv("HM_FIXTURE_CRASH", "1")
    reg = Registry.discover(None)  # would die with SIGABRT if the library were loaded here
    (crashed,) = [r for r in reg.broken() if r.origin == "env"]
    assert "crashed with SIGABRT in manifest" in crashed.error.what  # type: ignore[union-attr]
    assert "noop-executor" in {r.name for r in reg.active()}


def test_two_plugins_claiming_one_runner_is_a_conflict_naming_both_paths(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plugins = copy_fixtures(tmp_path / "p", "conflict-runner-a", "conflict-runner-b", "noop-executor")
    monkeypatch.setenv("HM_PLUGIN_PATH", str(plugins))
    reg = Registry.discover(None)
    assert len(reg.conflicts) == 1
    text = reg.conflicts[0].one_line()
    assert str(plugins / "conflict-runner-a.so") in text and str(plugins / "conflict-runner-b.so") in text
    with pytest.raises(PluginConflictError):
        reg.executor_for("dup")
    assert reg.executor_for("noop")[1].name == "noop-executor"


def test_unknown_runner_lists_the_available_ones(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HM_PLUGIN_PATH", str(copy_fixtures(tmp_path / "p", "noop-executor", "freestyle-runner")))
    reg = Registry.discover(None)
    with pytest.raises(HmError) as info:
        reg.executor_for("docker")
    # the bundled runners are listed too (container only where it was built), sorted
    listed = info.value.what.removeprefix("no plugin provides runner 'docker' (available: ").removesuffix(")")
    assert {"freestyle", "noop", "shell"} <= set(listed.split(", "))
    assert listed.split(", ") == sorted(listed.split(", "))


def test_project_plugin_shadows_a_same_named_user_plugin(tmp_path: Path, hm_home: Path) -> None:
    project = tmp_path / "proj"
    copy_fixtures(project / ".hm" / "plugins", "noop-executor")
    copy_fixtures(hm_home / "plugins", "noop-executor")
    reg = Registry.discover(project)
    (active,) = [r for r in reg.records if r.active and r.name == "noop-executor"]
    assert active.origin == "project"
    (shadowed,) = [r for r in reg.records if r.shadowed_by]
    assert shadowed.origin == "user" and shadowed.shadowed_by == active.path
    assert reg.conflicts == []


def load_log(tmp_path: Path) -> list[str]:
    log = tmp_path / "loads.log"
    return log.read_text().split() if log.exists() else []


def test_listing_unchanged_plugins_runs_no_plugin_code(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plugins = copy_fixtures(tmp_path / "p", "noop-executor", "recording-hook")
    monkeypatch.setenv("HM_PLUGIN_PATH", str(plugins))
    monkeypatch.setenv("HM_FIXTURE_LOAD_LOG", str(tmp_path / "loads.log"))
    cache_file = tmp_path / "cache.json"

    first = Registry.discover(None, cache=ManifestCache(cache_file))
    assert sorted(load_log(tmp_path)) == ["noop-executor", "recording-hook"]

    second = Registry.discover(None, cache=ManifestCache(cache_file))
    assert sorted(load_log(tmp_path)) == ["noop-executor", "recording-hook"], "a cached listing ran plugin code"
    assert [r.manifest for r in second.records] == [r.manifest for r in first.records]
    assert {r.name for r in second.records if r.origin == "env"} == {"noop-executor", "recording-hook"}


def test_a_changed_library_is_read_again(tmp_path: Path) -> None:
    # Each listing runs in its own process, as real `hm` invocations do: a process
    # never sees a new library at a path it already loaded.
    plugins = copy_fixtures(tmp_path / "p", "noop-executor")
    env = {"HM_PLUGIN_PATH": str(plugins), "HM_FIXTURE_LOAD_LOG": str(tmp_path / "loads.log")}
    assert '"name":"noop-executor"' in run_hm("plugin", "list", "--format", "json", env=env).stdout
    replacement = plugins / "tmp.so.new"
    shutil.copy2(fixture_path("freestyle-runner"), replacement)
    os.replace(replacement, plugins / "noop-executor.so")  # a new inode, as `hm plugin install` does
    listing = run_hm("plugin", "list", "--format", "json", env=env).stdout
    assert '"name":"freestyle-runner"' in listing and '"name":"noop-executor"' not in listing
    assert load_log(tmp_path) == ["noop-executor", "freestyle-runner"]


def test_broken_outcomes_are_cached_too(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plugins = copy_fixtures(tmp_path / "p", "bad-abi-version")
    monkeypatch.setenv("HM_PLUGIN_PATH", str(plugins))
    monkeypatch.setenv("HM_FIXTURE_LOAD_LOG", str(tmp_path / "loads.log"))
    cache_file = tmp_path / "cache.json"
    Registry.discover(None, cache=ManifestCache(cache_file))
    again = Registry.discover(None, cache=ManifestCache(cache_file))
    assert load_log(tmp_path) == ["bad-abi-version"]
    assert "9999.0" in again.broken()[0].error.what  # type: ignore[union-attr]


def test_a_corrupt_cache_file_is_ignored(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HM_PLUGIN_PATH", str(copy_fixtures(tmp_path / "p", "noop-executor")))
    cache_file = tmp_path / "cache.json"
    cache_file.write_text("{not json")
    reg = Registry.discover(None, cache=ManifestCache(cache_file))
    assert [r.name for r in reg.active() if r.origin == "env"] == ["noop-executor"]


def test_child_probes_ignore_an_hm_directory_in_the_current_directory(tmp_path: Path) -> None:
    # A user standing in a checkout of hm (or any folder with an `hm/` package) must
    # not have the plugin probes import that copy instead of the installed hm.
    script = Path(sys.executable).parent / "hm"
    if not script.exists():
        pytest.skip("the hm console script is not installed next to this Python")
    (tmp_path / "hm").mkdir()
    (tmp_path / "hm" / "__init__.py").write_text("raise ImportError('decoy hm imported')\n")
    env = {**os.environ, "HM_PLUGIN_PATH": str(fixture_path("noop-executor"))}
    result = subprocess.run(
        [str(script), "plugin", "list", "--format", "json"], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["noop-executor"]["status"] == "ok", plugins["noop-executor"]["error"]
