"""Per-step cost of ``hm run`` (issue 10), against ``make`` in the same run.

- shell ``true`` steps: N steps of ``true`` on the shell runner, ``-j 1``, ``--format
  json`` to /dev/null; per step = (time of N steps - time of 1) / (N - 1). The same
  for ``make -j1`` and ``ninja -j1`` with N targets whose recipe is ``true``.
  Target: <= 1.5x make's per-step cost.
- no-op steps: N steps on the noop-executor fixture (nothing runs): hm's own cost
  of a step. Target: <= 0.3 ms per step. Its peak RSS: <= 47.9 MiB (issue 10:
  10% over the 43.5 MiB measured before).
- parallel: two CPU-bound shell steps, ``-j 2`` against ``-j 1``. Target: <= 0.6.

    python -m bench.steps [--repeats R] [--steps N]
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.harness import Row, cli, fixture, hm, hm_env, interleaved, median, run, scratch, timed

CPU_CMD = "i=0; while [ $i -lt 1500000 ]; do i=$((i+1)); done"


def write_ir(path: Path, steps: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps({"version": "0", "slug": path.stem, "steps": steps}))
    return path


def _commands(n: int, cmd: str, runner: str | None = None) -> list[dict[str, object]]:
    step: dict[str, object] = {"kind": "command", "cmd": cmd}
    if runner:
        step["runner"] = runner
    return [{**step, "key": f"s{i}"} for i in range(n)]


def _makefile(path: Path, n: int) -> Path:
    names = " ".join(f"t{i}" for i in range(n))
    rules = "".join(f"t{i}:\n\t@true\n" for i in range(n))
    path.write_text(f".PHONY: all {names}\nall: {names}\n{rules}")
    return path


def _ninja(path: Path, n: int) -> Path:
    rules = "rule t\n  command = true\n" + "".join(f"build t{i}: t\n" for i in range(n))
    path.write_text(rules + f"default {' '.join(f't{i}' for i in range(n))}\n")
    return path


def rows(repeats: int = 5, steps: int = 1000) -> list[Row]:
    out: list[Row] = []
    with scratch() as d:
        tmp = Path(d)
        proj = tmp / "project"  # an empty project: the workspace each step starts from
        proj.mkdir()
        env = hm_env(HM_HOME=str(tmp / "home"), HM_WORK_DIR=str(tmp / "work"))
        many = write_ir(tmp / "many.json", _commands(steps, "true"))
        one = write_ir(tmp / "one.json", _commands(1, "true"))
        mk_many, mk_one = _makefile(tmp / "many.mk", steps), _makefile(tmp / "one.mk", 1)
        (tmp / "many").mkdir()
        (tmp / "one").mkdir()
        _ninja(tmp / "many" / "build.ninja", steps)
        _ninja(tmp / "one" / "build.ninja", 1)
        run(hm("run", "--file", str(one), "--format", "json"), env=env, cwd=proj)  # warms the manifest cache
        fns = [
            timed(hm("run", "--file", str(many), "--format", "json", "-j", "1"), env=env, cwd=proj),
            timed(hm("run", "--file", str(one), "--format", "json", "-j", "1"), env=env, cwd=proj),
            timed(["make", "-s", "-j1", "-f", str(mk_many)]),
            timed(["make", "-s", "-j1", "-f", str(mk_one)]),
        ]
        has_ninja = shutil.which("ninja") is not None
        if has_ninja:
            fns += [timed(["ninja", "-j1", "-C", str(tmp / "many")]), timed(["ninja", "-j1", "-C", str(tmp / "one")])]

            def reset() -> None:  # ninja keeps a log of what it built: forget it each time
                for sub in ("many", "one"):
                    for name in (".ninja_log", ".ninja_deps"):
                        (tmp / sub / name).unlink(missing_ok=True)

            nj_fns = fns[4:]
            fns[4:] = [lambda f=f: (reset(), f())[1] for f in nj_fns]
        t = interleaved(repeats, *fns)
        per = lambda a, b: (a - b) / (steps - 1) * 1000  # noqa: E731
        hm_ms, make_ms = per(t[0], t[1]), per(t[2], t[3])
        out.append(
            Row(
                f"{steps} shell `true` steps, -j 1",
                hm_ms,
                "ms/step",
                "make -j1",
                make_ms,
                target="<= 1.5x",
                met=hm_ms <= 1.5 * make_ms,
            )
        )
        if has_ninja:
            out.append(Row("  (ninja -j1, for comparison)", per(t[4], t[5]), "ms/step"))

        noop_env = {**env, "HM_PLUGIN_PATH": str(fixture("noop-executor"))}
        noop_many = write_ir(tmp / "noop-many.json", _commands(steps, "x", "noop"))
        noop_one = write_ir(tmp / "noop-one.json", _commands(1, "x", "noop"))
        run(hm("run", "--file", str(noop_one), "--format", "json"), env=noop_env, cwd=proj)
        runs_many, runs_one = [], []
        for _ in range(repeats):
            runs_many.append(run(hm("run", "--file", str(noop_many), "--format", "json"), env=noop_env, cwd=proj))
            runs_one.append(run(hm("run", "--file", str(noop_one), "--format", "json"), env=noop_env, cwd=proj))
        noop_ms = per(median([r.seconds for r in runs_many]), median([r.seconds for r in runs_one]))
        out.append(
            Row(f"{steps} no-op steps (noop fixture)", noop_ms, "ms/step", target="<= 0.3 ms", met=noop_ms <= 0.3)
        )
        rss = median([r.peak_rss_mib for r in runs_many])
        out.append(Row(f"  peak RSS of the {steps} no-op steps", rss, "MiB", target="<= 47.9 MiB", met=rss <= 47.9))

        cpu = write_ir(tmp / "cpu.json", [{"kind": "command", "key": k, "cmd": CPU_CMD} for k in ("a", "b")])
        j1, j2 = interleaved(
            repeats,
            timed(hm("run", "--file", str(cpu), "--format", "json", "-j", "1"), env=env, cwd=proj),
            timed(hm("run", "--file", str(cpu), "--format", "json", "-j", "2"), env=env, cwd=proj),
        )
        out.append(Row("2 CPU-bound shell steps, -j 2", j2, "s", "-j 1", j1, target="<= 0.6x", met=j2 / j1 <= 0.6))
    return out


def main() -> int:
    return cli(rows, __doc__, repeats=5, steps=1000)


if __name__ == "__main__":
    raise SystemExit(main())
