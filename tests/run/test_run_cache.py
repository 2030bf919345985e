"""The step cache on the shell runner, through the real ``hm run`` and ``hm cache``:
a hit does not run the step and gives back its workspace and log; the key
follows what the step depends on; damaged entries, a read-only or full cache
folder and two runs at once never break a run.

Each test has its own ``HM_HOME`` (conftest), so its own cache. A step counts
its runs by appending to a file outside the project (inside it, the file would
be part of the step's input and change its key).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hm
from run_helpers import Project, by_key, events, finished, hm_env, logs, no_traceback, popen_hm, stop_process


def cache_of(evs: list[dict[str, Any]]) -> dict[str, str | None]:
    """step key -> step_finished.cache."""
    return {k: e["cache"] for k, e in finished(evs).items()}


def runs(counter: Path) -> int:
    """How many times the counting step ran."""
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def cache_list(project: Project, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_hm("cache", "list", "--format", "json", cwd=project.root, env=hm_env((), env))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def blob_files(hm_home: Path) -> list[Path]:
    return sorted((hm_home / "cache" / "steps" / "v1" / "blobs").glob("*/*"))


@pytest.fixture
def counter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("outside") / "runs.txt"


# -- hits and misses -------------------------------------------------------------------


def test_a_hit_restores_the_workspace_and_replays_the_log_without_running_the_step(
    tmp_path: Path, counter: Path
) -> None:
    (tmp_path / "src.txt").write_text("source\n")
    project = Project(tmp_path).pipeline(
        f"""
        build = step(
            "build",
            "echo run >> {counter}; echo out-1; echo err-1 >&2; seq 1 3000; echo out-2; "
            "mkdir -p out/empty out/ro; printf payload > out/data; chmod 640 out/data; "
            "touch -d '2001-02-03 04:05:06 UTC' out/data; printf '#!/bin/sh\\\\necho tool-ran\\\\n' > out/tool; "
            "chmod 755 out/tool; ln -s data out/link; touch out/ro/f; chmod 555 out/ro",
            cache="read_write",
        )
        step(
            "check",
            "stat -c '%n %a %Y' out/data out/tool out/ro; ./out/tool; cat out/link; echo; "
            "readlink out/link; test -d out/empty && echo empty-dir; cat src.txt",
            builds_in=build,
        )
        """
    )
    first, evs1 = project.run_json()
    assert first.returncode == 0, first.stderr
    assert cache_of(evs1) == {"build": "stored", "check": None}
    assert runs(counter) == 1

    second, evs2 = project.run_json()
    assert second.returncode == 0, second.stderr
    assert cache_of(evs2) == {"build": "hit", "check": None}
    assert runs(counter) == 1, "a hit must not run the step"
    # The log comes back whole, in order, on its streams, and marked as replayed.
    for stream in ("stdout", "stderr"):
        assert logs(evs2, "build", stream) == logs(evs1, "build", stream)
    assert logs(evs2, "build", "stderr") == ["err-1"]
    assert len(logs(evs2, "build", "stdout")) == 3002
    assert all(e["replayed"] for e in by_key(evs2, "step_log")["build"])
    assert not any(e["replayed"] for e in by_key(evs2, "step_log")["check"])
    # The next step of the chain sees the same workspace: modes, times, links, empty folders.
    assert logs(evs2, "check") == logs(evs1, "check")
    assert logs(evs2, "check")[0] == "out/data 640 981173106"
    assert logs(evs2, "check")[1].startswith("out/tool 755 ")
    assert logs(evs2, "check")[2].startswith("out/ro 555 ")
    assert logs(evs2, "check")[3:] == ["tool-ran", "payload", "data", "empty-dir", "source"]
    hit = finished(evs2)["build"]
    assert (hit["status"], hit["exit_code"]) == ("succeeded", 0)
    assert "restored from the step cache" in hit["message"]
    assert "build" in by_key(evs2, "step_started")

    human = project.run()
    assert human.returncode == 0, human.stderr
    assert "build (cached) | out-1" in human.stderr
    assert any(
        line.strip().startswith("✓ build") and line.rstrip().endswith("cached") for line in human.stderr.splitlines()
    )
    assert runs(counter) == 1
    no_traceback(human)


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ("cmd", "stored"),
        ("env value", "stored"),
        ("project file", "stored"),
        ("cache.key", "stored"),
        ("runner_args", "stored"),
        ("step key", "stored"),
        ("label and timeout", "hit"),
        ("env order", "hit"),
        ("file times", "hit"),
        ("another step", "hit"),
    ],
)
def test_the_key_follows_what_the_step_depends_on(tmp_path: Path, counter: Path, change: str, expect: str) -> None:
    (tmp_path / "data.txt").write_text("v1\n")

    def write(key: str = "s", cmd: str = "cat data.txt", extra: str = "", env: str = "", cache: str = "") -> None:
        env = env or '{"A": "1", "B": "2"}'
        cache = cache or '"read_write"'
        cmd = f"echo run >> {counter}; {cmd}"
        Project(tmp_path).pipeline(f"step({key!r}, {cmd!r}, env={env}, cache={cache}{extra})")

    write()
    first, evs = Project(tmp_path).run_json()
    assert first.returncode == 0, first.stderr
    assert cache_of(evs) == {"s": "stored"}
    if change == "cmd":
        write(cmd="cat data.txt; true")
    elif change == "env value":
        write(env='{"A": "1", "B": "3"}')
    elif change == "project file":
        (tmp_path / "data.txt").write_text("v2\n")
    elif change == "cache.key":
        write(cache='{"policy": "read_write", "key": "v2"}')
    elif change == "runner_args":
        write(extra=', runner_args={"kill_grace_seconds": 3}')
    elif change == "step key":
        write(key="t")
    elif change == "label and timeout":
        write(extra=', label="A label", timeout_seconds=60')
    elif change == "env order":
        write(env='{"B": "2", "A": "1"}')
    elif change == "file times":
        os.utime(tmp_path / "data.txt", (1_000_000_000, 1_000_000_000))
    elif change == "another step":
        write(extra=')\nstep("other", "true"')
    second, evs = Project(tmp_path).run_json()
    assert second.returncode == 0, second.stderr
    assert cache_of(evs)["s" if change != "step key" else "t"] == expect
    assert runs(counter) == (2 if expect == "stored" else 1)


def test_a_chained_step_is_keyed_on_the_workspace_it_starts_from(tmp_path: Path, counter: Path) -> None:
    # `make` is not cached and always runs; `use` is cached and starts from its workspace.
    project = Project(tmp_path).pipeline(
        f"""
        make = step("make", "cat {tmp_path.parent / "input.txt"} > made.txt")
        step("use", "echo run >> {counter}; cat made.txt", builds_in=make, cache="read_write")
        """
    )
    (tmp_path.parent / "input.txt").write_text("one\n")
    assert cache_of(project.run_json()[1]) == {"make": None, "use": "stored"}
    # The same workspace: a hit.
    _, evs = project.run_json()
    assert cache_of(evs) == {"make": None, "use": "hit"}
    assert logs(evs, "use") == ["one"]
    # `make` leaves other content: the key changes, and `use` runs.
    (tmp_path.parent / "input.txt").write_text("two\n")
    _, evs = project.run_json()
    assert cache_of(evs) == {"make": None, "use": "stored"}
    assert logs(evs, "use") == ["two"]
    assert runs(counter) == 2


def test_read_restores_but_never_stores(tmp_path: Path, counter: Path) -> None:
    def pipeline(policy: str) -> Project:
        return Project(tmp_path).pipeline(f'step("s", "echo run >> {counter}; echo hi", cache={policy!r})')

    result, evs = pipeline("read").run_json()
    assert result.returncode == 0, result.stderr
    assert cache_of(evs) == {"s": "miss"}
    assert cache_list(Project(tmp_path))["entries"] == []
    assert cache_of(pipeline("read_write").run_json()[1]) == {"s": "stored"}
    _, evs = pipeline("read").run_json()
    assert cache_of(evs) == {"s": "hit"}
    assert logs(evs, "s") == ["hi"]
    assert runs(counter) == 2


def test_a_failed_step_is_not_stored(tmp_path: Path, counter: Path) -> None:
    project = Project(tmp_path).pipeline(f'step("s", "echo run >> {counter}; exit 3", cache="read_write")')
    for n in (1, 2):
        result, evs = project.run_json()
        assert result.returncode == 1
        step = finished(evs)["s"]
        assert (step["status"], step["exit_code"], step["cache"]) == ("failed", 3, "miss")
        assert runs(counter) == n
    assert cache_list(project)["entries"] == []


def test_steps_without_a_cache_policy_report_none_and_leave_no_cache(tmp_path: Path, hm_home: Path) -> None:
    project = Project(tmp_path).pipeline('step("a", "echo a")\nstep("b", "echo b", cache="none")')
    result, evs = project.run_json()
    assert result.returncode == 0, result.stderr
    assert cache_of(evs) == {"a": None, "b": None}
    assert not (hm_home / "cache" / "steps").exists()


def test_parallel_cached_steps_of_one_run(tmp_path: Path, counter: Path) -> None:
    body = "\n".join(
        f'step("s{i}", "echo run >> {counter}; head -c 3000000 /dev/urandom > big; echo {i}", cache="read_write")'
        for i in range(4)
    )
    project = Project(tmp_path).pipeline(body)
    result, evs = project.run_json("-j", "4")
    assert result.returncode == 0, result.stderr
    assert set(cache_of(evs).values()) == {"stored"}
    result, evs = project.run_json("-j", "4")
    assert set(cache_of(evs).values()) == {"hit"}
    assert {k: logs(evs, k) for k in cache_of(evs)} == {f"s{i}": [str(i)] for i in range(4)}
    assert runs(counter) == 4


# -- damage ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["a file's blob", "a missing blob", "the log's blob", "torn entry", "flipped bit"])
def test_a_damaged_entry_is_discarded_and_the_step_runs(
    tmp_path: Path, counter: Path, hm_home: Path, damage: str
) -> None:
    project = Project(tmp_path).pipeline(
        f"""
        s = step(
            "s",
            "ls -A; echo run >> {counter}; echo unique-log-line; printf payload-xyz > made.txt; mkdir -p d/e",
            cache="read_write",
        )
        step("after", "cat made.txt", builds_in=s)
        """
    )
    first, evs = project.run_json()
    assert first.returncode == 0, first.stderr
    clean_listing = logs(evs, "s")[:-1]
    blobs = {path: path.read_bytes() for path in blob_files(hm_home)}
    entries = list((hm_home / "cache" / "steps" / "v1" / "entries").glob("*.entry"))
    assert len(entries) == 1
    if damage == "a file's blob":
        path = next(p for p, data in blobs.items() if data == b"payload-xyz")
        path.write_bytes(b"payload-XYZ")  # same size, other bytes
    elif damage == "a missing blob":
        next(p for p, data in blobs.items() if data == b"payload-xyz").unlink()
    elif damage == "the log's blob":
        path = next(p for p, data in blobs.items() if b"unique-log-line" in data)
        path.write_bytes(path.read_bytes().replace(b"unique", b"UNIQUE"))
    elif damage == "torn entry":
        entries[0].write_bytes(entries[0].read_bytes()[:-7])
    elif damage == "flipped bit":
        data = bytearray(entries[0].read_bytes())
        data[len(data) // 2] ^= 0x10
        entries[0].write_bytes(bytes(data))

    second, evs = project.run_json()
    assert second.returncode == 0, second.stderr
    assert cache_of(evs) == {"s": "stored", "after": None}
    assert runs(counter) == 2
    assert "step 's'" in second.stderr and "damaged" in second.stderr and "discarded" in second.stderr
    # The step ran in a clean workspace, not one half restored.
    assert logs(evs, "s")[:-1] == clean_listing
    assert logs(evs, "after") == ["payload-xyz"]
    no_traceback(second)
    third, evs = project.run_json()
    assert cache_of(evs) == {"s": "hit", "after": None}
    assert logs(evs, "after") == ["payload-xyz"]
    assert runs(counter) == 2
    assert "damaged" not in third.stderr


def test_a_workspace_the_cache_cannot_keep_is_run_uncached(tmp_path: Path, counter: Path) -> None:
    project = Project(tmp_path).pipeline(f'step("s", "echo run >> {counter}; mkfifo pipe", cache="read_write")')
    for n in (1, 2):
        result, evs = project.run_json()
        assert result.returncode == 0, result.stderr
        assert cache_of(evs) == {"s": "miss"}
        assert "step 's' was not stored in the cache: its workspace holds a FIFO (named pipe) at pipe" in result.stderr
        assert runs(counter) == n


# -- the cache folder refuses ------------------------------------------------------------


def _in_mount_namespace(project: Project, setup: str, after: str = "true", env: dict[str, str] | None = None) -> Any:
    """``hm run --format json`` in a user and mount namespace of its own, after
    ``setup`` (shell, e.g. mounting a tmpfs) and followed by ``after``: a file
    system that is full or read-only, without root and without touching this
    machine's mounts."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed: cannot make a read-only or full folder")
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not available here: {probe.stderr.decode().strip()}")
    script = f"{setup} && {sys.executable} -m hm run --format json; rc=$?; {after}; exit $rc"
    full = {**os.environ, **hm_env((), env), "COLUMNS": "200"}
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], cwd=project.root, env=full, capture_output=True, text=True, timeout=120
    )
    return result, events(result.stdout)


def test_a_read_only_cache_folder_runs_uncached_with_a_warning_and_still_gives_hits(
    tmp_path: Path, counter: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = tmp_path_factory.mktemp("ro-cache")
    old = f'step("old", "echo run >> {counter}; echo old > old.txt", cache="read_write")'
    new = f'step("new", "echo run >> {counter}; echo new > new.txt", cache="read_write")'
    project = Project(tmp_path).pipeline(old)
    assert cache_of(project.run_json(env={"HM_CACHE_DIR": str(cache)})[1]) == {"old": "stored"}
    project.pipeline(f"{old}\n{new}")
    # The folder that holds the entry, bind-mounted read-only over itself.
    result, evs = _in_mount_namespace(
        project, f"mount --bind {cache} {cache} && mount -o remount,bind,ro {cache}", env={"HM_CACHE_DIR": str(cache)}
    )
    assert result.returncode == 0, result.stderr
    assert cache_of(evs) == {"old": "hit", "new": "miss"}
    assert runs(counter) == 2  # old once, before; new now
    assert (
        f"step 'new' ran uncached: the cache folder {cache} refused the write (Read-only file system" in result.stderr
    )
    no_traceback(result)


def test_a_full_cache_folder_runs_uncached_with_a_warning(tmp_path: Path, counter: Path) -> None:
    cache = tmp_path.parent / f"{tmp_path.name}-full"
    cache.mkdir()
    leftovers = tmp_path.parent / f"{tmp_path.name}-leftovers.txt"
    project = Project(tmp_path).pipeline(
        f'step("s", "echo run >> {counter}; head -c 2000000 /dev/urandom > big.bin", cache="read_write")'
    )
    result, evs = _in_mount_namespace(
        project,
        f"mount -t tmpfs -o size=256k tmpfs {cache}",
        after=f"find {cache} -name '*.tmp' > {leftovers}",
        env={"HM_CACHE_DIR": str(cache)},
    )
    assert result.returncode == 0, result.stderr
    assert cache_of(evs) == {"s": "miss"}
    assert finished(evs)["s"]["status"] == "succeeded"
    assert (
        f"step 's' ran uncached: the cache folder {cache} refused the write (No space left on device" in result.stderr
    )
    assert leftovers.read_text() == "", "a failed write must not leave its temporary file"
    no_traceback(result)


# -- size and eviction -------------------------------------------------------------------


def _age(hm_home: Path, seconds: float) -> None:
    """Make every blob look written ``seconds`` ago (eviction spares recent ones)."""
    then = time.time() - seconds
    for path in blob_files(hm_home):
        os.utime(path, (then, then))


def test_the_cache_evicts_the_least_recently_used_steps_to_stay_in_its_bound(
    tmp_path: Path, counter: Path, hm_home: Path
) -> None:
    def pipeline(name: str) -> Project:
        # 400 KB of its own in each entry
        return Project(tmp_path).pipeline(
            f'step({name!r}, "echo run >> {counter}; head -c 400000 /dev/urandom > {name}.bin", cache="read_write")'
        )

    env = {"HM_CACHE_MAX_SIZE": "1M"}
    for name in ("a", "b"):
        assert cache_of(pipeline(name).run_json(env=env)[1]) == {name: "stored"}
    time.sleep(0.05)
    assert cache_of(pipeline("a").run_json(env=env)[1]) == {"a": "hit"}  # a is now used more recently than b
    _age(hm_home, 3600)
    # c does not fit with both: b, the least recently used, goes.
    assert cache_of(pipeline("c").run_json(env=env)[1]) == {"c": "stored"}
    listed = cache_list(Project(tmp_path), env)
    assert sorted(e["step_key"] for e in listed["entries"]) == ["a", "c"]
    assert listed["size"] <= 1024 * 1024
    assert listed["max_size"] == 1024 * 1024 and listed["max_size_from"] == "HM_CACHE_MAX_SIZE"
    assert cache_of(pipeline("a").run_json(env=env)[1]) == {"a": "hit"}
    # b is back, and c, now the least recently used, goes (its content was written
    # minutes ago, so it stays on disk a while for a store that may be reusing it).
    assert cache_of(pipeline("b").run_json(env=env)[1]) == {"b": "stored"}
    assert sorted(e["step_key"] for e in cache_list(Project(tmp_path))["entries"]) == ["a", "b"]
    assert runs(counter) == 4

    # `hm cache prune --max-size` trims further: a, the least recently used, and c's content.
    _age(hm_home, 3600)
    pruned = run_hm("cache", "prune", "--max-size", "600K", cwd=tmp_path, env=hm_env())
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.startswith("pruned 1 entry and 2 blobs (781.")
    assert [e["step_key"] for e in cache_list(Project(tmp_path))["entries"]] == ["b"]
    assert cache_list(Project(tmp_path))["size"] <= 600 * 1024


def test_hm_cache_list_and_clear(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "echo hi > f.txt", cache="read_write")')
    empty = run_hm("cache", "list", cwd=tmp_path, env=hm_env())
    assert empty.returncode == 0 and empty.stdout.startswith("The step cache is empty")
    project.run_json()
    listed = run_hm("cache", "list", cwd=tmp_path, env=hm_env())
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "t/s" in line)
    assert "shell" in row
    assert "1 entry," in listed.stdout and "of 5.0 GiB (default) in" in listed.stdout
    doc = cache_list(project)
    (entry,) = doc["entries"]
    assert (entry["pipeline"], entry["step_key"], entry["runner"], entry["damaged"]) == ("t", "s", "shell", False)
    assert entry["files"] == 1 and entry["log_lines"] == 0
    cleared = run_hm("cache", "clear", cwd=tmp_path, env=hm_env())
    assert cleared.returncode == 0 and cleared.stdout.startswith("cleared 1 entry")
    assert cache_list(project)["entries"] == []
    assert cache_of(project.run_json()[1]) == {"s": "stored"}


def test_two_runs_at_once_share_the_cache(tmp_path: Path, counter: Path, hm_home: Path) -> None:
    body = "\n".join(
        f'step("s{i}", "echo run >> {counter}; sleep 0.3; head -c 2000000 /dev/urandom > b.bin", cache="read_write")'
        for i in range(3)
    )
    project = Project(tmp_path).pipeline(body)
    procs = [popen_hm(tmp_path, "--format", "json", "-j", "3") for _ in range(2)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            stop_process(p)
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert "Traceback" not in err.decode()
        assert set(cache_of(events(out.decode())).values()) <= {"stored", "hit"}
    listed = cache_list(project)
    assert len(listed["entries"]) == 3 and not any(e["damaged"] for e in listed["entries"])
    assert list((hm_home / "cache" / "steps" / "v1" / "tmp").iterdir()) == []
    _, evs = project.run_json()
    assert set(cache_of(evs).values()) == {"hit"}


# -- settings and pipelines that are wrong ------------------------------------------------


@pytest.mark.parametrize(
    ("config", "env", "mentions"),
    [
        ('[cache]\nmax_size = "lots"\n', {}, ".hm/config.toml: [cache] max_size: 'lots' is not a size"),
        ("[cache]\nsize = 1\n", {}, "[cache] has unknown setting(s) size"),
        ("cache = 3\n", {}, "`cache` must be a table"),
        ("", {"HM_CACHE_MAX_SIZE": "-1"}, "HM_CACHE_MAX_SIZE: '-1' is not a size"),
    ],
)
def test_bad_cache_settings_exit_3(tmp_path: Path, config: str, env: dict[str, str], mentions: str) -> None:
    marker = tmp_path.parent / f"{tmp_path.name}-ran"
    project = Project(tmp_path).pipeline(f'step("s", "touch {marker}", cache="read_write")')
    (tmp_path / ".hm" / "config.toml").write_text(config)
    result = project.run(env=env)
    assert result.returncode == 3, result.stderr
    assert mentions in result.stderr
    assert not marker.exists()
    no_traceback(result)


def test_a_size_from_the_project_config(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("s", "true", cache="read_write")')
    (tmp_path / ".hm" / "config.toml").write_text('[cache]\nmax_size = "1.5GiB"\n')
    doc = cache_list(project)
    assert (doc["max_size"], doc["max_size_from"]) == (int(1.5 * 1024**3), str(Path(".hm") / "config.toml"))
    assert cache_list(project, {"HM_CACHE_MAX_SIZE": "2g"})["max_size"] == 2 * 1024**3


@pytest.mark.parametrize(
    ("cache", "mentions"),
    [
        ('"sometimes"', "step('s'): argument `cache.policy`: Invalid enum value 'sometimes'"),
        ('{"policy": "read", "ttl": 3}', "step('s'): argument `cache`: Object contains unknown field `ttl`"),
        ('{"policy": "read", "key": ""}', "step 's' (steps[0]): cache.key is empty"),
        ('{"policy": "read", "key": "a\\nb"}', "step 's' (steps[0]): cache.key contains a control character"),
        ("5", "step('s'): argument `cache`: Expected `object | null`, got `int`"),
    ],
)
def test_a_bad_cache_field_is_refused_at_validation_with_its_line(tmp_path: Path, cache: str, mentions: str) -> None:
    marker = tmp_path.parent / f"{tmp_path.name}-ran"
    project = Project(tmp_path).pipeline(f'step("s", "touch {marker}", cache={cache})')
    result = project.run()
    assert result.returncode == 3, result.stderr
    assert mentions in result.stderr
    assert ".hm/pipeline.py:6" in result.stderr
    assert not marker.exists()
    no_traceback(result)


def test_a_bad_cache_field_in_ir_json_names_its_path(tmp_path: Path) -> None:
    ir = {"slug": "t", "steps": [{"kind": "command", "key": "s", "cmd": "true", "cache": {"policy": "always"}}]}
    (tmp_path / "p.json").write_text(json.dumps(ir))
    result = run_hm("run", "--file", str(tmp_path / "p.json"), cwd=tmp_path, env=hm_env())
    assert result.returncode == 3, result.stderr
    assert "$.steps[0].cache.policy" in result.stderr and "always" in result.stderr
    no_traceback(result)


# -- runners that cannot name their images -------------------------------------------------


def test_a_runner_that_cannot_name_its_image_runs_uncached_unless_the_image_is_pinned(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32

    def run(image: str) -> tuple[Any, list[dict[str, Any]]]:
        project = Project(tmp_path).pipeline(
            f'step("s", "hello", image={image!r}, runner="imgrun", cache="read_write")'
        )
        return project.run_json(plugins=["image-runner"])

    for _ in range(2):
        result, evs = run("example/app:1")
        assert result.returncode == 0, result.stderr
        assert cache_of(evs) == {"s": "miss"}
        assert logs(evs, "s") == ["imgrun ran hello"]
        assert not any(e["replayed"] for e in by_key(evs, "step_log")["s"])
        assert "runner 'imgrun' (image-runner) cannot tell the id of its image 'example/app:1'" in result.stderr
        assert "NAME@sha256" in result.stderr
    assert cache_of(run(f"example/app@{digest}")[1]) == {"s": "stored"}
    result, evs = run(f"example/app@{digest}")
    assert cache_of(evs) == {"s": "hit"}
    assert by_key(evs, "step_log")["s"][0]["replayed"] is True
    assert "cannot tell" not in result.stderr
