"""Start-up of the commands people type most (issue 10), against ``python -c
"import typer"`` in the same run: the floor of any typer CLI on this Python.

- ``hm --help`` and a warm ``hm plugin list`` (manifests cached, every fixture on
  the plugin path). Target: <= 1.5x the floor.
- a cold ``hm plugin list`` of every fixture (a fresh HM_HOME each time, so each
  library is probed in a child process). Target: <= 0.4 s.

    python -m bench.startup [--repeats R]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.harness import FIXTURES, SUFFIX, Row, cli, hm, hm_env, interleaved, run, scratch, timed


def rows(repeats: int = 11) -> list[Row]:
    out: list[Row] = []
    count = len(list(FIXTURES.glob(f"*{SUFFIX}")))
    with scratch() as d:
        tmp = Path(d)
        warm = hm_env(HM_HOME=str(tmp / "warm"), HM_PLUGIN_PATH=str(FIXTURES))
        run(hm("plugin", "list"), env=warm)  # fills the manifest cache

        def cold() -> float:
            home = tmp / "cold"
            shutil.rmtree(home, ignore_errors=True)
            return run(hm("plugin", "list"), env={**warm, "HM_HOME": str(home)}).seconds

        typer_s, help_s, list_s, cold_s = interleaved(
            repeats,
            timed([sys.executable, "-c", "import typer"]),
            timed(hm("--help"), env=warm),
            timed(hm("plugin", "list"), env=warm),
            cold,
        )
    ms = 1000
    floor = ("python -c 'import typer'", typer_s * ms)
    out.append(Row("hm --help", help_s * ms, "ms", *floor, target="<= 1.5x", met=help_s <= 1.5 * typer_s))
    out.append(
        Row(
            f"hm plugin list, warm ({count} plugins)",
            list_s * ms,
            "ms",
            *floor,
            target="<= 1.5x",
            met=list_s <= 1.5 * typer_s,
        )
    )
    out.append(Row(f"hm plugin list, cold ({count} plugins)", cold_s * ms, "ms", target="<= 400 ms", met=cold_s <= 0.4))
    return out


def main() -> int:
    return cli(rows, __doc__, repeats=11)


if __name__ == "__main__":
    raise SystemExit(main())
