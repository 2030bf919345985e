"""The checks of ``hm plugin check``: one function per check, each given a
:class:`Target` that loads the library in a worker of its own.

A check reaches the plugin only through the runtime's worker transport, the
same way ``hm run --isolate`` does, so a crash or a hang ends that check's
worker and is judged by the suite (:mod:`hm.check.suite`), never hm. Each check
states in its docstring what it expects; ``Target.stage`` records what it is
doing, so a crash or hang can say what was running.

Checks: ``load``, ``header``, ``manifest``, ``capability:N`` (the N-th capability
of the manifest), ``free``, ``threads`` and ``older-host``.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from hm.check.exercise import Answer, Call, Sandbox, subscribed_kinds
from hm.errors import PluginLoadError
from hm.runtime import Op, Plugin, VtableFacts, check_vtable, open_plugin, open_transport
from hm_plugin_sdk.abi import ABI_MAJOR, ABI_MINOR, ENTRY_SYMBOL, host_table_size
from hm_plugin_sdk.protocol import (
    LifecycleHookCapability,
    StepExecutorCapability,
    SubcommandCapability,
)

__all__ = [
    "CHECKS",
    "FREE_ROUNDS",
    "MIN_REPEATS",
    "OLDER_HOST_SIZE",
    "REPEAT_BUDGET",
    "THREADS",
    "THREAD_CALLS",
    "Target",
    "Verdict",
]

#: Rounds of the ``free`` check: each round calls manifest and every sample call once.
FREE_ROUNDS = 50
#: Threads of the ``threads`` check, and how many times it makes each sample call.
THREADS = 8
THREAD_CALLS = 200
#: Seconds of plugin work (estimated from the first calls) the repeated-call checks
#: aim for: a slow capability (a runner that streams thousands of lines) is repeated
#: fewer times, never fewer than MIN_REPEATS, so the check stays well inside its timeout.
REPEAT_BUDGET = 5.0
MIN_REPEATS = 2 * THREADS

#: The struct_size of the host table the ``older-host`` check hands out: ABI 1.0's
#: ``hm_host_api_t`` through ``log`` (header, host_data, log), with the platform's
#: alignment (32 bytes on 64-bit).
OLDER_HOST_SIZE = struct.calcsize("IIIPP")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a check reports. ``data`` carries facts the suite needs (the manifest)."""

    status: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)


def passed(detail: str, **data: Any) -> Verdict:
    return Verdict("passed", detail, data)


def failed(detail: str, **data: Any) -> Verdict:
    return Verdict("failed", detail, data)


class Target:
    """The library under check, as one check sees it: every load is a fresh worker
    with this check's options (heap checks for ``free``, an older host table for
    ``older-host``), bounded by the check's deadline, and stopped when it ends."""

    def __init__(self, path: Path, arg: str | None, *, deadline: float, options: dict[str, Any]) -> None:
        self.path = path
        self.arg = arg
        self.deadline = deadline
        self._options = options
        self._opened: list[Plugin] = []
        self.doing = "starting"
        #: The worker runs with glibc's heap checks (the ``free`` check).
        self.heap_checked = "MALLOC_CHECK_" in (options.get("env") or {})

    def stage(self, what: str) -> None:
        """Note what the check does next (for the message if the plugin dies there)."""
        self.doing = what

    def remaining(self) -> float:
        return max(0.1, self.deadline - time.monotonic())

    def facts(self) -> VtableFacts:
        """Load the library in a worker and return its vtable header, unchecked."""
        self.stage(f"opening the library and calling {ENTRY_SYMBOL}")
        transport = open_transport(
            self.path, "process", load_timeout=self.remaining(), check_header=False, **self._options
        )
        try:
            assert transport.facts is not None
            return transport.facts
        finally:
            transport.kill()
            transport.close()

    def open(self, box: Sandbox | None = None) -> Plugin:
        """Load the plugin in a worker and read its manifest (for a check after ``manifest``)."""
        self.stage("loading the plugin and calling manifest")
        plugin = open_plugin(
            self.path,
            box.cli_services if box is not None else None,
            isolation="process",
            manifest_timeout=self.remaining(),
            load_timeout=self.remaining(),
            **self._options,
        )
        self._opened.append(plugin)
        if box is not None:
            box.plugin = plugin
            box.target = self
        return plugin

    def close(self) -> None:
        for plugin in self._opened:
            plugin.transport.kill()
            plugin.transport.close()


def _load_error(err: PluginLoadError) -> str:
    return f"{err.what}; {err.hint}" if err.hint else err.what


# -- load, header, manifest -------------------------------------------------------------


def check_load(t: Target) -> Verdict:
    """The library opens (``RTLD_NOW | RTLD_LOCAL``), exports ``hm_load_plugin``, and
    that returns a vtable for hm's host table."""
    try:
        facts = t.facts()
    except PluginLoadError as err:
        if err.stage == "open":
            return failed(f"expected a shared library this platform can open; {err.what}")
        if err.stage == "entry":
            return failed(
                f"expected the library to export `{ENTRY_SYMBOL}`; it does not, so it is not an hm plugin "
                "(export it with HM_EXPORT from hm_plugin.h, or use the Rust SDK's hm_plugin! macro)"
            )
        if err.stage == "refused":
            return failed(
                f"expected `{ENTRY_SYMBOL}` to return a vtable for a host speaking ABI {ABI_MAJOR}.{ABI_MINOR}; "
                "it returned NULL (the plugin refused to load); it must refuse only a host whose ABI major differs"
            )
        return failed(f"expected the library to load; {_load_error(err)}")
    return passed(f"`{ENTRY_SYMBOL}` returned a vtable (ABI {facts.abi_major}.{facts.abi_minor})")


def check_header(t: Target) -> Verdict:
    """The vtable's ABI major is hm's, its struct_size covers the 1.0 layout, and
    ``manifest``, ``free`` and ``destroy`` are not NULL: what hm's loader requires."""
    facts = t.facts()
    try:
        check_vtable(facts, str(t.path))
    except PluginLoadError as err:
        return failed(f"expected ABI {ABI_MAJOR}.x, a 1.0-sized vtable and manifest, free, destroy; {_load_error(err)}")
    return passed(
        f"ABI {facts.abi_major}.{facts.abi_minor} (hm speaks {ABI_MAJOR}.{ABI_MINOR}), "
        f"vtable struct_size {facts.struct_size} covers the 1.0 layout, manifest/free/destroy present"
    )


_OP_NAMES = {Op.EXECUTE_STEP: "execute_step", Op.ON_HOOK_EVENT: "on_hook_event", Op.RUN_SUBCOMMAND: "run_subcommand"}


def describe(cap: object) -> str:
    """A capability in a few words: ``runner noop``, ``after hook``, ``hm fail``."""
    if isinstance(cap, StepExecutorCapability):
        return f"runner {', '.join(cap.runners)}" + (" (default)" if cap.default else "")
    if isinstance(cap, LifecycleHookCapability):
        return f"{cap.phase} hook"
    if isinstance(cap, SubcommandCapability):
        return f"`hm {' '.join(cap.verb)}`"
    return type(cap).__name__


def check_manifest(t: Target) -> Verdict:
    """The manifest decodes and passes hm's validation, and every declared capability
    has its vtable entry (a step_executor needs execute_step, and so on)."""
    with Sandbox() as box:
        try:
            plugin = t.open(box)
        except PluginLoadError as err:
            return failed(
                f"expected a valid PluginManifest with a vtable entry for each capability; {_load_error(err)}"
            )
        manifest = plugin.manifest
        notes = []
        for cap in manifest.capabilities:
            if isinstance(cap, LifecycleHookCapability):
                _kinds, unknown = subscribed_kinds(cap)
                if unknown:
                    notes.append(f"the {cap.phase} hook names event kinds hm never sends: {', '.join(unknown)}")
        data = {"manifest": msgspec.to_builtins(manifest)}
        caps = "; ".join(describe(c) for c in manifest.capabilities)
        detail = f"{manifest.name} {manifest.version}: {caps}"
        if notes:
            detail += f" (note: {'; '.join(notes)})"
        return passed(detail, **data)


# -- one check per capability --------------------------------------------------------------


def _expected(call: Call) -> str:
    name = call.out_type.__name__
    article = "an" if name[0] in "AEIOU" else "a"
    return f"HM_OK with {article} {name} or HM_ERR_FAILED with a PluginError"


def _verdict_line(call: Call, answer: Answer) -> tuple[str | None, str]:
    """``(failure or None, note)`` for one call's answer."""
    if answer.panicked:
        return (
            f"{call.label}: expected {_expected(call)}; the plugin panicked: {answer.value.message} "
            "(the SDK turned the panic into a PluginError with code `panic`: it is a bug in the plugin)",
            "",
        )
    if answer.kind == "bad":
        return f"{call.label}: expected {_expected(call)}; got {answer.text}", ""
    if answer.kind == "error":
        return None, f"{call.label}: a well-formed failure, {answer.text}"
    return None, f"{call.label}: {_summary(answer.value)}"


def _summary(value: Any) -> str:
    name = type(value).__name__
    if name == "StepResult":
        extra = f": {value.message}" if value.message else ""
        return f"StepResult exit {value.exit_code} ({value.status}{extra})"
    if name == "HookOutcome":
        return value.kind + (f" ({value.reason})" if value.reason else "")
    if name == "ExitInfo":
        extra = f" ({value.message})" if value.message else ""
        return f"ExitInfo exit {value.exit_code}{extra}"
    return name


def check_capability(t: Target) -> Verdict:
    """The N-th declared capability, called with realistic sample inputs.

    Step executor: per runner, a step with cmd ``true``, an empty temporary workspace
    and no base workspace. Lifecycle hook: one HookEvent per event kind it subscribes
    to, each within the hook's timeout_ms. Subcommand: run once with its defaults or
    sample values (it really runs). The answer must decode as the success message, or
    be a well-formed PluginError under HM_ERR_FAILED (passes, with a note), except one
    with code ``panic``."""
    index = int(t.arg or "0")
    with Sandbox() as box:
        plugin = t.open(box)
        cap = plugin.manifest.capabilities[index]
        if isinstance(cap, StepExecutorCapability):
            calls = [box.executor_call(r) for r in cap.runners]
        elif isinstance(cap, LifecycleHookCapability):
            calls = box.hook_calls(cap)
        else:
            calls = [box.subcommand_call(cap)]
        if not calls:
            return passed(f"{describe(cap)}: subscribes to no event kind hm sends; nothing to call")
        failures: list[str] = []
        notes: list[tuple[str, str]] = []
        for call in calls:
            t.stage(f"calling {_OP_NAMES[call.op]} for {call.label}")
            answer, took = box.make(call)
            failure, note = _verdict_line(call, answer)
            if failure is None and isinstance(cap, LifecycleHookCapability) and took * 1000 > cap.timeout_ms:
                failure = (
                    f"{call.label}: expected an answer within the hook's timeout_ms {cap.timeout_ms}; "
                    f"it took {took * 1000:.0f} ms"
                )
            if failure is not None:
                failures.append(failure)
                continue
            if call.op is Op.EXECUTE_STEP and call.step_key:
                lines = box.log_lines(call.step_key)
                note += f", {lines} log line{'s' if lines != 1 else ''}"
            notes.append((call.label, note))
        if failures:
            return failed("; ".join(failures))
        if isinstance(cap, LifecycleHookCapability):
            return passed(_hook_summary(cap, notes))
        return passed("; ".join(note for _label, note in notes))


def _hook_summary(cap: LifecycleHookCapability, notes: list[tuple[str, str]]) -> str:
    """``after hook: 7 event kinds, each answered within timeout_ms 5000: continue``."""
    outcomes: dict[str, list[str]] = {}
    for label, note in notes:
        outcome = note[len(label) + 2 :]
        outcomes.setdefault(outcome, []).append(label.rsplit(", ", 1)[-1])
    said = "; ".join(
        outcome if len(outcomes) == 1 else f"{outcome} for {', '.join(kinds)}" for outcome, kinds in outcomes.items()
    )
    ignored = " (hm ignores abort in the after phase)" if cap.phase == "after" and "abort" in said else ""
    return (
        f"{cap.phase} hook: {len(notes)} event kinds, each answered within timeout_ms {cap.timeout_ms}: {said}{ignored}"
    )


# -- free, threads, older host ----------------------------------------------------------------


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _left_out(labels: list[str]) -> str:
    if not labels:
        return ""
    return f"; left out, as their answer is malformed (see their capability check): {', '.join(labels)}"


def check_free(t: Target) -> Verdict:
    """Many calls (manifest, every runner, every hook event; subcommands are run only
    by their own check), each output released through the plugin's ``free``; outputs
    keep decoding and the process survives. The parent runs this child with glibc's
    heap checks on (MALLOC_CHECK_=3, MALLOC_PERTURB_), so a double free or a free of
    memory the plugin did not allocate aborts it. A call whose first answer is
    malformed is left out: its capability check reports it."""
    with Sandbox() as box:
        plugin = t.open(box)
        calls = box.calls_for(plugin.manifest, subcommands=False)
        t.stage(f"making up to {FREE_ROUNDS} rounds of manifest and every sample call")
        made = 0
        left_out: list[str] = []
        rounds = FREE_ROUNDS
        started = time.monotonic()
        round_no = 0
        while round_no < rounds:
            manifest = box.manifest_answer()
            made += 1
            if manifest.kind != "ok":
                return failed(f"after {made} calls: expected manifest to answer HM_OK again; got {manifest.text}")
            kept = []
            for call in calls:
                call = box.fresh(call)
                answer, _took = box.make(call)
                made += 1
                if answer.kind == "bad":
                    if round_no == 0:
                        left_out.append(call.label)
                        continue
                    return failed(
                        f"after {made} calls: {call.label}: expected {_expected(call)} as in the first round; "
                        f"got {answer.text}"
                    )
                kept.append(call)
            calls = kept
            if round_no == 0:
                rounds = _repeats(FREE_ROUNDS, time.monotonic() - started)
            round_no += 1
        checked = " with glibc heap checks on (MALLOC_CHECK_=3)" if t.heap_checked else ""
        return passed(
            f"{made} calls, every output released through the plugin's free; the process survived{checked}"
            f"{_left_out(left_out)}"
        )


def check_threads(t: Target) -> Verdict:
    """Manifest and every sample call but subcommands, each made THREAD_CALLS times
    from THREADS threads at once; every answer decodes and, where two
    single-threaded calls agree (deterministic), equals that answer. A call whose
    single-threaded answer is malformed is left out: its capability check reports it."""
    with Sandbox() as box:
        plugin = t.open(box)
        targets: list[tuple[str, Callable[[], Answer]]] = [("manifest", box.manifest_answer)]
        for call in box.calls_for(plugin.manifest, subcommands=False, unique=True):
            targets.append((call.label, _repeatable(box, call)))
        reference: dict[str, Any] = {}
        left_out: list[str] = []
        t.stage("making the single-threaded reference calls")
        started = time.monotonic()
        for label, make in targets:
            first, second = make(), make()
            if first.kind == "bad" and label == "manifest":
                return failed(f"manifest, single-threaded: expected HM_OK with a PluginManifest; got {first.text}")
            if first.kind == "bad":
                left_out.append(label)
                continue
            if label == "manifest" and first.comparable() != second.comparable():
                # hm reads a manifest once, caches it, and a run reads it again: a
                # changing one loads from the cache and then fails the run.
                return failed(
                    "manifest, single-threaded: expected the same PluginManifest on every call; two calls in a row "
                    "answered differently (hm caches the manifest and compares it when a run loads the plugin): "
                    "build it from constants only"
                )
            reference[label] = first.comparable() if first.comparable() == second.comparable() else None
        targets = [t for t in targets if t[0] in reference]
        repeats = _repeats(THREAD_CALLS, (time.monotonic() - started) / 2)
        jobs = [t for t in targets for _ in range(repeats)]
        problems: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(THREADS)

        def worker(offset: int) -> None:
            barrier.wait()
            for label, make in jobs[offset::THREADS]:
                try:
                    answer = make()
                except Exception as exc:  # reported, not raised: the other threads go on
                    answer = Answer("bad", None, f"{type(exc).__name__}: {exc}")
                want = reference[label]
                problem = None
                if answer.kind == "bad":
                    problem = f"{label}: expected an answer that decodes, as single-threaded; got {answer.text}"
                elif want is not None and answer.comparable() != want:
                    got = answer.comparable()[1]
                    problem = f"{label}: expected the single-threaded answer {want[1]!r}; got {got!r}"
                if problem:
                    with lock:
                        problems.append(problem)

        t.stage(f"making {len(jobs)} calls from {THREADS} threads at once")
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        at_once = f"{len(jobs)} calls from {THREADS} threads at once"
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return failed(f"{at_once}: {problems[0]}{more}")
        same = sum(1 for v in reference.values() if v is not None)
        return passed(
            f"{at_once} ({_plural(len(targets), 'kind')} of call, {repeats} each): all decoded; "
            f"{same} of {len(targets)} deterministic and always equal to the single-threaded answer"
            f"{_left_out(left_out)}"
        )


def _repeats(wanted: int, one_round: float) -> int:
    """How many rounds fit REPEAT_BUDGET when one round took ``one_round`` seconds."""
    if one_round <= 0 or wanted * one_round <= REPEAT_BUDGET:
        return wanted
    return max(MIN_REPEATS, min(wanted, int(REPEAT_BUDGET / one_round)))


def _repeatable(box: Sandbox, call: Call) -> Callable[[], Answer]:
    def make() -> Answer:
        return box.make(box.fresh(call, unique=True))[0]

    return make


def check_older_host(t: Target) -> Verdict:
    """Loaded against a host table of ABI 1.0 that ends after ``log`` (the other
    functions are missing), the plugin either refuses cleanly (NULL from
    hm_load_plugin: passes, with a note) or loads and answers its manifest and one
    sample call per runner, hook and verb without calling a function the table lacks.
    A crash there is judged by the suite."""
    size = OLDER_HOST_SIZE
    what = f"a host table of ABI {ABI_MAJOR}.0 with struct_size {size} (header, host_data and log only)"
    return _on_cut_host(t, what)


def check_minor_host(t: Target) -> Verdict:
    """The same as ``older-host`` with the whole host table of an older minor
    (``t.arg``, e.g. ``"0"``): it ends before every entry a later minor added, as
    an hm of that minor hands it out ("growth is proven": every older minor)."""
    minor = int(t.arg or 0)
    size = host_table_size(minor)
    what = f"the host table of ABI {ABI_MAJOR}.{minor} (struct_size {size}, no entry added after {ABI_MAJOR}.{minor})"
    return _on_cut_host(t, what)


def _on_cut_host(t: Target, what: str) -> Verdict:
    try:
        t.facts()
    except PluginLoadError as err:
        if err.stage == "refused":
            return passed(f"refused {what} cleanly: `{ENTRY_SYMBOL}` returned NULL")
        if err.stage in ("crashed", "hung"):
            raise
        return failed(f"loaded against {what}: expected a vtable or NULL; {_load_error(err)}")
    with Sandbox() as box:
        try:
            plugin = t.open(box)
        except PluginLoadError as err:
            if err.stage in ("crashed", "hung"):
                raise
            return passed(f"loaded against {what}; manifest did not succeed but did not crash: {err.what}")
        calls = box.calls_for(plugin.manifest, subcommands=True)
        kinds = {"ok": 0, "error": 0, "bad": 0}
        codes: list[str] = []
        for call in calls:
            t.stage(f"calling {_OP_NAMES[call.op]} for {call.label}, with {what}")
            answer, _took = box.make(call)
            kinds[answer.kind] += 1
            if answer.kind == "error" and answer.value.code not in codes:
                codes.append(answer.value.code)
        said = f"{kinds['ok']} succeeded"
        if kinds["error"]:
            said += f", {kinds['error']} failed with a PluginError ({', '.join(codes)})"
        if kinds["bad"]:
            said += f", {kinds['bad']} malformed (see the capability checks)"
        return passed(
            f"loaded against {what}; manifest and {_plural(len(calls), 'sample call')} ran without calling a "
            f"missing function ({said})"
        )


CHECKS: dict[str, Callable[[Target], Verdict]] = {
    "load": check_load,
    "header": check_header,
    "manifest": check_manifest,
    "capability": check_capability,
    "free": check_free,
    "threads": check_threads,
    "older-host": check_older_host,
    "host-minor": check_minor_host,
}
