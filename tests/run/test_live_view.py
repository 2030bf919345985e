"""The live view of ``--format human`` on a terminal: what it shows while a run
goes (running steps with their last line, queued steps, a done/total count), and
that a finished step never shows as running again."""

from __future__ import annotations

import io

from rich.console import Console

from hm.run.output_human import HumanSink
from hm_plugin_sdk.protocol import BuildStarted, StepFinished, StepLog, StepQueued, StepStarted

RUN = {"run_id": "r", "ts": "2026-12-08T00:00:00.000Z"}


def shown(sink: HumanSink) -> str:
    out = io.StringIO()
    Console(file=out, width=120, color_system=None).print(sink._view())
    return out.getvalue()


def test_running_queued_and_a_count_are_shown_and_a_finished_step_stays_finished() -> None:
    sink = HumanSink(io.StringIO(), live=False)
    sink._live = None  # the view is drawn by rich in a real terminal; here it is read directly
    sink(BuildStarted(**RUN, pipeline="ci", steps=3))
    for key in ("a", "b", "c"):
        sink(StepQueued(**RUN, step_key=key))
    sink(StepStarted(**RUN, step_key="a", runner="shell", plugin="shell"))
    sink._live = object()  # type: ignore[assignment]  # take the live branch of _log
    sink(StepLog(**RUN, step_key="a", stream="stdout", line="compiling \x1b[2Kx"))
    view = shown(sink)
    assert "a" in view and "compiling \\x1b[2Kx" in view
    assert "queued: b, c" in view
    assert "0/3 steps done, 1 running, 2 queued" in view
    sink._live = None
    sink(StepFinished(**RUN, step_key="a", status="succeeded", exit_code=0))
    sink._live = object()  # type: ignore[assignment]
    sink(StepLog(**RUN, step_key="a", stream="stdout", line="a late line"))  # must not bring 'a' back
    view = shown(sink)
    assert "a late line" not in view
    assert "1/3 steps done, 0 running, 2 queued" in view
