"""Dispatching build events to lifecycle-hook plugins.

Policy (documented in the README):

* ``before`` hooks see an event before any output does and may abort the build:
  the build stops starting steps, running steps are cancelled, and it ends
  ``aborted`` with the hook's name and reason.
* ``after`` hooks observe; their outcome is ignored.
* Each call is bounded by the hook's ``timeout_ms``, counted from when the call
  starts. A ``before`` hook that fails, times out or answers garbage **fails
  closed** (the build aborts: a gate that cannot decide must not wave the build
  through); an ``after`` hook that does so gets a warning and the build goes on.
* ``step_log`` reaches a hook only if it lists ``step_log`` in its events.

Every hook has a :class:`HookRunner`: its own thread and inbox, so a slow or hung
hook delays no other hook, no output and no step. A hook that runs isolated is
stopped at its deadline (its worker is replaced, and it gets the next event); one
that runs in hm's process cannot be, so after a timeout it gets no more events in
this run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from hm.errors import HmError
from hm.runtime import HostServices, Plugin
from hm_plugin_sdk.protocol import BuildEvent, HookEvent, HookOutcome, LifecycleHookCapability, event_kind

log = logging.getLogger("hm.hooks")

#: How long after its deadline a hook's own (isolated) timeout gets to report.
_SLACK = 0.5


@dataclass(frozen=True, slots=True)
class Hook:
    plugin: Plugin
    cap: LifecycleHookCapability

    def wants(self, kind: str) -> bool:
        if self.cap.events:
            return kind in self.cap.events
        return kind != "step_log"

    @property
    def timeout(self) -> float:
        return self.cap.timeout_ms / 1000


@dataclass(frozen=True, slots=True)
class Abort:
    hook: str
    reason: str


class _Reply:
    """A before hook's answer, awaited by the gate."""

    __slots__ = ("done", "result", "started_at")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.started_at: float | None = None
        self.result: HookOutcome | str | None = None


#: How long an after hook's thread waits, once woken, for more events to come with
#: the first: a run emits several events per step, and waking a thread for each
#: one costs more than the hook call itself. After hooks only observe, so a
#: millisecond late is fine; before hooks are never delayed.
_BATCH_SECONDS = 0.001


class HookRunner:
    """One hook capability's thread and inbox.

    The inbox is a deque the emitter appends to without a system call; the thread
    is woken (an Event) only when it sleeps, so a burst of events costs one wake-up.
    """

    def __init__(self, hook: Hook, services: HostServices, on_after_failure: Callable[[Hook, str], None]) -> None:
        self.hook = hook
        self._services = services
        self._on_after_failure = on_after_failure
        self._inbox: deque[tuple[BuildEvent, _Reply | None] | None] = deque()
        self._bell = threading.Event()
        self._awake = True
        self.busy_since: float | None = None
        self.busy_with = ""
        #: Given up on: an in-process call that outlived its deadline.
        self.stuck = False
        self._pending = 0
        self._count = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name=f"hm-hook-{hook.plugin.name}", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        return self._pending == 0

    def submit(self, event: BuildEvent, reply: _Reply | None = None) -> None:
        with self._count:
            self._pending += 1
        self._put((event, reply))

    def stop(self) -> None:
        self._put(None)

    def _put(self, item: tuple[BuildEvent, _Reply | None] | None) -> None:
        self._inbox.append(item)
        if not self._awake:  # the thread sleeps (or is about to: it looks again first)
            self._bell.set()

    def _take(self) -> tuple[BuildEvent, _Reply | None] | None:
        while True:
            try:
                return self._inbox.popleft()
            except IndexError:
                pass
            self._awake = False
            if not self._inbox:  # nothing came since we looked: sleep until something does
                self._bell.wait()
            self._bell.clear()
            self._awake = True
            if self.hook.cap.phase == "after":
                time.sleep(_BATCH_SECONDS)

    def _serve(self) -> None:
        hook = self.hook
        while True:
            item = self._take()
            if item is None:
                return
            event, reply = item
            kind = event_kind(event)
            try:
                if self.stuck:
                    continue
                self.busy_with = kind
                self.busy_since = started = time.monotonic()
                if reply is not None:
                    reply.started_at = started
                result: HookOutcome | str
                try:
                    result = hook.plugin.on_hook_event(
                        HookEvent(phase=hook.cap.phase, event=event), self._services, timeout=hook.timeout
                    )
                except HmError as exc:
                    result = exc.one_line()
                except Exception as exc:  # a hook must never crash the run
                    log.exception("hook %s failed", hook.plugin.name)
                    result = f"{type(exc).__name__}: {exc}"
                finally:
                    self.busy_since = None
                if reply is not None:
                    reply.result = result
                    reply.done.set()
                elif isinstance(result, str):
                    self._on_after_failure(hook, f"{kind}: {result}")
            finally:
                with self._count:
                    self._pending -= 1


class HookDispatcher:
    def __init__(
        self,
        hooks: list[Hook],
        services: HostServices,
        *,
        on_abort: Callable[[Abort], None],
        on_warning: Callable[[str], None],
    ) -> None:
        self._on_abort = on_abort
        self._on_warning = on_warning
        self._before = [HookRunner(h, services, self._after_failed) for h in hooks if h.cap.phase == "before"]
        self._after = [HookRunner(h, services, self._after_failed) for h in hooks if h.cap.phase == "after"]
        self.aborted: Abort | None = None
        self._closed = threading.Event()
        self._watchdog: threading.Thread | None = None
        if any(r.hook.plugin.isolation == "in-process" for r in self._after):
            self._watchdog = threading.Thread(target=self._watch_after, name="hm-hook-watchdog", daemon=True)
            self._watchdog.start()

    @property
    def empty(self) -> bool:
        return not (self._before or self._after)

    @property
    def has_before(self) -> bool:
        return bool(self._before)

    @property
    def wants_step_log(self) -> bool:
        """Whether any hook subscribed to ``step_log`` (most do not: logs skip them)."""
        return any(r.hook.wants("step_log") for r in (*self._before, *self._after))

    # -- the phases -------------------------------------------------------------------
    def before(self, event: BuildEvent) -> None:
        """Show ``event`` to every before hook in turn (on the bus's gate thread)."""
        kind = event_kind(event)
        for runner in self._before:
            if runner.stuck or not runner.hook.wants(kind):
                continue
            reply = _Reply()
            runner.submit(event, reply)
            result = self._await(runner, reply)
            if result is None:
                runner.stuck = runner.hook.plugin.isolation == "in-process"
                self._failed(runner.hook, f"did not answer {kind} within {runner.hook.cap.timeout_ms} ms")
            elif isinstance(result, str):
                self._failed(runner.hook, result)
            elif result.kind == "abort" and self.aborted is None:
                self._abort(Abort(runner.hook.plugin.name, result.reason or "no reason given"))

    def _await(self, runner: HookRunner, reply: _Reply) -> HookOutcome | str | None:
        """The reply, or None once the call outlived its timeout (counted from its start)."""
        limit = runner.hook.timeout + (_SLACK if runner.hook.plugin.isolation == "process" else 0)
        while not reply.done.wait(0.05):
            started = reply.started_at
            if started is not None and time.monotonic() - started > limit:
                return None
        return reply.result

    def after(self, event: BuildEvent) -> None:
        kind = event_kind(event)
        for runner in self._after:
            if not runner.stuck and runner.hook.wants(kind):
                runner.submit(event)

    # -- failures -----------------------------------------------------------------------
    def _failed(self, hook: Hook, why: str) -> None:
        if self.aborted is None:
            self._abort(Abort(hook.plugin.name, f"the before hook failed, so the build stops (fail closed): {why}"))

    def _after_failed(self, hook: Hook, why: str) -> None:
        where = f"hook {hook.plugin.name} ({hook.plugin.path})"
        self._on_warning(f"{where}: {why}; the build goes on (after hooks only observe)")

    def _abort(self, abort: Abort) -> None:
        self.aborted = abort
        self._on_abort(abort)

    def _watch_after(self) -> None:
        """Give up on an in-process after hook whose call outlived its timeout."""
        while not self._closed.wait(0.1):
            now = time.monotonic()
            for runner in self._after:
                since = runner.busy_since
                if since is not None and not runner.stuck and now - since > runner.hook.timeout:
                    runner.stuck = True
                    self._after_failed(
                        runner.hook,
                        f"did not answer {runner.busy_with} within {runner.hook.cap.timeout_ms} ms, "
                        "so it gets no more events in this run",
                    )

    def close(self) -> None:
        """Let the after hooks see what is queued (each bounded by its timeout), then stop."""
        while any(not r.idle and not r.stuck for r in self._after):
            time.sleep(0.01)
        self._closed.set()
        for runner in (*self._before, *self._after):
            runner.stop()
