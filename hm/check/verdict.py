"""One sample call into a plugin, and whether its answer conforms.

The rules, for every capability call:

* ``HM_OK`` with bytes that decode as the capability's output struct: conforms.
* ``HM_ERR_FAILED`` with a well-formed ``PluginError``: conforms (a plugin may
  refuse a sample input), and the report notes it — unless its code is ``panic``:
  the plugin panicked on an ordinary input, and that fails.
* anything else (malformed output, a malformed error report, a status such as
  ``HM_ERR_INVALID_ARGUMENT`` or ``HM_ERR_UNSUPPORTED`` for a declared capability):
  fails, with the host's own description of what came back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
from hm_plugin_sdk.abi import Status
from hm_plugin_sdk.protocol import ExitInfo, HookOutcome, PluginError, StepResult

from hm.check.samples import Sample
from hm.errors import PluginCallError
from hm.runtime.calls import CallContext
from hm.runtime.plugin import Plugin, translate

__all__ = ["Answer", "call"]

_encode = msgspec.msgpack.Encoder().encode
_error_decoder = msgspec.msgpack.Decoder(PluginError)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one call returned, judged."""

    #: True when the answer conforms (see the module docstring).
    ok: bool
    #: What came back (``exit 0 (succeeded)``) or what is wrong with it.
    text: str
    #: The decoded output when the call succeeded.
    value: Any = None
    #: The plugin's error report when it answered ``HM_ERR_FAILED``.
    error: PluginError | None = None
    elapsed_ms: float = 0.0

    @property
    def fingerprint(self) -> tuple[object, ...]:
        """The part of the answer that must not change between calls with the same input:
        exit codes and statuses, a hook's decision, a failure's code."""
        v = self.value
        if isinstance(v, StepResult):
            return ("step", v.exit_code, v.status)
        if isinstance(v, HookOutcome):
            return ("hook", v.kind)
        if isinstance(v, ExitInfo):
            return ("exit", v.exit_code)
        if self.error is not None:
            return ("error", self.error.code)
        return ("bad", self.text)


def call(plugin: Plugin, sample: Sample, n: int) -> Answer:
    """Make the ``n``-th call of ``sample`` and judge the answer."""
    message, step_key = sample.build(n)
    ctx = CallContext(plugin.name, plugin.path, sample.op_name, sample.services, step_key)
    started = time.monotonic()
    try:
        status, data = plugin.transport.call(int(sample.op), _encode(message), ctx)
    finally:
        if sample.done is not None and step_key is not None:
            sample.done(step_key)
    elapsed = (time.monotonic() - started) * 1000
    answer = judge(plugin, sample, status, data)
    if sample.timeout_ms is not None and answer.ok and elapsed > sample.timeout_ms:
        return Answer(
            False,
            f"took {elapsed:.0f} ms, longer than its timeout_ms of {sample.timeout_ms}: hm gives up on such a call",
            elapsed_ms=elapsed,
        )
    return Answer(answer.ok, answer.text, answer.value, answer.error, elapsed)


def judge(plugin: Plugin, sample: Sample, status: int, data: bytes) -> Answer:
    """Apply the rules of the module docstring to one ``(status, bytes)`` answer."""
    if status == Status.ERR_FAILED:
        try:
            err = _error_decoder.decode(data)
        except (msgspec.ValidationError, msgspec.DecodeError):
            err = None
        if err is not None:
            if err.code == "panic":
                return Answer(False, f"{sample.op_name} panicked: {err.message} (PluginError code `panic`)", error=err)
            return Answer(True, f"answered HM_ERR_FAILED with PluginError [{err.code}]: {err.message}", error=err)
    try:
        value = translate(status, data, sample.out_type, plugin=plugin.name, path=plugin.path, op=sample.op_name)
    except PluginCallError as exc:
        what = exc.what
        if status == Status.ERR_UNSUPPORTED:
            what = f"returned HM_ERR_UNSUPPORTED: it {what}, although its manifest declares it"
        return Answer(False, what)
    return Answer(True, describe(value), value)


def describe(value: object) -> str:
    """An output struct in a few words: ``StepResult exit 0 (succeeded)``."""
    if isinstance(value, StepResult):
        text = f"StepResult exit {value.exit_code} ({value.status})"
        return f"{text}: {value.message}" if value.message else text
    if isinstance(value, HookOutcome):
        return "abort" + (f" ({value.reason})" if value.reason else "") if value.kind == "abort" else "continue"
    if isinstance(value, ExitInfo):
        text = f"ExitInfo exit {value.exit_code}"
        return f"{text}: {value.message}" if value.message else text
    return type(value).__name__
