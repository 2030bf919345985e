"""The step cache (issue 11): a hit against a miss for a step that takes over a second,
medians of N runs interleaved in the same process, and the workspace restore's speed.

The step sleeps 1 s and leaves 64 MiB in its workspace (one 48 MiB file and 2048
files of 8 KiB). Printed, for the shell runner and, when Podman is here, for the
container runner:

- ``miss`` and ``hit``: the step's own time (``step_finished.duration_ms``: for a
  miss the run and the store, for a hit the key, the lookup, the restore and the
  replay) and the whole ``hm run`` (Python, plugins, validation, the run's
  directory), next to ``hm run`` of an uncached ``true`` step;
- ``restore``: :func:`hm.cache.restore` of that entry alone (in this process, page
  cache warm), its MB/s, and the file system's own floor: the same files written
  with plain ``os.write`` (no blob to read, no digest, no modes or times);
- the target: a hit costs under 5% of a miss plus the restore, i.e.
  ``(hit - restore) / miss < 5%`` on the step's own time.

``--compare-commit`` (with Podman) also measures harmont's way for the same 64 MiB:
``podman commit`` of a container that wrote them, and getting them back (``podman
create`` from that image, ``podman cp`` out of it, ``podman rm``), against
:func:`hm.cache.snapshot` into an empty store and :func:`hm.cache.restore`.

    python -m bench.cache [--repeats N] [--compare-commit]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "container"))
sys.path.insert(0, str(ROOT))

from container_engine import IMAGE, Engine, podman_missing, podman_service  # noqa: E402

from hm.cache import CacheStore, FileNode, restore, snapshot  # noqa: E402

MIB = 1024 * 1024
#: What the step leaves: one 48 MiB file and 2048 files of 8 KiB (64 MiB in all).
MAKE = (
    "sleep 1; mkdir -p out/small; head -c 50331648 /dev/urandom > out/big.bin; "
    'awk \'BEGIN { for (i = 0; i < 2048; i++) { f = "out/small/f" i; printf "%8192d", i > f; close(f) } }\'; '
    "echo made"
)


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench.cache: {' '.join(cmd)} failed:\n{done.stderr}")
    return took, done.stdout


def _step(stdout: str) -> tuple[str, float]:
    """The step's cache status and its own seconds, from ``step_finished``."""
    (done,) = [json.loads(line) for line in stdout.splitlines() if '"step_finished"' in line]
    return str(done["cache"]), done["duration_ms"] / 1000


def _median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def _restore_times(store: CacheStore, repeats: int, scratch: Path) -> tuple[float, float, int]:
    """Median seconds to restore the only entry, to write its files plainly, and its bytes."""
    (info,) = store.list_entries()
    assert info.entry is not None
    files = info.entry.files
    restore_s, floor_s = [], []
    for _ in range(repeats):
        target = Path(tempfile.mkdtemp(prefix="restore-", dir=scratch))
        restore_s.append(_clock(lambda target=target: restore(store, files, target)))  # type: ignore[misc]
        shutil.rmtree(target)
        target = Path(tempfile.mkdtemp(prefix="floor-", dir=scratch))
        blobs = {n.digest: store.blob_path(n.digest).read_bytes() for n in files if n.kind == "f"}
        floor_s.append(_clock(lambda target=target, blobs=blobs: _plain_write(files, blobs, target)))  # type: ignore[misc]
        shutil.rmtree(target)
    return statistics.median(restore_s), statistics.median(floor_s), info.entry.size


def _plain_write(files: list[FileNode], blobs: dict[str, bytes], target: Path) -> None:
    for node in files:
        if node.kind == "d":
            os.mkdir(target / node.path)
        elif node.kind == "f":
            fd = os.open(target / node.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, blobs[node.digest])
            os.close(fd)


def bench_runner(label: str, project: Path, env: dict[str, str], repeats: int, scratch: Path) -> None:
    home = Path(env["HM_HOME"])
    hm = [sys.executable, "-m", "hm", "run", "--format", "json"]
    baseline = [*hm, "-f", str(project / "true.json")]
    clear = [sys.executable, "-m", "hm", "cache", "clear"]
    _timed(hm, env, project)  # warm up: manifests, page cache, the engine
    miss, hit, miss_cli, hit_cli, base_cli = [], [], [], [], []
    for _ in range(repeats):  # interleaved, so drift hits all alike
        _timed(clear, env, project)
        took, out = _timed(hm, env, project)
        status, step = _step(out)
        assert status == "stored", out
        miss.append(step)
        miss_cli.append(took)
        took, out = _timed(hm, env, project)
        status, step = _step(out)
        assert status == "hit", out
        hit.append(step)
        hit_cli.append(took)
        base_cli.append(_timed(baseline, env, project)[0])
    restore_s, floor_s, size = _restore_times(CacheStore(home / "cache" / "steps"), repeats, scratch)
    m, h, r, f = _median_ms(miss), _median_ms(hit), restore_s * 1000, floor_s * 1000
    mc, hc, bc = _median_ms(miss_cli), _median_ms(hit_cli), _median_ms(base_cli)
    mb = size / MIB
    (info,) = CacheStore(home / "cache" / "steps").list_entries()
    count = sum(1 for n in info.entry.files if n.kind == "f") if info.entry else 0
    print(f"{label}: a 1 s step leaving {mb:.0f} MiB in {count} files, medians of {repeats} runs")
    print(f"  step's own time:  miss {m:6.0f} ms   hit {h:6.0f} ms   ({h / m:.1%} of a miss)")
    print(f"  hm run, whole:    miss {mc:6.0f} ms   hit {hc:6.0f} ms   (uncached `true` step: {bc:.0f} ms)")
    print(
        f"  restore           {r:6.0f} ms   {mb / restore_s:5.0f} MB/s   (plain writes of the same files: {f:.0f} ms)"
    )
    print(f"  hit - restore     {h - r:6.0f} ms   {(h - r) / m:.1%} of a miss   (target < 5%)")


def _project(base: Path, name: str, image: str | None) -> Path:
    project = base / name
    (project / ".hm").mkdir(parents=True)
    extra = {"image": image} if image else {}
    steps = [{"kind": "command", "key": "make", "cmd": MAKE, "cache": {"policy": "read_write"}, **extra}]
    (project / ".hm" / "bench.json").write_text(json.dumps({"version": "0", "slug": "bench", "steps": steps}))
    true = [{"kind": "command", "key": "true", "cmd": "true", **extra}]
    (project / "true.json").write_text(json.dumps({"version": "0", "slug": "true", "steps": true}))
    return project


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, "HM_HOME": str(home), "NO_COLOR": "1"}
    env.pop("HM_PLUGIN_PATH", None)
    env.pop("HM_CACHE_DIR", None)
    return env


def compare_commit(engine: Engine, base: Path, repeats: int) -> None:
    """harmont's image commit against hm's workspace snapshot, for the same 64 MiB."""

    def podman(*args: str) -> None:
        engine.podman(*args)

    made = base / "made"
    podman(
        "run", "--name", "hm-bench-source", IMAGE, "sh", "-c", MAKE.replace("out/", "/out/").replace("sleep 1; ", "")
    )
    try:
        podman("cp", "hm-bench-source:/out", str(made))  # the same files, on this machine
        commit_s, get_s, snap_s, restore_s = [], [], [], []
        for n in range(repeats):
            tag = f"localhost/hm-bench-commit:{n}"
            commit_s.append(_clock(lambda tag=tag: podman("commit", "hm-bench-source", tag)))  # type: ignore[misc]
            target = base / f"from-image-{n}"

            def get_back(tag: str = tag, target: Path = target) -> None:
                podman("create", "--name", "hm-bench-restore", tag, "true")
                podman("cp", "hm-bench-restore:/out", str(target))
                podman("rm", "hm-bench-restore")

            get_s.append(_clock(get_back))
            shutil.rmtree(target)
            podman("rmi", tag)
            store = CacheStore(base / f"store-{n}")
            store.ensure()
            snap_s.append(_clock(lambda store=store: snapshot(store, made)))  # type: ignore[misc]
            nodes = snapshot(store, made).files
            with tempfile.TemporaryDirectory(prefix="hm-bench-restore-") as into:
                restore_s.append(_clock(lambda nodes=nodes, into=into, store=store: restore(store, nodes, Path(into))))  # type: ignore[misc]
            shutil.rmtree(store.root)
    finally:
        engine.podman("rm", "-f", "hm-bench-source", check=False)
    c, g, s, r = (_median_ms(v) for v in (commit_s, get_s, snap_s, restore_s))
    print(f"image commit (harmont) vs workspace snapshot (hm), the same 64 MiB in 2049 files, medians of {repeats}:")
    print(f"  store:   podman commit          {c:7.0f} ms   hm snapshot (empty store) {s:7.0f} ms   {c / s:.1f}x")
    print(f"  restore: create + cp out + rm   {g:7.0f} ms   hm restore                {r:7.0f} ms   {g / r:.1f}x")


def _clock(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compare-commit", action="store_true", help="also measure podman commit (harmont's way)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=None,
        help="where the projects, caches and run folders go (default: the system's temporary folder); "
        "/dev/shm measures hm rather than the disk",
    )
    args = parser.parse_args()
    if args.scratch is not None:
        os.environ["TMPDIR"] = str(args.scratch)  # the runs' folders too (tempfile in hm)
        tempfile.tempdir = str(args.scratch)
    with tempfile.TemporaryDirectory(prefix="hm-bench-cache-") as tmp_name:
        tmp = Path(tmp_name)
        print(f"scratch folder: {tmp.parent}")
        bench_runner("shell runner", _project(tmp, "shell", None), _env(tmp / "shell-home"), args.repeats, tmp)
        missing = podman_missing()
        if missing is not None:
            print(f"container runner: skipped ({missing}; run .ci/install-container-engine)")
            return 0
        (tmp / "engine").mkdir()
        with podman_service(tmp / "engine") as engine:
            env = {**_env(tmp / "container-home"), "DOCKER_HOST": engine.docker_host}
            bench_runner("container runner", _project(tmp, "container", IMAGE), env, args.repeats, tmp)
            if args.compare_commit:
                compare_commit(engine, tmp, args.repeats)
            left = engine.containers()
        if left:
            print(f"containers left behind: {left}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
