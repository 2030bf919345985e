"""OpenTelemetry traces of hm: opt-in, through the standard ``OTEL_*`` variables.

Tracing is on when an OTLP endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) or ``OTEL_TRACES_EXPORTER=otlp`` is set,
and neither ``OTEL_SDK_DISABLED=true`` nor ``OTEL_TRACES_EXPORTER=none`` says
otherwise. Spans go out over OTLP/HTTP (protobuf) from a batch processor; the
SDK reads every other ``OTEL_*`` setting itself (headers, service name, …).

The SDK (``pip install 'hm[telemetry]'``) is imported only when tracing is on;
without it a run goes on untraced, with one warning. Nothing here is imported by
``hm --help``. Spans: ``hm run`` (``run_spans``), one per step, one per plugin
call (``set_call_observer`` in the runtime), one per step attempt on a cluster
worker (``hm.cluster.task``), one per ``hm-NAME`` extension.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["carrier", "enabled", "flush", "from_carrier", "shutdown", "span", "tracer"]

_lock = threading.Lock()
_tracer: Any = None
_provider: Any = None
_failed = False


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether the ``OTEL_*`` variables ask for traces."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none":
        return False
    return bool(exporter or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracer() -> Any:
    """hm's tracer, set up on first use; None when tracing is off or cannot be had."""
    global _tracer, _provider, _failed
    if _tracer is not None or _failed:
        return _tracer
    with _lock:
        if _tracer is not None or _failed:
            return _tracer
        if not enabled():
            _failed = True
            return None
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            _failed = True
            sys.stderr.write(
                f"warning: OTEL_* asks for traces, but {exc.name} is not installed; this run is not traced "
                "(install it with `pip install 'hm[telemetry]'`)\n"
            )
            return None
        from hm import __version__

        service = os.environ.get("OTEL_SERVICE_NAME") or "hm"
        provider = TracerProvider(resource=Resource.create({"service.name": service, "service.version": __version__}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _provider = provider
        _tracer = provider.get_tracer("hm", __version__)
        _install_call_observer()
        return _tracer


def _install_call_observer() -> None:
    """A span around every plugin capability call (``hm.runtime``'s one seam for it)."""
    from hm.runtime import set_call_observer
    from hm.telemetry.run_spans import plugin_call_span

    set_call_observer(plugin_call_span)


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, parent: Any = None) -> Iterator[Any]:
    """A span named ``name`` (the current span's child, or ``parent``'s); None when off."""
    t = tracer()
    if t is None:
        yield None
        return
    ctx = None
    if parent is not None:
        from opentelemetry import trace

        ctx = trace.set_span_in_context(parent)
    with t.start_as_current_span(name, context=ctx, attributes=dict(attributes or {})) as current:
        yield current


def carrier(of: Any = None) -> dict[str, str]:
    """The W3C trace context of ``of`` (a span) or of the current span, to send elsewhere."""
    if tracer() is None:
        return {}
    from opentelemetry import trace
    from opentelemetry.propagate import inject

    out: dict[str, str] = {}
    inject(out, context=trace.set_span_in_context(of) if of is not None else None)
    return out


def from_carrier(data: Mapping[str, str]) -> Any:
    """The context a :func:`carrier` describes (a parent for spans made here)."""
    from opentelemetry.propagate import extract

    return extract(dict(data))


def flush(timeout_ms: int = 2000) -> None:
    """Send what is batched (a cluster worker, at the end of a step)."""
    if _provider is not None:
        _provider.force_flush(timeout_ms)


def shutdown() -> None:
    """Send what is batched and stop the exporter (hm exits)."""
    global _tracer, _provider
    if _provider is not None:
        try:
            _provider.shutdown()
        except Exception:  # a collector that is gone must not change hm's exit code
            pass
        _provider = None
        _tracer = None
