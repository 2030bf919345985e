"""The spans of one run, made from its events: ``hm run`` and one per step.

:class:`RunSpans` is an output sink of the run's event bus, so the scheduler
needs no tracing code: ``build_started`` opens the run's span, ``step_started``
a step's (its child), ``step_finished`` closes it with the step's status, exit
code and cache outcome, ``build_finished`` closes the run's. Times are the
events' own. A plugin call's span (:func:`plugin_call_span`) is the child of its
step's span, found by step key, whatever thread makes the call.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from hm import telemetry
from hm_plugin_sdk.protocol import BuildEvent, BuildFinished, BuildStarted, StepFinished, StepLog, StepStarted

__all__ = ["RunSpans", "plugin_call_span"]

#: The step spans of the running run, by step key (one run per hm process).
_steps: dict[str, Any] = {}
_run_span: list[Any] = []
_lock = threading.Lock()


def _ns(ts: str) -> int:
    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1e9)


def step_span(key: str | None) -> Any:
    """The open span of step ``key`` (or the run's), for a child made elsewhere."""
    with _lock:
        if key is not None and key in _steps:
            return _steps[key]
        return _run_span[0] if _run_span else None


def annotate_step(key: str, **attributes: Any) -> None:
    """Add attributes to step ``key``'s span (the cluster names its worker)."""
    span = step_span(key)
    if span is not None:
        span.set_attributes({f"hm.{k}": v for k, v in attributes.items() if v is not None})


@contextlib.contextmanager
def plugin_call_span(plugin: Any, op: str, step_key: str | None) -> Iterator[None]:
    parent = step_span(step_key)
    attrs = {"hm.plugin": plugin.name, "hm.plugin.path": plugin.path, "hm.op": op}
    if step_key is not None:
        attrs["hm.step"] = step_key
    with telemetry.span(f"{plugin.name} {op}", attrs, parent=parent):
        yield


class RunSpans:
    """Bus sink: see the module's docstring."""

    def __init__(self) -> None:
        self._tracer = telemetry.tracer()
        self._run: Any = None

    def __call__(self, event: BuildEvent) -> None:
        if self._tracer is None:
            return
        from opentelemetry import trace

        if isinstance(event, BuildStarted):
            self._run = self._tracer.start_span(
                f"hm run {event.pipeline}",
                start_time=_ns(event.ts),
                attributes={"hm.run_id": event.run_id, "hm.pipeline": event.pipeline, "hm.steps": event.steps},
            )
            with _lock:
                _run_span[:] = [self._run]
        elif isinstance(event, StepStarted) and self._run is not None:
            span = self._tracer.start_span(
                f"step {event.step_key}",
                context=trace.set_span_in_context(self._run),
                start_time=_ns(event.ts),
                attributes={"hm.step": event.step_key, "hm.runner": event.runner, "hm.plugin": event.plugin},
            )
            with _lock:
                _steps[event.step_key] = span
        elif isinstance(event, StepFinished):
            with _lock:
                span = _steps.pop(event.step_key, None)
            if span is None and self._run is not None:  # a skipped step never started
                span = self._tracer.start_span(
                    f"step {event.step_key}",
                    context=trace.set_span_in_context(self._run),
                    start_time=_ns(event.ts),
                    attributes={"hm.step": event.step_key},
                )
            if span is not None:
                attrs = {"hm.status": event.status, "hm.exit_code": event.exit_code, "hm.cache": event.cache}
                span.set_attributes({k: v for k, v in attrs.items() if v is not None})
                if event.status not in ("succeeded", "skipped"):
                    span.set_status(trace.Status(trace.StatusCode.ERROR, event.message or event.status))
                span.end(end_time=_ns(event.ts))
        elif isinstance(event, BuildFinished) and self._run is not None:
            self._run.set_attributes({"hm.status": event.status, "hm.exit_code": event.exit_code})
            if event.exit_code != 0:
                self._run.set_status(trace.Status(trace.StatusCode.ERROR, event.message or event.status))
            self._run.end(end_time=_ns(event.ts))
            with _lock:
                _run_span.clear()
            self._run = None

    def logs(self, events: list[StepLog]) -> None:
        """Step output makes no spans (and must not cost a call per line)."""

    def warning(self, text: str) -> None:
        """Warnings are the terminal's."""

    def close(self) -> None:
        telemetry.flush()
