"""``hm --help`` start-up with plugins on the path (manifests cached) against none (issue 4).

Both runs use the same warm HM_HOME; the first listing fills the manifest cache and
is not timed. Prints medians of N runs and the ratio.

    python bench/bench_cli_startup.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "build" / "fixtures"


def timed_help(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hm", "--help"], capture_output=True, env=env, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description="hm --help start-up benchmark")
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        base = {**os.environ, "HM_HOME": home}
        base.pop("HM_PLUGIN_PATH", None)
        with_plugins = {**base, "HM_PLUGIN_PATH": str(FIXTURES)}
        count = len(list(FIXTURES.glob("*.so")))
        timed_help(with_plugins)  # fills the manifest cache
        none = statistics.median(timed_help(base) for _ in range(args.repeats))
        many = statistics.median(timed_help(with_plugins) for _ in range(args.repeats))
    print(f"hm --help, bundled plugins only:       median {none * 1000:6.0f} ms")
    print(f"hm --help, +{count} cached fixture plugins: median {many * 1000:6.0f} ms")
    print(f"ratio {many / none:.2f}x ({(many - none) * 1000 / max(count, 1):.1f} ms per plugin)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
