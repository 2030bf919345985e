"""A plugin as the rest of hm sees it: its manifest and typed capability calls.

:class:`Plugin` encodes the input struct, calls through its transport with a
fresh call handle, and turns the ``(status, bytes)`` answer into the output
struct or a :class:`~hm.errors.PluginCallError` — the one translator of plugin
status codes (``translate``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec

from hm.errors import PluginCallError, PluginLoadError
from hm.runtime.calls import CallContext
from hm.runtime.host_services import HostServices
from hm.runtime.loader import load_library
from hm.runtime.manifest import decode_manifest
from hm.runtime.transport import InProcessTransport, Op, Transport
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


class Plugin:
    """One loaded plugin."""

    __slots__ = ("_call", "_name", "_path", "manifest", "transport")

    def __init__(self, manifest: PluginManifest, transport: Transport) -> None:
        self.manifest = manifest
        self.transport = transport
        # Bound once: every capability call needs them, and attribute chains cost.
        self._name = manifest.name
        self._path = transport.path
        self._call = transport.call

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def path(self) -> str:
        return self._path

    def execute_step(self, inp: ExecutorInput, services: HostServices) -> StepResult:
        return self._invoke(_EXECUTE_STEP, "execute_step", inp, StepResult, services, inp.step.key)

    def on_hook_event(self, event: HookEvent, services: HostServices) -> HookOutcome:
        step_key = getattr(event.event, "step_key", None)
        return self._invoke(_ON_HOOK_EVENT, "on_hook_event", event, HookOutcome, services, step_key)

    def run_subcommand(self, inp: SubcommandInput, services: HostServices) -> ExitInfo:
        return self._invoke(_RUN_SUBCOMMAND, "run_subcommand", inp, ExitInfo, services, None)

    def _invoke(
        self, op: int, op_name: str, message: object, out_type: type[T], services: HostServices, step_key: str | None
    ) -> T:
        ctx = _tuple_new(CallContext, (self._name, self._path, op_name, services, step_key))
        status, data = self._call(op, _encode(message), ctx)
        if status == 0:  # HM_OK: decode inline; translate() handles every other case
            try:
                return _decoders[out_type].decode(data)  # type: ignore[no-any-return]
            except (msgspec.ValidationError, msgspec.DecodeError):
                pass
        return translate(status, data, out_type, plugin=self._name, path=self._path, op=op_name)


def translate(status: int, data: bytes, out_type: type[T], *, plugin: str, path: str, op: str) -> T:
    """Map a capability's status and output bytes to ``out_type`` or raise PluginCallError."""
    if status == Status.OK:
        try:
            return _decoders[out_type].decode(data)  # type: ignore[no-any-return]
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
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
        what = f"{err.title}: {err.message}" if err.title else err.message
        hint = err.suggestion
        if err.retry_commands:
            hint = f"{hint + '; ' if hint else ''}retry with: {' ; '.join(err.retry_commands)}"
        raise PluginCallError(
            f"{what} [{err.code}]", path=path, plugin=plugin, code=err.code, hint=hint, retryable=err.retryable
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
        what += f": {report.message} [{report.code}]" if report else " without an error report"
    raise PluginCallError(what, path=path, plugin=plugin, code=name.lower(), hint="report this to the plugin's author")


def _optional_error(data: bytes) -> PluginError | None:
    if not data:
        return None
    try:
        return _decoders[PluginError].decode(data)  # type: ignore[no-any-return]
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def open_plugin(path: Path, services: HostServices | None = None) -> Plugin:
    """Load the library at ``path`` in this process and read its manifest.

    :raises PluginLoadError: the library cannot be loaded or its manifest is wrong.
    """
    native = load_library(path)
    transport = InProcessTransport(native)
    ctx = CallContext(Path(native.path).stem, native.path, "manifest", services or HostServices())
    status, data = transport.manifest(ctx)
    if status != Status.OK:
        try:
            name = Status(status).name
        except ValueError:
            name = str(status)
        raise PluginLoadError(
            f"its manifest function failed with status {name}",
            path=native.path,
            hint="run `hm plugin check` on it, or report this to the plugin's author",
        )
    return Plugin(decode_manifest(data, path=native.path), transport)
