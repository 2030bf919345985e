"""The step cache around the steps of one run: the scheduler calls :meth:`StepCache.before`
once a step has started and :meth:`StepCache.after` once it ended; nothing else
in the run knows about the cache.

``before`` (for a step with ``cache: {policy: read|read_write}``):

1. digests the step's input workspace: the previous step's workspace in its
   chain (known without reading it again when that step was itself restored or
   stored), or the run's workspace archive;
2. asks the runner for the image's id, for a step with an image (a runner that
   says ``resolves_images`` answers an ``ExecutorInput`` with ``resolve_only``);
3. derives the key (:mod:`hm.cache._key`) and reads the entry. A hit restores
   the workspace (every blob checked against its digest), replays the recorded
   log as ``step_log`` events marked ``replayed``, and the step is not run.
   Anything damaged is discarded with a warning, and the step runs.

``after`` stores a ``read_write`` step that succeeded and was not a hit: its
workspace, its log, and then the entry; the cache is then trimmed to its bound.
What the cache folder refuses (read-only, full) is a warning: the step's own
result stands, uncached.

The answer is what ``step_finished`` reports as ``cache``: ``"hit"``,
``"miss"``, ``"stored"``, or ``None`` for a step without a cache policy.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from hm.cache import (
    CacheConfig,
    CacheStore,
    CorruptEntry,
    Entry,
    KeyParts,
    TooBig,
    Unsupported,
    archive_nodes,
    cache_key,
    clear_dir,
    copy_hm_files,
    decode_log,
    encode_log,
    extract_hm_files,
    format_size,
    restore,
    scan,
    snapshot,
    tree_digest,
)
from hm.errors import HmError
from hm.pipeline.ir import CommandStep
from hm.run.events import now_ts
from hm.run.services import RunServices, StepState
from hm.runtime import Plugin
from hm_plugin_sdk.protocol import ExecutorInput, StepExecutorCapability

__all__ = ["CacheStatus", "CacheTicket", "StepCache"]

log = logging.getLogger("hm.run.cache")

CacheStatus = Literal["hit", "miss", "stored"]


@dataclass
class CacheTicket:
    """What :meth:`StepCache.before` found out about one step, for :meth:`StepCache.after`."""

    step: CommandStep
    policy: Literal["read", "read_write"]
    #: ``None``: this step cannot be cached this time (a warning said why).
    key: str | None = None
    #: The step's image (its own or the pipeline's default) and that image's id.
    image: str | None = None
    image_id: str | None = None
    #: A hit: the entry whose workspace and log were restored.
    entry: Entry | None = None

    @property
    def hit(self) -> bool:
        return self.entry is not None

    @property
    def message(self) -> str:
        """``step_finished``'s message for a hit."""
        assert self.entry is not None
        took = f"{self.entry.duration_ms / 1000:.1f} s"
        return f"restored from the step cache (stored by run {self.entry.run_id}, where it took {took})"


class StepCache:
    """The cache as one run uses it (thread-safe: steps of a run look up and store in parallel)."""

    def __init__(
        self,
        config: CacheConfig,
        services: RunServices,
        *,
        pipeline: str,
        warn: Callable[[str], None],
    ) -> None:
        self.config = config
        self.store = CacheStore(config.dir)
        self.services = services
        self.pipeline = pipeline
        self._warn = warn
        self._lock = threading.Lock()
        self._opened = False
        #: Why nothing can be written (a read-only or unusable folder), once known.
        self._write_error: OSError | None = None
        self._archive_tree: str | None = None
        #: step key -> tree digest of its workspace once it is done (restored or stored).
        self._outputs: dict[str, str] = {}
        self._usage: int | None = None
        #: Held while measuring and evicting (which may take a while), apart from _lock.
        self._trim_lock = threading.Lock()
        self._warned: set[str] = set()

    # -- before -------------------------------------------------------------------
    def before(
        self,
        step: CommandStep,
        inp: ExecutorInput,
        *,
        runner: str,
        plugin: Plugin,
        base: str | None,
        state: StepState,
    ) -> CacheTicket | None:
        """Look the step up; on a hit, restore its workspace and replay its log.

        :param base: the key of the step whose workspace this one starts from.
        :returns: ``None`` for a step without a cache policy.
        """
        if step.cache is None or step.cache.policy == "none":
            return None
        ticket = CacheTicket(step, step.cache.policy)
        self._open()
        stop = state.should_stop
        started = time.monotonic()
        try:
            tree = self._input_tree(step, inp, base, stop)
        except InterruptedError:
            return ticket
        if tree is None:
            return ticket
        digested = time.monotonic()
        image = inp.step.image
        image_id = self._image_id(step, inp, runner, plugin) if image else None
        if image and image_id is None:
            return ticket
        resolved = time.monotonic()
        parts = KeyParts(
            runner=runner,
            plugin=plugin.name,
            plugin_version=plugin.manifest.version,
            image_id=image_id,
            step_key=step.key,
            cmd=inp.step.cmd,
            env=dict(inp.env),
            runner_args=dict(inp.step.runner_args),
            input_tree=tree,
            user_key=step.cache.key,
        )
        ticket.key, ticket.image, ticket.image_id = cache_key(parts), image, image_id
        entry = self._hit(step, ticket.key, Path(inp.workspace), inp.base_workspace)
        log.debug(
            "%s: %s %s (input digest %.0f ms, image %.0f ms, lookup%s %.0f ms)",
            step.key,
            "hit" if entry else "miss",
            ticket.key[:12],
            (digested - started) * 1000,
            (resolved - digested) * 1000,
            " and restore" if entry else "",
            (time.monotonic() - resolved) * 1000,
        )
        if entry is not None:
            ticket.entry = entry
            return ticket
        if ticket.policy == "read_write":
            with state.lock:
                state.record, state.record_bytes, state.record_overflowed = [], 0, False
        return ticket

    def _open(self) -> None:
        with self._lock:
            if self._opened:
                return
            self._opened = True
            try:
                self.store.ensure()
            except OSError as exc:
                # A read-only cache can still give hits; what it refuses is said at the first store.
                self._write_error = exc

    def _input_tree(
        self, step: CommandStep, inp: ExecutorInput, base: str | None, stop: Callable[[], bool]
    ) -> str | None:
        """The tree digest of what the step starts from (``None``: it cannot be digested)."""
        try:
            if inp.base_workspace is None:
                return self._archive_digest()
            known = self._outputs.get(base or "")
            if known is not None:
                return known
            return tree_digest(scan(Path(inp.base_workspace), stop=stop))
        except Unsupported as exc:
            self._say(step, f"runs uncached: its input workspace holds {exc.what} at {exc.path}", "")
        except OSError as exc:
            self._say(step, f"runs uncached: its input workspace could not be read ({_os_error(exc)})", "")
        return None

    def _archive_digest(self) -> str:
        with self._lock:
            if self._archive_tree is None:
                archive = self.services.archive
                self._archive_tree = tree_digest(archive_nodes(archive.read, archive.size()))
            return self._archive_tree

    def _image_id(self, step: CommandStep, inp: ExecutorInput, runner: str, plugin: Plugin) -> str | None:
        """The id of the step's image, from its runner (or from a ``@sha256:`` reference)."""
        image = inp.step.image or ""
        if not _resolves_images(plugin, runner):
            if "@sha256:" in image:
                return image.split("@", 1)[1]
            self._say(
                step,
                f"runs uncached: runner '{runner}' ({plugin.name}) cannot tell the id of its image '{image}'",
                "pin the image by digest (NAME@sha256:…), or ask the plugin's author for `resolves_images`",
                once=f"resolve:{runner}",
            )
            return None
        try:
            result = plugin.execute_step(msgspec.structs.replace(inp, resolve_only=True), self.services)
        except HmError as exc:
            # The step then runs, and fails with this error where a user expects it.
            log.debug("resolving the image of %s failed: %s", step.key, exc.one_line())
            return None
        if not result.image_id:
            self._say(step, f"runs uncached: runner '{runner}' did not report the id of image '{image}'", "")
        return result.image_id or None

    def _hit(self, step: CommandStep, key: str, workspace: Path, base: str | None) -> Entry | None:
        try:
            entry = self.store.read_entry(key)
        except CorruptEntry as exc:
            self._discard(step, key, str(exc))
            return None
        except OSError as exc:
            self._say(step, f"runs: its cache entry could not be read ({_os_error(exc)})", "")
            return None
        if entry is None:
            return None
        try:
            lines = decode_log(self.store.read_blob(entry.log))
            restore(self.store, entry.files, workspace)
            self._own_files(workspace, base)
        except CorruptEntry as exc:
            _empty(workspace)
            self._discard(step, key, str(exc))
            return None
        except OSError as exc:
            _empty(workspace)
            self._say(step, f"runs: restoring it from the cache failed ({_os_error(exc)})", "")
            return None
        self.store.touch_entry(key)
        with self._lock:
            self._outputs[step.key] = entry.tree
        self.services.replay_log(step.key, lines)
        return entry

    def _own_files(self, workspace: Path, base: str | None) -> None:
        """hm's own files (``.hm/*``) are not stored: the current ones, from the step's input."""
        if base is not None:
            copy_hm_files(Path(base), workspace)
        else:
            archive = self.services.archive
            extract_hm_files(archive.read, archive.size(), workspace)

    def _discard(self, step: CommandStep, key: str, why: str) -> None:
        self.store.discard_entry(key)
        self._say(step, f"runs: its cache entry {key[:12]} was damaged ({why}) and is discarded", "")

    # -- after --------------------------------------------------------------------
    def after(
        self,
        ticket: CacheTicket | None,
        *,
        status: str,
        workspace: Path,
        state: StepState,
        runner: str,
        plugin: Plugin,
        image_id: str | None,
        duration_ms: int,
        run_id: str,
    ) -> CacheStatus | None:
        """Store the step if its policy and result allow it; returns ``step_finished.cache``."""
        if ticket is None:
            return None
        if ticket.hit:
            return "hit"
        with state.lock:
            lines, state.record = state.record, None
        if ticket.policy != "read_write" or ticket.key is None or status != "succeeded":
            return "miss"
        step = ticket.step
        if state.record_overflowed or lines is None:
            self._say(step, "was not stored in the cache: it printed more than 64 MiB", "")
            return "miss"
        if ticket.image_id is not None and image_id is not None and image_id != ticket.image_id:
            self._say(step, "was not stored in the cache: its image changed while it ran", "")
            return "miss"
        if self._write_error is not None:
            self._refused(step, self._write_error)
            return "miss"
        started = time.monotonic()
        try:
            snap = snapshot(self.store, workspace, limit=self.config.max_size)
            log_data = encode_log(lines)
            log_digest = hashlib.sha256(log_data).hexdigest()
            added = snap.added + self.store.put_bytes(log_data, log_digest)
            entry = Entry(
                key=ticket.key,
                created=now_ts(),
                run_id=run_id,
                pipeline=self.pipeline,
                step_key=step.key,
                runner=runner,
                plugin=plugin.name,
                plugin_version=plugin.manifest.version,
                image=ticket.image,
                image_id=ticket.image_id,
                duration_ms=duration_ms,
                tree=tree_digest(snap.files),
                files=snap.files,
                log=log_digest,
                log_lines=len(lines),
                size=snap.size + len(log_data),
            )
            self.store.write_entry(entry)
        except TooBig as exc:
            self._say(
                step,
                f"was not stored in the cache: its workspace ({format_size(exc.size)}) is bigger than the "
                f"cache's bound ({format_size(self.config.max_size)})",
                "raise [cache] max_size in .hm/config.toml or HM_CACHE_MAX_SIZE",
            )
            return "miss"
        except Unsupported as exc:
            self._say(step, f"was not stored in the cache: its workspace holds {exc.what} at {exc.path}", "")
            return "miss"
        except CorruptEntry as exc:
            self._say(step, f"was not stored in the cache: {exc}", "")
            return "miss"
        except OSError as exc:
            self._refused(step, exc)
            return "miss"
        log.debug("stored %s as %s in %.3f s", step.key, ticket.key[:12], time.monotonic() - started)
        with self._lock:
            self._outputs[step.key] = entry.tree
        self._trim(added)
        return "stored"

    def _trim(self, added: int) -> None:
        """Evict least recently used entries once this run's additions pass the bound."""
        with self._trim_lock:
            try:
                if self._usage is None:
                    self._usage = self.store.usage()
                else:
                    self._usage += added
                if self._usage > self.config.max_size:
                    self._usage = self.store.evict(self.config.max_size).total
            except OSError as exc:
                log.debug("evicting from the step cache failed: %s", exc)

    def _refused(self, step: CommandStep, exc: OSError) -> None:
        self._say(
            step,
            f"ran uncached: the cache folder {self.config.dir} refused the write ({_os_error(exc)})",
            "free space there (`hm cache prune`), lower [cache] max_size, or set HM_CACHE_DIR to a writable folder",
            once=f"refused:{exc.errno}",
        )

    # -- messages -----------------------------------------------------------------
    def _say(self, step: CommandStep, what: str, hint: str, *, once: str | None = None) -> None:
        with self._lock:
            if once is not None:
                if once in self._warned:
                    return
                self._warned.add(once)
        text = f"step '{step.key}' {what}"
        self._warn(f"{text}; {hint}" if hint else text)


def _resolves_images(plugin: Plugin, runner: str) -> bool:
    return any(
        isinstance(cap, StepExecutorCapability) and runner in cap.runners and cap.resolves_images
        for cap in plugin.manifest.capabilities
    )


def _os_error(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    return f"{what}: {exc.filename}" if exc.filename else what


def _empty(workspace: Path) -> None:
    try:
        clear_dir(workspace)
    except OSError as exc:
        log.debug("could not empty %s after a failed restore: %s", workspace, exc)
