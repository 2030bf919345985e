"""Container step overhead (issue 11): a ``true`` step on the container runner through
``hm run`` against ``podman run --rm IMAGE true``, both against the same Podman API
service (a private one this script starts, as the tests do), medians of N runs.

Printed:

- ``podman run --rm``: ``podman --remote run --rm IMAGE true`` (the same engine, the
  same API: create, attach, start, wait, remove);
- ``hm run`` (whole CLI): ``hm run -f true.json`` wall time, which includes starting
  Python, reading the plugin manifests, validation and the run record;
- ``hm step``: the step's own ``duration_ms`` from ``step_finished`` (what the runner
  costs: workspace, image check, the container's life and removal).

Target: ``hm run`` / ``podman run`` <= 1.2.

    python -m bench.container [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "container"))

from container_engine import IMAGE, Engine, podman_missing, podman_service  # noqa: E402


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    missing = podman_missing()
    if missing is not None:
        sys.exit(f"bench.container: {missing} (run .ci/install-container-engine)")
    with tempfile.TemporaryDirectory(prefix="hm-bench-container-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "engine").mkdir()
        (tmp / "project").mkdir()
        with podman_service(tmp / "engine") as engine:
            return _bench(engine, tmp / "project", args.repeats)


def _bench(engine: Engine, project: Path, repeats: int) -> int:
    ir = project / "true.json"
    steps = [{"kind": "command", "key": "t", "cmd": "true", "image": IMAGE}]
    ir.write_text(json.dumps({"version": "0", "slug": "bench", "steps": steps}))
    # HM_HOME outside the project: its run records would join every next workspace
    home = project.parent / "home"
    env = {**os.environ, "DOCKER_HOST": engine.docker_host, "HM_HOME": str(home), "NO_COLOR": "1"}
    env.pop("HM_PLUGIN_PATH", None)
    podman = ["podman", "--remote", "--url", engine.docker_host, "run", "--rm", IMAGE, "true"]
    hm = [sys.executable, "-m", "hm", "run", "-f", str(ir), "--format", "json"]
    # warm up both (page cache, manifest cache, the engine's first container)
    _timed(podman, env, project)
    _timed(hm, env, project)
    podman_s, hm_s, step_s = [], [], []
    for _ in range(repeats):  # interleaved, so drift hits both alike
        podman_s.append(_timed(podman, env, project)[0])
        took, out = _timed(hm, env, project)
        hm_s.append(took)
        done = [json.loads(line) for line in out.splitlines() if '"step_finished"' in line]
        step_s.append(done[0]["duration_ms"] / 1000)
    left = engine.containers()
    p, h, s = statistics.median(podman_s), statistics.median(hm_s), statistics.median(step_s)
    print(f"container step overhead, medians of {repeats} runs (Podman API service, image {IMAGE}):")
    print(f"  podman run --rm IMAGE true   {p * 1000:7.0f} ms")
    print(f"  hm run (whole CLI)           {h * 1000:7.0f} ms   ratio {h / p:.2f}x  (target <= 1.2x)")
    print(f"  hm step (runner only)        {s * 1000:7.0f} ms   ratio {s / p:.2f}x")
    if left:
        print(f"  containers left behind: {left}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
