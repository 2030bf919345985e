"""``--format human``: live progress on stderr, then a summary.

On a terminal (and without ``NO_COLOR``) a rich live view shows the running steps
with their elapsed time and last line of output, and prints each finished step
above it. Elsewhere (CI logs, pipes) it prints plain lines: one per step event and
each output line prefixed with its step key. The summary lists every step with
its status and duration and, for each step that did not succeed, the tail of its
output.

A step restored from the step cache says ``cached`` where it finishes and in the
summary; the log it replays is marked ``(cached)`` in the plain view.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from hm.safe_text import printable
from hm_plugin_sdk.protocol import (
    BuildEvent,
    BuildFinished,
    BuildStarted,
    PluginEventEmitted,
    StepFinished,
    StepLog,
    StepQueued,
    StepStarted,
)

_MARK = {
    "succeeded": ("✓", "green"),
    "failed": ("✗", "red"),
    "timed_out": ("⏱", "red"),
    "cancelled": ("■", "yellow"),
    "skipped": ("-", "dim"),
    "error": ("!", "red"),
}


def _seconds(ms: int) -> str:
    return f"{ms / 1000:.1f}s"


def _safe(text: str) -> str:
    """Plugin- or file-made text for rich markup: no control characters, no markup."""
    return escape(printable(text))


class HumanSink:
    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self._stream = stream or sys.stderr
        self.console = Console(file=self._stream, highlight=False, soft_wrap=True)
        if live is None:
            live = self._stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        #: A step's own colours are kept on a colour terminal; other escapes never.
        self._colour = bool(live)
        self._running: dict[str, tuple[float, str, str]] = {}  # key -> (start, runner, last line)
        #: Steps waiting for a slot, in the order they queued.
        self._queued: dict[str, None] = {}
        self._total = 0
        self._done = 0
        #: The live view is drawn from another thread (rich's refresh): it reads
        #: these under the lock the events update them with.
        self._lock = threading.Lock()
        self._cached: set[str] = set()  # steps restored from the step cache
        self._live = (
            Live(console=self.console, refresh_per_second=8, transient=True, get_renderable=self._view)
            if live
            else None
        )

    # -- events -------------------------------------------------------------------
    def __call__(self, event: BuildEvent) -> None:
        if type(event) is StepLog:
            self._log(event)
        elif isinstance(event, BuildStarted):
            self._total = event.steps
            self._print(f"[bold]▶ {_safe(event.pipeline)}[/] — {event.steps} step(s), run {event.run_id}")
            if self._live is not None:
                self._live.start()
        elif isinstance(event, StepQueued):
            with self._lock:
                self._queued[event.step_key] = None
        elif isinstance(event, StepStarted):
            with self._lock:
                self._queued.pop(event.step_key, None)
                self._running[event.step_key] = (time.monotonic(), event.runner, "")
            if self._live is None:
                self._print(f"  [cyan]start[/]  {_safe(event.step_key)} [dim]({_safe(event.runner)})[/]")
        elif isinstance(event, StepFinished):
            with self._lock:
                self._queued.pop(event.step_key, None)
                self._running.pop(event.step_key, None)
                self._done += 1
            mark, colour = _MARK.get(event.status, ("?", ""))
            detail = f" — {_safe(event.message)}" if event.message and event.status != "succeeded" else ""
            took = f" [dim]{_seconds(event.duration_ms)}[/]" if event.status != "skipped" else ""
            if event.cache == "hit":
                self._cached.add(event.step_key)
                detail = " [cyan]cached[/]"
            self._print(f"  [{colour}]{mark} {_safe(event.step_key)}[/]{took}{detail}")
        elif isinstance(event, PluginEventEmitted):
            self._print(f"  [dim]event {_safe(event.plugin)}:{_safe(event.name)} {_safe(str(event.data))}[/]")
        elif isinstance(event, BuildFinished):
            if self._live is not None:
                self._live.stop()

    def _log(self, event: StepLog) -> None:
        if self._live is not None:
            with self._lock:
                running = self._running.get(event.step_key)
                if running is not None:  # never bring back a step that finished
                    self._running[event.step_key] = (running[0], running[1], printable(event.line))
        else:
            mark = " (cached)" if event.replayed else ""
            self._stream.write(f"  {printable(event.step_key)}{mark} | {printable(event.line)}\n")

    def _print(self, markup: str) -> None:
        self.console.print(markup)

    def _view(self) -> Group:
        """What the live region shows: the running steps, those queued, and a count."""
        now = time.monotonic()
        with self._lock:
            running = list(self._running.items())
            queued = list(self._queued)
            done, total = self._done, self._total
        table = Table.grid(padding=(0, 1))
        for key, (start, _runner, line) in running:
            table.add_row(
                Spinner("dots"),
                Text(printable(key), style="bold"),
                Text(f"{now - start:.1f}s", style="dim"),
                Text(line[-100:], style="dim", no_wrap=True, overflow="ellipsis"),
            )
        parts: list[Table | Text] = [table]
        if queued:
            shown = ", ".join(printable(k) for k in queued[:8]) + (", …" if len(queued) > 8 else "")
            parts.append(Text(f"  queued: {shown}", style="dim"))
        parts.append(Text(f"  {done}/{total} steps done, {len(running)} running, {len(queued)} queued", style="dim"))
        return Group(*parts)

    def warning(self, text: str) -> None:
        self._print(f"[yellow]warning:[/] {_safe(text)}")

    def final(self, event: BuildFinished) -> None:
        """The emergency exit's last line (the summary will not come)."""
        if self._live is not None and self._live.is_started:
            self._live.stop()
        self._stream.write(f"build {event.status}: {printable(event.message or '')}\n")
        self._stream.flush()

    # -- summary ------------------------------------------------------------------
    def summary(self, outcomes: list[tuple[str, str, int, str | None, list[str]]], final: BuildFinished) -> None:
        """Steps in plan order: (key, status, duration_ms, message, tail)."""
        for key, status, _, _, tail in outcomes:
            if status in ("failed", "timed_out", "error") and tail:
                lines = f"{len(tail)} line{'' if len(tail) == 1 else 's'}"
                self._print(f"\n[bold red]── output of {_safe(key)} (last {lines}) ──[/]")
                for line in tail:
                    self.console.print(Text.from_ansi(line) if self._colour else Text(printable(line)))
        width = max((len(k) for k, *_ in outcomes), default=0)
        self._print("")
        for key, status, ms, *_ in outcomes:
            mark, colour = _MARK.get(status, ("?", ""))
            took = _seconds(ms) if status != "skipped" else ""
            cached = " [cyan]cached[/]" if key in self._cached else ""
            self._print(f"  [{colour}]{mark}[/] {_safe(key.ljust(width))}  [{colour}]{status:<9}[/] {took}{cached}")
        colour = "green" if final.status == "succeeded" else "red"
        said = f": {_safe(final.message)}" if final.message else ""
        self._print(f"[bold {colour}]build {final.status}[/] in {_seconds(final.duration_ms)}{said}")

    def close(self) -> None:
        if self._live is not None and self._live.is_started:
            self._live.stop()
        self._stream.flush()
