"""A plugin as the rest of hm sees it: its manifest and typed capability calls.

:class:`Plugin` encodes the input struct, calls through its transport with a
fresh call handle, and turns the ``(status, bytes)`` answer into the output
struct or a :class:`~hm.errors.PluginCallError` — the one translator of plugin
status codes (``translate``). :func:`open_plugin` loads a library with the
transport its isolation names and reads and checks its manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeVar

import msgspec

from hm.errors import (
    PluginCallAbandoned,
    PluginCallError,
    PluginCrashed,
    PluginLoadError,
    PluginOutputTooLarge,
    render_plugin_report,
)
from hm.runtime.calls import CallContext
from hm.runtime.host_services import HostServices
from hm.runtime.limits import MAX_MANIFEST_BYTES, MAX_MESSAGE_BYTES
from hm.runtime.manifest import decode_manifest
from hm.runtime.transport import Isolation, Op, Transport, open_transport
from hm.runtime.vtable_check import check_capabilities
from hm_plugin_sdk.abi import Status
from hm_plugin_sdk.protocol import (
    ExecutorInput,
    ExitInfo,
    HookEvent,
    HookOutcome,
    PluginError,
    PluginManifest,
    StepResult,
    SubcommandInput,
)

T = TypeVar("T")

_encode = msgspec.msgpack.Encoder().encode
_tuple_new = tuple.__new__  # builds a CallContext without NamedTuple's Python-level __new__
_decoders: dict[type, msgspec.msgpack.Decoder] = {
    t: msgspec.msgpack.Decoder(t) for t in (StepResult, HookOutcome, ExitInfo, PluginError)
}
_EXECUTE_STEP, _ON_HOOK_EVENT, _RUN_SUBCOMMAND = int(Op.EXECUTE_STEP), int(Op.ON_HOOK_EVENT), int(Op.RUN_SUBCOMMAND)


Observer = Callable[["Plugin", str, "str | None"], AbstractContextManager[object]]
#: While hm traces (``hm.telemetry``): ``observer(plugin, op_name, step_key)`` gives
#: the context manager (a span) each capability call runs in.
_observer: Observer | None = None


def set_call_observer(observer: Observer | None) -> None:
    """Wrap every capability call of every plugin in ``observer``'s context (None: stop).

    It swaps ``Plugin._invoke``, so an untraced call pays nothing for tracing."""
    global _observer
    _observer = observer
    Plugin._invoke = Plugin._invoke_observed if observer is not None else Plugin._invoke_now


class Plugin:
    """One loaded plugin."""

    __slots__ = ("_call", "_name", "_owner", "_path", "manifest", "transport")

    def __init__(self, manifest: PluginManifest, transport: Transport) -> None:
        self.manifest = manifest
        self.transport = transport
        # Bound once: every capability call needs them, and attribute chains cost.
        self._name = manifest.name
        self._path = transport.path
        self._call = transport.call
        self._owner = transport.owner

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def path(self) -> str:
        return self._path

    @property
    def isolation(self) -> str:
        """``in-process`` or ``process``: whether a call can be stopped without hm
        (a worker's and a stdio plugin's can; the transport's ``kind`` says which)."""
        return "in-process" if self.transport.kind == "in-process" else "process"

    def context(self, op: str, services: HostServices, step_key: str | None = None) -> CallContext:
        """The context of a call to this plugin (for callers that use the transport directly)."""
        return CallContext(self._name, self._path, op, services, step_key, self._owner)

    def execute_step(self, inp: ExecutorInput, services: HostServices) -> StepResult:
        return self._invoke(_EXECUTE_STEP, "execute_step", inp, StepResult, services, inp.step.key)

    def on_hook_event(self, event: HookEvent, services: HostServices, *, timeout: float | None = None) -> HookOutcome:
        """``timeout`` stops the call where the transport can (an isolated plugin)."""
        step_key = getattr(event.event, "step_key", None)
        return self._invoke(_ON_HOOK_EVENT, "on_hook_event", event, HookOutcome, services, step_key, timeout)

    def run_subcommand(self, inp: SubcommandInput, services: HostServices) -> ExitInfo:
        return self._invoke(_RUN_SUBCOMMAND, "run_subcommand", inp, ExitInfo, services, None)

    def _invoke_observed(
        self,
        op: int,
        op_name: str,
        message: object,
        out_type: type[T],
        services: HostServices,
        step_key: str | None,
        timeout: float | None = None,
    ) -> T:
        assert _observer is not None
        with _observer(self, op_name, step_key):
            return self._invoke_now(op, op_name, message, out_type, services, step_key, timeout)

    def _invoke_now(
        self,
        op: int,
        op_name: str,
        message: object,
        out_type: type[T],
        services: HostServices,
        step_key: str | None,
        timeout: float | None = None,
    ) -> T:
        ctx = _tuple_new(CallContext, (self._name, self._path, op_name, services, step_key, self._owner))
        if timeout is None:
            status, data = self._call(op, _encode(message), ctx)
        else:
            status, data = self._call(op, _encode(message), ctx, timeout=timeout)
        if status == 0 and len(data) <= MAX_MESSAGE_BYTES:  # HM_OK: decode inline; translate() handles the rest
            try:
                return _decoders[out_type].decode(data)
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass
        return translate(status, data, out_type, plugin=self._name, path=self._path, op=op_name)

    #: Every capability call goes through here (:func:`set_call_observer` swaps it).
    _invoke = _invoke_now


def translate(status: int, data: bytes, out_type: type[T], *, plugin: str, path: str, op: str) -> T:
    """Map a capability's status and output bytes to ``out_type`` or raise PluginCallError."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise PluginCallError(
            f"{op} returned {len(data)} bytes, more than the {MAX_MESSAGE_BYTES} bytes a message may have",
            path=path,
            plugin=plugin,
            code="too_large",
            hint="this is a bug in the plugin; report it to its author",
        )
    if status == Status.OK:
        if not data:
            raise PluginCallError(
                f"{op} returned HM_OK with no output (a {out_type.__name__} was expected)",
                path=path,
                plugin=plugin,
                code="malformed_output",
                hint="this is a bug in the plugin; report it to its author",
            )
        try:
            return _decoders[out_type].decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError) as exc:
            raise PluginCallError(
                f"{op} returned a malformed {out_type.__name__}: {exc}",
                path=path,
                plugin=plugin,
                code="malformed_output",
                hint="this is a bug in the plugin; report it to its author",
            ) from None
    if status == Status.ERR_FAILED:
        err = _optional_error(data)
        if err is None:
            raise PluginCallError(
                f"{op} failed and its error report is not a valid PluginError",
                path=path,
                plugin=plugin,
                code="malformed_error",
                hint="this is a bug in the plugin; report it to its author",
            )
        what, hint = _rendered(err)
        raise PluginCallError(
            what, path=path, plugin=plugin, code=err.code, hint=hint, retryable=err.retryable, report=_report(err)
        )
    try:
        name = Status(status).name
    except ValueError:
        name = "unknown status"
    if status == Status.ERR_UNSUPPORTED:
        what = f"does not implement {op}"
    else:
        what = f"{op} returned {name} ({status})"
        report = _optional_error(data)  # the header lets a plugin explain any failure
        if report is not None:
            shown, hint = _rendered(report)
            raise PluginCallError(
                f"{what}: {shown}",
                path=path,
                plugin=plugin,
                code=name.lower(),
                hint=hint or "report this to the plugin's author",
                retryable=report.retryable,
                report=_report(report),
            )
        what += " without an error report"
    raise PluginCallError(what, path=path, plugin=plugin, code=name.lower(), hint="report this to the plugin's author")


def _rendered(err: PluginError) -> tuple[str, str | None]:
    return render_plugin_report(
        code=err.code,
        message=err.message,
        title=err.title,
        suggestion=err.suggestion,
        retryable=err.retryable,
        retry_commands=err.retry_commands,
        doc_url=err.doc_url,
    )


def _report(err: PluginError) -> dict[str, object]:
    return msgspec.to_builtins(err)


def _optional_error(data: bytes) -> PluginError | None:
    if not data:
        return None
    try:
        return _decoders[PluginError].decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return None


def open_plugin(
    path: Path,
    services: HostServices | None = None,
    *,
    isolation: Isolation = "in-process",
    manifest_timeout: float | None = None,
    **transport_options: object,
) -> Plugin:
    """Load the library at ``path`` with the transport ``isolation`` names and read
    its manifest. ``transport_options`` go to :func:`open_transport`.

    :raises PluginLoadError: the library cannot be loaded, its manifest is wrong,
        or it declares a capability whose vtable entry is NULL.
    """
    transport = open_transport(path, isolation, **transport_options)  # type: ignore[arg-type]
    try:
        return _read_manifest(transport, services, manifest_timeout)
    except BaseException:
        transport.kill()
        transport.close()
        raise


def _manifest_too_large(size: int, path: str) -> PluginLoadError:
    return PluginLoadError(
        f"its manifest is {size} bytes, more than the {MAX_MANIFEST_BYTES} bytes allowed",
        path=path,
        stage="manifest",
        hint="a manifest names the plugin and lists its capabilities; report this to the plugin's author",
    )


def _read_manifest(transport: Transport, services: HostServices | None, timeout: float | None) -> Plugin:
    shown = transport.path
    ctx = CallContext(Path(shown).stem, shown, "manifest", services or HostServices(), None, transport.owner)
    try:
        status, data = transport.manifest(ctx, timeout=timeout)
    except PluginCrashed as exc:
        raise PluginLoadError(
            exc.what,
            path=shown,
            plugin=exc.plugin,
            stage="crashed",
            hint="the plugin aborts or faults in its manifest function; report this to the plugin's author",
        ) from None
    except PluginCallAbandoned as exc:
        raise PluginLoadError(exc.what, path=shown, plugin=exc.plugin, stage="hung", hint=exc.hint) from None
    except PluginOutputTooLarge as exc:
        raise _manifest_too_large(exc.size, shown) from None
    if status != Status.OK:
        try:
            name = Status(status).name
        except ValueError:
            name = str(status)
        raise PluginLoadError(
            f"its manifest function failed with status {name}",
            path=shown,
            stage="manifest",
            hint="run `hm plugin check` on it, or report this to the plugin's author",
        )
    if len(data) > MAX_MANIFEST_BYTES:
        raise _manifest_too_large(len(data), shown)
    manifest = decode_manifest(data, path=shown)
    check_capabilities(manifest, transport.facts.offers if transport.facts else 0, shown)
    transport.set_name(manifest.name)
    return Plugin(manifest, transport)
