"""Step output to ``hm run --format json`` on /dev/null (issue 10), against ``awk``
writing the same bytes to /dev/null in the same run.

- emit per line: one step whose runner calls ``emit_step_log`` once per line
  (the crashy-runner fixture's ``flood``), in process and through a worker
  (``--isolate``). Targets: >= 600k lines/s in process, >= 300k through a worker.
- shell: one shell step printing 1,000,000 lines of 100 bytes. Target: >= 1.5M
  lines/s. Its peak RSS: <= 39.4 MiB (issue 10: 10% over the 35.8 MiB before).

Lines per second of the whole command (Python start-up and plugin loading included).

    python -m bench.logs [--repeats R] [--lines L]
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import Row, cli, fixture, hm, hm_env, interleaved, median, run, scratch, timed
from bench.steps import write_ir


def awk_cmd(lines: int) -> str:
    return "awk 'BEGIN { for (i = 0; i < " + str(lines) + '; i++) printf "%099d\\n", i }\''


def rows(repeats: int = 5, lines: int = 1_000_000) -> list[Row]:
    out: list[Row] = []
    with scratch() as d:
        tmp = Path(d)
        proj = tmp / "project"  # an empty project: the workspace each step starts from
        proj.mkdir()
        env = hm_env(HM_HOME=str(tmp / "home"), HM_WORK_DIR=str(tmp / "work"))
        flood_env = {**env, "HM_PLUGIN_PATH": str(fixture("crashy-runner"))}
        flood = write_ir(
            tmp / "flood.json", [{"kind": "command", "key": "f", "cmd": f"flood {lines}", "runner": "crashy"}]
        )
        shell = write_ir(tmp / "shell.json", [{"kind": "command", "key": "p", "cmd": awk_cmd(lines)}])
        run(hm("run", "--file", str(flood), "--format", "json"), env=flood_env, cwd=proj)  # warms the manifest cache
        raw, inproc, worker = interleaved(
            repeats,
            timed(["sh", "-c", awk_cmd(lines)]),
            timed(hm("run", "--file", str(flood), "--format", "json"), env=flood_env, cwd=proj),
            timed(hm("run", "--file", str(flood), "--format", "json", "--isolate"), env=flood_env, cwd=proj),
        )
        rate = lambda t: lines / t  # noqa: E731
        out.append(
            Row(
                "emit_step_log per line, in process",
                rate(inproc),
                "lines/s",
                "awk > /dev/null",
                rate(raw),
                target=">= 600k lines/s",
                met=rate(inproc) >= 600_000,
            )
        )
        out.append(
            Row(
                "emit_step_log per line, worker",
                rate(worker),
                "lines/s",
                "awk > /dev/null",
                rate(raw),
                target=">= 300k lines/s",
                met=rate(worker) >= 300_000,
            )
        )
        shell_runs = [
            run(hm("run", "--file", str(shell), "--format", "json"), env=env, cwd=proj) for _ in range(repeats)
        ]
        t = median([r.seconds for r in shell_runs])
        out.append(
            Row(
                f"{lines // 1000}k x 100 B lines, shell step",
                rate(t),
                "lines/s",
                "awk > /dev/null",
                rate(raw),
                target=">= 1.5M lines/s",
                met=rate(t) >= 1_500_000,
            )
        )
        rss = median([r.peak_rss_mib for r in shell_runs])
        out.append(Row("  peak RSS of that run", rss, "MiB", target="<= 39.4 MiB", met=rss <= 39.4))
    return out


def main() -> int:
    return cli(rows, __doc__, repeats=5, lines=1_000_000)


if __name__ == "__main__":
    raise SystemExit(main())
