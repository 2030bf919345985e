"""The client side of ``hm run --cluster``: each step's ``execute_step`` becomes a Dask task.

The scheduler (``hm.run.scheduler``) is unchanged: it calls
:meth:`RemotePlugin.execute_step` on a thread as it calls a local plugin, so
chains, forks, waits, fail-fast, ``--keep-going``, timeouts and ``--parallelism``
(calls in flight = tasks in flight) are the same code. Here that call:

* uploads the plugin's library once per run (``scatter``; Dask copies it to a
  worker the first time a task there needs it) and the run's workspace archive
  once (the first step that has no base);
* submits :func:`hm.cluster.task.run_step` with the chain's base snapshot future
  as an argument, so Dask moves the snapshot to the worker that runs the step;
* serves the step's host-API messages as they stream in (``hm.cluster.wire``)
  with the run's own services: logs and events reach the bus live, BUILD/STEP
  KV live in the run's memory and PLUGIN KV in the client's store;
* cancels the task (Dask's own cancel, which the worker's watcher sees) once ``should_cancel`` is true
  here: Ctrl-C, fail-fast, a hook's abort or the step's timeout.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec

from hm import telemetry
from hm.cluster import wire
from hm.cluster.connect import Cluster
from hm.errors import HmError, PluginCallError, PluginLoadError
from hm.runtime import CallContext, HostServices, Plugin, kill_grace, serve_event, serve_note, serve_request
from hm_plugin_sdk.protocol import ExecutorInput, StepResult

__all__ = ["ClusterRun", "RemotePlugin"]

#: How often a waiting step looks at ``should_cancel`` and at its task.
_POLL_SECONDS = 0.02
#: After its task finished, how long a step waits for the last of its messages.
_DRAIN_SECONDS = 10.0
#: After cancelling its task, how long a step waits to hear that it had started.
_START_WAIT_SECONDS = 1.0

_encode = msgspec.msgpack.Encoder().encode
_result = msgspec.msgpack.Decoder(StepResult)


class _Attempt:
    """One step's task, as the client follows it."""

    def __init__(self, ctx: CallContext) -> None:
        self.ctx = ctx
        self.ended = threading.Event()
        self.result: bytes | None = None
        self.info: dict[str, Any] = {}
        self.worker: str | None = None
        #: Its task was cancelled (the step was asked to stop).
        self.cancelled = False
        #: The Queue its requests are answered on, made at the first one (refcounted on the scheduler).
        self.replies: Any = None


class ClusterRun:
    """A run's connection to its cluster: uploads, submissions and the message stream."""

    def __init__(self, cluster: Cluster, run_id: str, *, keep: set[str], fetch: set[str]) -> None:
        self.cluster = cluster
        self.client = cluster.client
        self.run_id = run_id
        self.topic = wire.topic(run_id)
        #: Steps whose workspace a later step builds in (their snapshot is kept on the cluster).
        self._keep = keep
        #: Steps whose workspace is needed here too (artifacts, the step cache, HM_KEEP_WORKSPACES).
        self._fetch = fetch
        self._attempts: dict[str, _Attempt] = {}
        self._snapshots: dict[str, Any] = {}
        #: The worker each kept snapshot is on, and whether chains are pinned to it.
        self._ran_on: dict[str, str] = {}
        self._pin = os.environ.get("HM_CLUSTER_CHAINS", "move") == "pin"
        self._blobs: dict[str, tuple[str, Any]] = {}
        self._archive: Any = None
        self._lock = threading.Lock()
        self._futures: set[Any] = set()
        # Requests (KV, config) are answered off the client's event loop: they touch
        # sqlite and a Queue's sync API, which must not run on the loop's thread.
        self._answers = ThreadPoolExecutor(2, thread_name_prefix="hm-cluster-answers")
        self._traced = telemetry.tracer() is not None
        self.client.subscribe_topic(self.topic, self._on_message)

    # -- the message stream (on the client's event loop) ------------------------------
    def _on_message(self, event: tuple[float, list[Any]]) -> None:
        msg = event[1]
        attempt = self._attempts.get(msg[0])
        if attempt is None:
            return  # a step that already ended (or an earlier run's leftovers)
        code, args = msg[1], msg[2:]
        if code == wire.START:
            attempt.worker = args[0]
            if self._traced:
                from hm.telemetry.run_spans import annotate_step

                annotate_step(attempt.ctx.step_key or "", worker=args[0])
        elif code == wire.END:
            attempt.result, attempt.info = args[0], args[1] or {}
            attempt.ended.set()
        elif code == wire.EVENT:
            serve_event(attempt.ctx, args[0])
        elif code == wire.REQUEST:
            self._answers.submit(self._answer, msg[0], attempt, args[0], args[1], args[2:])
        else:
            serve_note(attempt.ctx, code, args)

    def _answer(self, token: str, attempt: _Attempt, req: int, fn: int, args: list[Any]) -> None:
        from distributed import Queue

        status, value = serve_request(attempt.ctx, fn, args)
        if attempt.replies is None:
            attempt.replies = Queue(wire.reply_queue(token), client=self.client)
        attempt.replies.put([req, status, value if status == 0 else None])

    # -- uploads ---------------------------------------------------------------------
    def _blob(self, plugin: Plugin) -> tuple[str, Any]:
        """The library's sha256 and its scattered bytes (None: workers find it by hash)."""
        import hashlib

        with self._lock:
            if plugin.path not in self._blobs:
                data = Path(plugin.path).read_bytes()
                sha = hashlib.sha256(data).hexdigest()
                upload = os.environ.get("HM_CLUSTER_UPLOAD", "1") != "0"
                self._blobs[plugin.path] = (sha, self.client.scatter(data, hash=False) if upload else None)
            return self._blobs[plugin.path]

    def _archive_future(self, services: HostServices) -> Any:
        with self._lock:
            if self._archive is None:
                archive = services.archive  # type: ignore[attr-defined]
                self._archive = self.client.scatter(archive.read(0, archive.size()) or b"", hash=False)
            return self._archive

    def _base_future(self, base_workspace: str | None) -> Any:
        """The chain's snapshot on the cluster, or the local base (a cache hit) sent now."""
        if base_workspace is None:
            return None
        key = Path(base_workspace).name
        future = self._snapshots.get(key)
        if future is not None:
            return future
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for child in sorted(Path(base_workspace).iterdir()):
                tar.add(child, arcname=child.name)
        return self.client.scatter(buf.getvalue(), hash=False)

    # -- one step --------------------------------------------------------------------
    def execute(self, plugin: RemotePlugin, inp: ExecutorInput, services: HostServices) -> StepResult:
        from hm.cluster.task import extract_snapshot, run_step

        key = inp.step.key
        token = f"{key}-{uuid.uuid4().hex[:8]}"
        ctx = plugin.context("execute_step", services, key)
        attempt = _Attempt(ctx)
        self._attempts[token] = attempt
        sha, blob = self._blob(plugin)
        spec = {
            "token": token,
            "run_id": self.run_id,
            "topic": self.topic,
            "step": key,
            "plugin": plugin.name,
            "plugin_sha": sha,
            "plugin_file": Path(plugin.path).name,
            "isolation": plugin.isolation,
            "input": _encode(inp),
            "snapshot": key in self._keep or key in self._fetch,
        }
        if self._traced:  # one trace covers the run: the worker's spans are the step's children
            from hm.telemetry.run_spans import step_span

            spec["trace"] = telemetry.carrier(step_span(key))
            spec["otel"] = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
        archive = self._archive_future(services) if inp.base_workspace is None else None
        placement: dict[str, Any] = {}
        if self._pin and inp.base_workspace is not None:
            where = self._ran_on.get(Path(inp.base_workspace).name)
            if where is not None:  # HM_CLUSTER_CHAINS=pin: the chain stays where its snapshot is
                placement = {"workers": [where], "allow_other_workers": False}
        future = self.client.submit(
            run_step,
            spec,
            blob,
            archive,
            self._base_future(inp.base_workspace),
            key=f"hm-step-{token}",
            pure=False,
            **placement,
        )
        self._futures.add(future)
        try:
            self._follow(attempt, future, services)
        finally:
            del self._attempts[token]
            if attempt.replies is not None:  # every answer was taken: the step ended after them
                attempt.replies.close()
        info = attempt.info
        if attempt.result is None:
            raise self._error(plugin, attempt, info)
        if attempt.cancelled:  # its task is gone, and a stopped step's workspace feeds nothing
            self._futures.discard(future)
            return _result.decode(attempt.result)
        if key in self._keep:
            self._snapshots[key] = future
            if attempt.worker is not None:
                self._ran_on[key] = attempt.worker
        if key in self._fetch:
            snap = future.result()
            if snap is not None:
                extract_snapshot(snap, Path(inp.workspace))
        if key not in self._keep:
            future.release()
            self._futures.discard(future)
        return _result.decode(attempt.result)

    def _follow(self, attempt: _Attempt, future: Any, services: HostServices) -> None:
        """Wait for the step's end; cancel its task (Dask's own cancel) once it should stop.

        A cancelled task that runs is marked cancelled on its worker, where hm's watcher
        turns ``should_cancel`` true; the step then ends as its runner decides, and its
        end message still comes. A task cancelled before it started never runs.
        """
        told_at: float | None = None
        drain_until: float | None = None
        ctx = attempt.ctx
        while not attempt.ended.wait(_POLL_SECONDS):
            now = time.monotonic()
            if told_at is None and services.should_cancel(ctx):
                told_at = now
                attempt.cancelled = True
                future.cancel(force=True)
            if told_at is not None:
                if attempt.worker is None and now - told_at > _START_WAIT_SECONDS:
                    msg = "cancelled before it started on the cluster"
                    attempt.result = _encode(StepResult(exit_code=130, status="cancelled", message=msg))
                    return
                if now - told_at > kill_grace() + _DRAIN_SECONDS:  # the scheduler gave up on it long ago
                    attempt.info = {"kind": "task", "what": f"its worker {attempt.worker} did not stop it"}
                    return
                continue
            if future.status in ("error", "cancelled", "lost"):
                exc = future.exception() if future.status == "error" else None
                worker = getattr(getattr(exc, "last_worker", None), "address", None) or attempt.worker
                attempt.info = {
                    "kind": "lost" if exc is None or "KilledWorker" in type(exc).__name__ else "task",
                    "what": f"its task on worker {worker or '?'} ended: {exc or future.status}",
                    "worker": worker,
                }
                return
            if future.status == "finished":
                # The result is in; its last messages may still be on their way.
                drain_until = drain_until or now + _DRAIN_SECONDS
                if now > drain_until:
                    attempt.info = {"kind": "task", "what": "its task ended without its last message"}
                    return

    @staticmethod
    def _error(plugin: Plugin, attempt: _Attempt, info: dict[str, Any]) -> Exception:
        kind = info.get("kind")
        what = info.get("what") or "it failed on its worker"
        if kind in ("missing", "load"):
            return PluginLoadError(what, path=plugin.path, plugin=plugin.name, hint=info.get("hint"), stage=kind)
        return PluginCallError(
            what,
            path=plugin.path,
            plugin=plugin.name,
            code="worker_lost" if kind == "lost" else info.get("code") or "cluster",
            hint=info.get("hint"),
        )

    def close(self) -> None:
        """Cancel what still runs, release what the run keeps on the cluster."""
        try:
            self.client.unsubscribe_topic(self.topic)
        except Exception:
            pass
        futures = [f for f in self._futures if not f.done()]
        if futures:
            try:
                self.client.cancel(futures, force=True)
            except Exception:
                pass
        self._snapshots.clear()
        self._futures.clear()
        try:  # the run's cancel and attempt marks
            self.client.set_metadata(["hm", self.run_id], None)
        except Exception:
            pass
        self._answers.shutdown(wait=False, cancel_futures=True)


class RemotePlugin(Plugin):
    """A loaded plugin whose steps run on the cluster; every other call stays local."""

    __slots__ = ("_run",)

    def __init__(self, local: Plugin, run: ClusterRun) -> None:
        super().__init__(local.manifest, local.transport)
        self._run = run

    def execute_step(self, inp: ExecutorInput, services: HostServices) -> StepResult:
        if inp.resolve_only:  # resolving an image id for the step cache asks this machine
            return super().execute_step(inp, services)
        try:
            return self._run.execute(self, inp, services)
        except HmError:
            raise
        except Exception as exc:  # the scheduler went away, a comm broke: the step's error, not hm's
            raise PluginCallError(
                f"the cluster at {self._run.cluster.spec} failed while it ran the step ({type(exc).__name__}: {exc})",
                path=self.path,
                plugin=self.name,
                code="cluster",
                hint="check that the scheduler and its workers are up, then run again",
            ) from None
