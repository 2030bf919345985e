"""The set of plugins hm can use right now, and who claims what.

:meth:`Registry.discover` walks the plugin locations (``discovery``), reads each
library's manifest through the cache (``manifest_cache``) or, when the file
changed, by loading it, and records one :class:`PluginRecord` per file: active,
shadowed by a same-named plugin of higher precedence, or broken with its reason.
A broken plugin never hides the others. Claims of one runner, one default or one
verb by two active plugins are :class:`~hm.errors.PluginConflictError`\\ s that
name both paths; a conflicted claim is not usable until one plugin is removed.
:meth:`Registry.load` loads a plugin with the transport its isolation names.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hm import child_process
from hm.errors import HmError, PluginConflictError, PluginLoadError
from hm.runtime.discovery import Candidate, Origin, discover
from hm.runtime.isolation import IsolationPolicy
from hm.runtime.manifest_cache import FileKey, ManifestCache
from hm.runtime.stdio_descriptor import descriptor_key, is_descriptor, stem_of

if TYPE_CHECKING:  # loading a plugin (not listing one) needs the transports
    from hm.runtime.plugin import Plugin

from hm_plugin_sdk.protocol import (
    LifecycleHookCapability,
    PluginManifest,
    StepExecutorCapability,
    SubcommandCapability,
)


@dataclass(slots=True)
class PluginRecord:
    """One library found on disk and what became of it."""

    path: Path
    origin: Origin
    manifest: PluginManifest | None = None
    abi: tuple[int, int] | None = None
    error: PluginLoadError | None = None
    shadowed_by: Path | None = None
    #: The file's identity when its manifest was read (to tell a changed file
    #: from a plugin whose manifest changes by itself).
    key: FileKey | None = None
    #: The plugin, once loaded in this process.
    loaded: Plugin | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest else stem_of(self.path)

    @property
    def kind(self) -> str:
        """``native`` (a shared library) or ``stdio`` (an executable and its descriptor)."""
        return "stdio" if is_descriptor(self.path) else "native"

    @property
    def ok(self) -> bool:
        return self.manifest is not None and self.error is None

    @property
    def active(self) -> bool:
        return self.ok and self.shadowed_by is None

    def caps(self, kind: type) -> list:
        return [c for c in self.manifest.capabilities if isinstance(c, kind)] if self.manifest else []

    @property
    def label(self) -> str:
        return f"{self.name} ({self.path})"


class Registry:
    def __init__(self, records: list[PluginRecord], policy: IsolationPolicy | None = None) -> None:
        self.records = records
        #: Which plugins :meth:`load` runs isolated.
        self.policy = policy or IsolationPolicy()
        self.conflicts: list[PluginConflictError] = []
        self._runners: dict[str, PluginRecord] = {}
        self._default: tuple[str, PluginRecord] | None = None
        self._verbs: dict[tuple[str, ...], tuple[PluginRecord, SubcommandCapability]] = {}
        self._index()

    # -- building -------------------------------------------------------------
    @classmethod
    def discover(
        cls, project_root: Path | None, *, cache: ManifestCache | None = None, policy: IsolationPolicy | None = None
    ) -> Registry:
        """Find and read every plugin. Never raises for a single bad plugin.

        A library not in the cache is probed in a worker process
        (:mod:`hm.runtime.probe`), several at once: one that aborts, faults or
        hangs while loading is listed as broken and cannot take hm down.
        """
        cache = cache if cache is not None else ManifestCache()
        records = _read_all(discover(project_root), cache)
        cache.save()
        return cls(records, policy)

    def isolation(self, rec: PluginRecord) -> str:
        """``in-process``, ``process`` or ``stdio`` (a stdio plugin is a process
        of its own whatever the policy): how :meth:`load` would run ``rec``."""
        return "stdio" if rec.kind == "stdio" else self.policy.for_plugin(rec.name)

    def _index(self) -> None:
        by_name: dict[str, PluginRecord] = {}
        for rec in self.records:
            if not rec.ok:
                continue
            first = by_name.setdefault(rec.name, rec)
            if first is not rec:
                rec.shadowed_by = first.path
        runner_claims: dict[str, list[PluginRecord]] = {}
        default_claims: list[tuple[str, PluginRecord]] = []
        verb_claims: dict[tuple[str, ...], list[tuple[PluginRecord, SubcommandCapability]]] = {}
        for rec in self.active():
            for cap in rec.caps(StepExecutorCapability):
                for runner in cap.runners:
                    runner_claims.setdefault(runner, []).append(rec)
                if cap.default and cap.runners:
                    default_claims.append((cap.runners[0], rec))
            for cap in rec.caps(SubcommandCapability):
                verb_claims.setdefault(tuple(cap.verb), []).append((rec, cap))
        for runner, recs in runner_claims.items():
            if len(recs) == 1:
                self._runners[runner] = recs[0]
            else:
                self.conflicts.append(_conflict(f"runner '{runner}'", [r for r in recs]))
        if len(default_claims) == 1:
            self._default = default_claims[0]
        elif default_claims:
            self.conflicts.append(_conflict("the default runner", [r for _, r in default_claims]))
        for verb, claims in verb_claims.items():
            if len(claims) == 1:
                self._verbs[verb] = claims[0]
            else:
                self.conflicts.append(_conflict(f"verb '{' '.join(verb)}'", [r for r, _ in claims]))

    # -- queries --------------------------------------------------------------
    def active(self) -> list[PluginRecord]:
        return [r for r in self.records if r.active]

    def broken(self) -> list[PluginRecord]:
        return [r for r in self.records if r.error is not None]

    def find(self, name: str) -> PluginRecord | None:
        """The active plugin called ``name``; else a broken or shadowed one with that name or file stem."""
        for rec in self.active():
            if rec.name == name:
                return rec
        for rec in self.records:
            if rec.name == name or stem_of(rec.path) == name:
                return rec
        return None

    def runners(self) -> dict[str, PluginRecord]:
        """Runner name -> the one plugin that provides it (conflicted runners left out)."""
        return dict(self._runners)

    def runner_names(self) -> set[str]:
        """Every runner some active plugin claims, conflicted ones included."""
        return {r for rec in self.active() for cap in rec.caps(StepExecutorCapability) for r in cap.runners}

    @property
    def default_runner(self) -> str | None:
        return self._default[0] if self._default else None

    def subcommands(self) -> dict[tuple[str, ...], tuple[PluginRecord, SubcommandCapability]]:
        return dict(self._verbs)

    def hooks(self) -> Iterator[tuple[PluginRecord, LifecycleHookCapability]]:
        for rec in self.active():
            for cap in rec.caps(LifecycleHookCapability):
                yield rec, cap

    def executor_for(self, runner: str | None) -> tuple[str, PluginRecord]:
        """The runner name and plugin that runs a step naming ``runner`` (None: the default).

        :raises HmError: no such runner, or it is claimed twice.
        """
        name = runner if runner is not None else self.default_runner
        if name is None:
            raise PluginLoadError(
                "no plugin provides a default runner",
                path="(no plugin)",
                where="runners",
                hint="name a runner on each step, or install a plugin whose step_executor has default: true",
            )
        rec = self._runners.get(name)
        if rec is None:
            for conflict in self.conflicts:
                if f"runner '{name}'" in conflict.what:
                    raise conflict
            available = ", ".join(sorted(self._runners)) or "none"
            raise HmError(
                f"no plugin provides runner '{name}' (available: {available})",
                where="runners",
                hint="check the step's runner, or install the plugin that provides it; `hm plugin list` shows them",
            )
        return name, rec

    def load(self, rec: PluginRecord) -> Plugin:
        """The plugin of ``rec``, loaded (once) in process or in a worker, as
        :attr:`policy` says."""
        if rec.error is not None:
            raise rec.error
        if rec.loaded is None:
            from hm.runtime.plugin import open_plugin

            plugin = open_plugin(rec.path, isolation=self.policy.for_plugin(rec.name))
            if plugin.manifest != rec.manifest:
                plugin.transport.close()
                raise _manifest_changed(rec)
            rec.loaded = plugin
        return rec.loaded


def _manifest_changed(rec: PluginRecord) -> PluginLoadError:
    try:
        unchanged = rec.key is not None and file_key(rec.path) == rec.key
    except OSError:
        unchanged = False
    if unchanged:
        return PluginLoadError(
            "returned a different manifest than when hm listed it, although the file did not change",
            path=str(rec.path),
            plugin=rec.name,
            stage="manifest",
            hint="a plugin's manifest must be the same every time it is asked; report this to the plugin's author",
        )
    return PluginLoadError(
        "changed on disk while hm was running", path=str(rec.path), plugin=rec.name, hint="run the command again"
    )


def _conflict(what: str, recs: list[PluginRecord]) -> PluginConflictError:
    names = " and ".join(r.label for r in recs)
    return PluginConflictError(
        f"{what} is claimed by {names}",
        path=str(recs[0].path),
        where="plugins",
        hint="keep only one: `hm plugin remove NAME` for a user or project plugin, "
        "or take the other off HM_PLUGIN_PATH or uninstall its package",
    )


def file_key(path: Path) -> FileKey:
    """What the manifest cache keys a plugin by: a library's own identity, or a
    stdio plugin's descriptor combined with the files its command names."""
    return descriptor_key(path) if is_descriptor(path) else FileKey.of(path)


def _read_all(candidates: list[Candidate], cache: ManifestCache) -> list[PluginRecord]:
    records = [PluginRecord(c.path, c.origin) for c in candidates]
    misses: list[tuple[PluginRecord, FileKey]] = []
    for rec in records:
        try:
            key = file_key(rec.path)
        except OSError as exc:
            what = f"cannot be read: {exc.strerror}"
            rec.error = PluginLoadError(what, path=str(rec.path), hint="check its permissions")
            continue
        rec.key = key
        outcome = cache.get(rec.path, key)
        if outcome is None:
            misses.append((rec, key))
        else:
            rec.manifest, rec.abi, rec.error = outcome.manifest, outcome.abi, outcome.error
    if misses:
        from hm.runtime.probe import probe  # only a cache miss runs plugin code

        pool = ThreadPoolExecutor(max_workers=min(8, len(misses)), thread_name_prefix="hm-probe")
        try:
            results = [f.result() for f in [pool.submit(probe, rec.path) for rec, _key in misses]]
        except BaseException:  # Ctrl-C: stop every probe now, so nothing waits for a hung library
            child_process.kill_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        for (rec, key), result in zip(misses, results, strict=True):
            if result.definitive:
                cache.put(rec.path, key, result.outcome)
            rec.manifest, rec.abi, rec.error = result.outcome.manifest, result.outcome.abi, result.outcome.error
    return records
