"""What every benchmark shares: a result row, medians, timing and peak memory of a
child command, and the one table ``python -m bench`` prints.

A row is a measurement next to the baseline it was measured against in the same
run (a raw cffi call, ``make``, ``python -c "import typer"``...), the ratio of the
two, and the target it is held to.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIX = {"darwin": ".dylib", "win32": ".dll"}.get(sys.platform, ".so")
FIXTURES = ROOT / "build" / "fixtures"


@dataclass
class Row:
    """One line of the table."""

    name: str
    value: float
    unit: str
    #: What the value is compared with, measured in the same run ("" for none).
    baseline: str = ""
    baseline_value: float | None = None
    #: ``value / baseline_value`` unless given (e.g. a speed-up).
    ratio: float | None = None
    #: e.g. ``"<= 1.5x"`` or ``">= 600k lines/s"``; ``met`` says whether it is.
    target: str = ""
    met: bool | None = None

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline_value:
            self.ratio = self.value / self.baseline_value


def fixture(name: str) -> Path:
    path = FIXTURES / f"{name}{SUFFIX}"
    if not path.exists():
        sys.exit(f"{path} is missing: run `python build.py fixtures` first")
    return path


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def interleaved(repeats: int, *fns: Callable[[], float]) -> list[float]:
    """The median of each ``fn`` over ``repeats`` rounds, the fns taking turns in
    every round so a change in the machine's load hits them alike."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            samples[i].append(fn())
    return [statistics.median(s) for s in samples]


def hm_env(**extra: str) -> dict[str, str]:
    """The environment for ``python -m hm``: this checkout's hm, no plugin path."""
    env = {k: v for k, v in os.environ.items() if k not in ("HM_PLUGIN_PATH", "HM_ISOLATE")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env.update(extra)
    return env


def scratch() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for HM_HOME, the run's work dir and the project.

    Under the user's cache directory, where hm's work dir is by default, not /tmp:
    on this VM an ``os.mkdir`` in /tmp costs 0.4-0.8 ms against 0.03 ms under
    /root on the same ext4, which would make the benchmark measure /tmp.
    """
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    base.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix="hm-bench-", dir=base)


def hm(*args: str) -> list[str]:
    return [sys.executable, "-m", "hm", *args]


@dataclass
class Ran:
    seconds: float
    peak_rss_mib: float


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> Ran:
    """Run ``cmd`` with stdout to /dev/null; its wall time and peak RSS (of the
    command itself, not its children). Fails loudly when the command fails."""
    with open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=devnull, stderr=subprocess.PIPE, env=env, cwd=cwd)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stderr.close()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err.decode(errors='replace')[-2000:]}")
    # ru_maxrss is KiB on Linux, bytes on macOS.
    rss = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
    return Ran(took, rss)


def timed(cmd: Sequence[str], **kw: object) -> Callable[[], float]:
    return lambda: run(cmd, **kw).seconds  # type: ignore[arg-type]


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "lines/s":
        return f"{value / 1000:,.0f}k {unit}"
    if abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return f"{text} {unit}".strip()


def print_table(rows: Sequence[Row], out: Callable[[str], None] = print) -> None:
    """One table: name, value, baseline, ratio, target and whether it is met."""
    cells = [
        (
            r.name,
            _fmt(r.value, r.unit),
            f"{r.baseline} {_fmt(r.baseline_value, r.unit)}".strip() if r.baseline else "",
            f"{r.ratio:.2f}x" if r.ratio is not None else "",
            r.target,
            "" if r.met is None else ("met" if r.met else "NOT met"),
        )
        for r in rows
    ]
    head = ("benchmark", "median", "baseline (same run)", "ratio", "target", "")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(len(head))]
    line = "  ".join("-" * w for w in widths)
    out("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip())
    out(line)
    for c in cells:
        out(
            "  ".join(
                v.ljust(w) if i in (0, 2, 4, 5) else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths, strict=True))
            ).rstrip()
        )


def cli(rows: Callable[..., Sequence[Row]], doc: str | None, **defaults: int) -> int:
    """``python -m bench.NAME``: one ``--NAME N`` option per keyword of ``rows``
    (the defaults given), then its table."""
    import argparse

    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=int, default=default)
    print_table(rows(**vars(parser.parse_args())))
    return 0
