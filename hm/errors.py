"""Every error hm shows a user, and the exit code each one maps to.

The tree::

    HmError                      what / where / hint, exit_code
    ├── UsageError               exit 2  — bad argument or option
    ├── PipelineError            exit 3  — a pipeline file or IR that cannot be run
    ├── ConfigError              exit 3  — a malformed .hm/config.toml or HM_* setting
    ├── PluginError              (base for problems attributed to one plugin)
    │   ├── PluginLoadError      exit 4  — cannot be loaded: missing symbol, ABI, manifest…
    │   ├── PluginConflictError  exit 4  — two plugins claim one runner / verb / default
    │   └── PluginCallError      exit 5  — a capability call failed or returned garbage
    │       ├── PluginCrashed    — the plugin's process died (signal, exit(), abort()) during the call
    │       ├── PluginOutputTooLarge — it answered with more bytes than a message may have
    │       └── PluginCallAbandoned — it did not stop within the grace period after a cancel or timeout
    └── BuildCancelled           exit 130

A message is built from three parts so every surface (human, JSON, logs) shows
the same thing: ``what`` happened, ``where`` (plugin name and path, step key,
file:line), and ``hint`` — what the user should do next.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Process exit codes. Stable: documented in the README, tested."""

    OK = 0
    STEP_FAILED = 1
    USAGE = 2
    PIPELINE_INVALID = 3
    PLUGIN_LOAD = 4
    PLUGIN_RUNTIME = 5
    HOOK_ABORTED = 6
    CANCELLED = 130


class HmError(Exception):
    """Base of every error hm reports to a user."""

    exit_code: ExitCode = ExitCode.PLUGIN_RUNTIME

    def __init__(self, what: str, *, where: str | None = None, hint: str | None = None) -> None:
        self.what = what
        self.where = where
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """``where: what; hint`` — the single line shown to the user."""
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.hint:
            text = f"{text}; {self.hint}"
        return text

    def to_dict(self) -> dict[str, object]:
        return {
            "error": type(self).__name__,
            "what": self.what,
            "where": self.where,
            "hint": self.hint,
            "exit_code": int(self.exit_code),
        }


class UsageError(HmError):
    exit_code = ExitCode.USAGE


class PipelineError(HmError):
    exit_code = ExitCode.PIPELINE_INVALID


class ConfigError(HmError):
    """The project's ``.hm/config.toml`` or an ``HM_*`` variable is malformed."""

    exit_code = ExitCode.PIPELINE_INVALID


class PluginError(HmError):
    """A problem attributed to one plugin library."""

    exit_code = ExitCode.PLUGIN_LOAD

    def __init__(
        self,
        what: str,
        *,
        path: str,
        plugin: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.plugin = plugin
        if where is None:
            where = f"plugin {plugin} ({path})" if plugin else f"plugin {path}"
        super().__init__(what, where=where, hint=hint)


class PluginLoadError(PluginError):
    """``stage`` says which step of loading failed when the loader knows it:
    ``"open"``, ``"entry"``, ``"refused"`` (``hm_load_plugin`` returned NULL),
    ``"header"`` or ``"manifest"``; ``"crashed"`` or ``"hung"`` when the library
    took its worker down or did not answer while loading."""

    exit_code = ExitCode.PLUGIN_LOAD

    def __init__(
        self,
        what: str,
        *,
        path: str,
        plugin: str | None = None,
        where: str | None = None,
        hint: str | None = None,
        stage: str | None = None,
    ) -> None:
        self.stage = stage
        super().__init__(what, path=path, plugin=plugin, where=where, hint=hint)


class PluginConflictError(PluginError):
    exit_code = ExitCode.PLUGIN_LOAD


class PluginCallError(PluginError):
    """A capability call failed. ``code`` is the plugin's stable error code when it
    sent one; ``report`` is its whole ``PluginError`` message (as a dict) then."""

    exit_code = ExitCode.PLUGIN_RUNTIME

    def __init__(
        self,
        what: str,
        *,
        path: str,
        plugin: str | None = None,
        code: str | None = None,
        where: str | None = None,
        hint: str | None = None,
        retryable: bool = False,
        report: dict[str, object] | None = None,
    ) -> None:
        self.code = code
        self.retryable = retryable
        self.report = report
        super().__init__(what, path=path, plugin=plugin, where=where, hint=hint)

    def to_dict(self) -> dict[str, object]:
        doc = super().to_dict()
        doc["code"] = self.code
        doc["retryable"] = self.retryable
        if self.report is not None:
            doc["report"] = self.report
        return doc


def render_plugin_report(
    *,
    code: str,
    message: str,
    title: str | None = None,
    suggestion: str | None = None,
    retryable: bool = False,
    retry_commands: list[str] | tuple[str, ...] = (),
    doc_url: str | None = None,
) -> tuple[str, str | None]:
    """``(what, hint)`` of a plugin's ``PluginError`` report: the one renderer, so a
    plugin error reads the same wherever hm shows it (a failed step, a subcommand,
    a hook, a session, ``hm plugin check``).

    what: ``TITLE: MESSAGE [CODE]``; hint: the suggestion, then ``retry with:
    `CMD` or `CMD``` (or ``it may work if retried`` when only ``retryable``), then
    ``see DOC_URL``, joined with ``; ``.
    """
    what = f"{title}: {message} [{code}]" if title else f"{message} [{code}]"
    parts = [suggestion] if suggestion else []
    if retry_commands:
        parts.append("retry with: " + " or ".join(f"`{c}`" for c in retry_commands))
    elif retryable:
        parts.append("it may work if retried")
    if doc_url:
        parts.append(f"see {doc_url}")
    return what, "; ".join(parts) or None


class PluginCrashed(PluginCallError):
    """The process running the plugin died while a call was in it.

    ``signal`` is the signal's name (``"SIGSEGV"``) when one killed it, ``status``
    the exit status otherwise; ``op`` and ``step_key`` say which call it was in.
    """

    def __init__(
        self,
        what: str,
        *,
        path: str,
        plugin: str | None = None,
        op: str,
        step_key: str | None = None,
        signal: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.op = op
        self.step_key = step_key
        self.signal = signal
        self.status = status
        super().__init__(what, path=path, plugin=plugin, code="crashed", hint=hint)


class PluginOutputTooLarge(PluginCallError):
    """A call's output was ``size`` bytes, more than a message may have."""

    def __init__(self, what: str, *, path: str, plugin: str | None = None, size: int, hint: str | None = None) -> None:
        self.size = size
        super().__init__(what, path=path, plugin=plugin, code="too_large", hint=hint)


class PluginCallAbandoned(PluginCallError):
    """A call that was asked to stop (``reason``: ``"timed_out"`` or ``"cancelled"``)
    and did not return within the grace period; hm stopped waiting for it."""

    def __init__(
        self,
        what: str,
        *,
        path: str,
        plugin: str | None = None,
        op: str,
        step_key: str | None = None,
        reason: str,
        hint: str | None = None,
    ) -> None:
        self.op = op
        self.step_key = step_key
        self.reason = reason
        super().__init__(what, path=path, plugin=plugin, code="abandoned", hint=hint)


class BuildCancelled(HmError):
    exit_code = ExitCode.CANCELLED


class ClusterError(UsageError):
    """``hm run --cluster`` cannot be used: dask is not installed, the address is
    malformed, or the scheduler at ``address`` cannot be reached (exit 2)."""

    def __init__(self, what: str, *, address: str | None = None, hint: str | None = None) -> None:
        self.address = address
        super().__init__(what, where="hm run --cluster", hint=hint)
