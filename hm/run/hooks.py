"""Dispatching build events to lifecycle-hook plugins.

Policy (documented in the README):

* ``before`` hooks see an event before any output does and may abort the build:
  the build stops starting steps, running steps are cancelled, and it ends
  ``aborted`` with the hook's name and reason.
* ``after`` hooks observe; their outcome is ignored.
* Each call is bounded by the hook's ``timeout_ms``. A ``before`` hook that fails,
  times out or answers garbage **fails closed** (the build aborts: a gate that
  cannot decide must not wave the build through); an ``after`` hook that does so
  gets a warning and the build goes on.
* ``step_log`` reaches a hook only if it lists ``step_log`` in its events.
* Events a hook publishes while it handles an event (``emit_event``) reach the
  output but not the hooks, so two hooks cannot feed each other forever.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from hm.errors import HmError
from hm.runtime.host_services import HostServices
from hm.runtime.plugin import Plugin
from hm_plugin_sdk.protocol import BuildEvent, HookEvent, HookOutcome, LifecycleHookCapability, event_kind

log = logging.getLogger("hm.hooks")

#: Set on the threads that run hook calls.
_in_hook = threading.local()


@dataclass(frozen=True, slots=True)
class Hook:
    plugin: Plugin
    cap: LifecycleHookCapability

    def wants(self, kind: str) -> bool:
        if self.cap.events:
            return kind in self.cap.events
        return kind != "step_log"


@dataclass(frozen=True, slots=True)
class Abort:
    hook: str
    reason: str


class HookDispatcher:
    def __init__(
        self,
        hooks: list[Hook],
        services: HostServices,
        *,
        on_abort: Callable[[Abort], None],
        on_warning: Callable[[str], None],
    ) -> None:
        self._before = [h for h in hooks if h.cap.phase == "before"]
        self._after = [h for h in hooks if h.cap.phase == "after"]
        self._services = services
        self._on_abort = on_abort
        self._on_warning = on_warning
        # Hook calls run on these threads so a hung hook can be timed out;
        # the thread is abandoned (a native call cannot be interrupted).
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="hm-hook")
        self.aborted: Abort | None = None

    @property
    def empty(self) -> bool:
        return not (self._before or self._after)

    def before(self, event: BuildEvent) -> None:
        if getattr(_in_hook, "active", False):
            return
        for hook in self._before:
            if hook.wants(event_kind(event)):
                self._call(hook, event)

    def after(self, event: BuildEvent) -> None:
        if getattr(_in_hook, "active", False):
            return
        for hook in self._after:
            if hook.wants(event_kind(event)):
                self._call(hook, event)

    def _call(self, hook: Hook, event: BuildEvent) -> None:
        name = hook.plugin.name
        future = self._pool.submit(_call_hook, hook, HookEvent(phase=hook.cap.phase, event=event), self._services)
        try:
            outcome = future.result(timeout=hook.cap.timeout_ms / 1000)
        except concurrent.futures.TimeoutError:
            self._failed(hook, f"did not answer {event_kind(event)} within {hook.cap.timeout_ms} ms")
            return
        except HmError as exc:
            self._failed(hook, exc.one_line())
            return
        except Exception as exc:  # a hook must never crash the run
            log.exception("hook %s failed", name)
            self._failed(hook, f"{type(exc).__name__}: {exc}")
            return
        if outcome.kind == "abort" and hook.cap.phase == "before" and self.aborted is None:
            self._abort(Abort(name, outcome.reason or "no reason given"))

    def _failed(self, hook: Hook, why: str) -> None:
        where = f"hook {hook.plugin.name} ({hook.plugin.path})"
        if hook.cap.phase == "before":
            if self.aborted is None:
                self._abort(Abort(hook.plugin.name, f"the before hook failed, so the build stops (fail closed): {why}"))
        else:
            self._on_warning(f"{where}: {why}; the build goes on (after hooks only observe)")

    def _abort(self, abort: Abort) -> None:
        self.aborted = abort
        self._on_abort(abort)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _call_hook(hook: Hook, event: HookEvent, services: HostServices) -> HookOutcome:
    _in_hook.active = True
    try:
        return hook.plugin.on_hook_event(event, services)
    finally:
        _in_hook.active = False
