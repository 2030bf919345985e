"""Run records: what a run leaves behind for later, so nothing it showed is lost.

Each run of a project is kept in a folder of its own under hm's state directory
(``$HM_HOME/state/runs/<project>/<run id>/``, or the platform's state folder):

    run.json           id, pipeline, project, started, pid; status and exit code at the end
    pipeline.json      the pipeline as it ran (IR)
    plan.json          its stages and chains
    events.jsonl       every build event but step_log, one per line
    logs/KEY.log       each step's full output, one line per line: ``TS STREAM LINE``
                       (STREAM is ``out`` or ``err``; ``hm`` marks what hm adds)
    artifacts/KEY/...  the files the step declared as artifacts

Runs live in the *user's* state directory, not in the project: a record holds
logs (which may hold secrets) and artifacts (which may be large) that must never
be committed or shipped with the project by accident, and read-only checkouts
still get records. Each step's log is kept up to ``LOG_CAP_BYTES``; beyond that a
marker line says how much was left out. The last ``KEEP_RUNS`` runs of a project
are kept (``HM_KEEP_RUNS``); ``hm runs prune --keep N`` keeps fewer.

Writing a record never fails a run: on a full disk (any OSError) the recorder
warns once and stops recording.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import msgspec

from hm import paths
from hm.errors import UsageError
from hm_plugin_sdk.protocol import BuildEvent, BuildFinished, StepFinished, StepLog

__all__ = ["KEEP_RUNS", "LOG_CAP_BYTES", "RunInfo", "RunRecorder", "RunStore"]

#: Output kept per step; the rest is counted and named by a marker line.
LOG_CAP_BYTES = 64 << 20
#: Runs kept per project unless HM_KEEP_RUNS says otherwise.
KEEP_RUNS = 20
_encode = msgspec.json.Encoder().encode
_STREAM_TAG = {"stdout": "out", "stderr": "err", "hm": "hm"}


def _text(ts: str, stream: str, lines: list[str]) -> bytes:
    """Log lines as a record keeps them: ``TS STREAM LINE``, one per line."""
    prefix = f"{ts} {_STREAM_TAG[stream]} "
    return (prefix + ("\n" + prefix).join(lines) + "\n").encode("utf-8", "surrogateescape")


def keep_runs() -> int:
    try:
        return max(1, int(os.environ.get("HM_KEEP_RUNS", KEEP_RUNS)))
    except ValueError:
        return KEEP_RUNS


def project_runs_dir(project_root: Path) -> Path:
    """The folder of one project's runs: its name and a digest of its path."""
    root = project_root.resolve()
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", root.name) or "root"
    digest = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return paths.runs_dir() / f"{name}-{digest}"


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(tmp, path)


class RunRecorder:
    """A sink of the run's event bus that writes its record."""

    def __init__(
        self,
        run_id: str,
        *,
        project_root: Path,
        pipeline_json: bytes,
        plan: list[list[list[str]]],
        warn: Callable[[str], None],
    ) -> None:
        self.run_id = run_id
        self.dir = project_runs_dir(project_root) / run_id
        self._warn = warn
        self._broken = False
        self._logs: dict[str, tuple[IO[bytes], int]] = {}
        self._events: IO[bytes] | None = None
        self._meta: dict[str, Any] = {"run_id": run_id, "project_root": str(project_root), "pid": os.getpid()}
        self._guard(self._open, pipeline_json, plan)

    # -- writing --------------------------------------------------------------------
    def _guard(self, fn: Callable[..., None], *args: Any) -> None:
        if self._broken:
            return
        try:
            fn(*args)
        except OSError as exc:
            self._broken = True
            self._warn(
                f"the run record in {self.dir} could not be written ({exc.strerror or exc}); the run goes on without it"
            )

    def _open(self, pipeline_json: bytes, plan: list[list[list[str]]]) -> None:
        (self.dir / "logs").mkdir(parents=True)
        (self.dir / "pipeline.json").write_bytes(pipeline_json)
        _write_json(self.dir / "plan.json", {"stages": plan})
        self._events = open(self.dir / "events.jsonl", "ab")

    def __call__(self, event: BuildEvent) -> None:
        self._guard(self._record, event)

    def _record(self, event: BuildEvent) -> None:
        if type(event) is StepLog:
            self._log(event)
            return
        assert self._events is not None
        self._events.write(_encode(event) + b"\n")
        self._events.flush()
        kind = event.__struct_config__.tag
        if kind == "build_started":
            self._meta.update(pipeline=event.pipeline, started=event.ts, status="running")  # type: ignore[union-attr]
            _write_json(self.dir / "run.json", self._meta)
        elif isinstance(event, StepFinished):
            log = self._logs.pop(event.step_key, None)
            if log is not None:
                log[0].close()
        elif isinstance(event, BuildFinished):
            self._meta.update(
                status=event.status, exit_code=event.exit_code, duration_ms=event.duration_ms, finished=event.ts
            )
            _write_json(self.dir / "run.json", self._meta)

    def _log(self, event: StepLog) -> None:
        self._write_logs(event.step_key, _text(event.ts, event.stream, [event.line]), event.ts)

    def logs(self, events: list[StepLog]) -> None:
        """A chunk's step_log events (one step, one stream, one time), in one write."""
        if events:
            first = events[0]
            data = _text(first.ts, first.stream, [e.line for e in events])
            self._guard(self._write_logs, first.step_key, data, first.ts)

    def _write_logs(self, key: str, data: bytes, ts: str) -> None:
        entry = self._logs.get(key)
        if entry is None:
            entry = (open(self.dir / "logs" / f"{key}.log", "ab"), 0)
        f, written = entry
        if written < LOG_CAP_BYTES:
            if written + len(data) > LOG_CAP_BYTES:
                room = data.rfind(b"\n", 0, LOG_CAP_BYTES - written) + 1
                f.write(data[:room])
                cut = f"[hm: the log of this step is cut here: it is kept up to {LOG_CAP_BYTES} bytes]"
                f.write(_text(ts, "hm", [cut]))
            else:
                f.write(data)
        self._logs[key] = (f, written + len(data))

    def flush(self) -> None:
        def flush_all() -> None:
            for f, _ in self._logs.values():
                f.flush()

        self._guard(flush_all)

    def artifacts_dir(self, step_key: str) -> Path | None:
        """Where the step's artifacts go, or None when there is no record."""
        return None if self._broken else self.dir / "artifacts" / step_key

    def warning(self, text: str) -> None:
        """Warnings are the terminal's; the record holds events."""

    def close(self) -> None:
        def close_all() -> None:
            for f, _ in self._logs.values():
                f.close()
            self._logs.clear()
            if self._events is not None:
                self._events.close()
                self._events = None

        self._guard(close_all)


@dataclass(frozen=True)
class RunInfo:
    """One recorded run, as ``run.json`` says."""

    run_id: str
    dir: Path
    pipeline: str
    started: str
    status: str
    exit_code: int | None
    duration_ms: int | None
    pid: int | None

    @property
    def live(self) -> bool:
        """Still running: its status says so and its process exists."""
        if self.status != "running" or not self.pid:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    @property
    def shown_status(self) -> str:
        return "died" if self.status == "running" and not self.live else self.status


class RunStore:
    """The recorded runs of one project, newest first."""

    def __init__(self, project_root: Path) -> None:
        self.dir = project_runs_dir(project_root)

    def runs(self) -> list[RunInfo]:
        found = []
        for entry in self.dir.iterdir() if self.dir.is_dir() else ():
            info = _read_info(entry)
            if info is not None:
                found.append(info)
        return sorted(found, key=lambda r: r.started, reverse=True)

    def find(self, run_id: str | None) -> RunInfo:
        """The run whose id starts with ``run_id`` (``None``: the newest).

        :raises UsageError: no such run, an ambiguous prefix, or no run at all.
        """
        runs = self.runs()
        if not runs:
            raise UsageError(
                "this project has no recorded run", where="hm runs", hint="`hm run` records every run it makes"
            )
        if run_id is None:
            return runs[0]
        matches = [r for r in runs if r.run_id.startswith(run_id)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            shown = ", ".join(r.run_id for r in runs[:5])
            raise UsageError(
                f"no recorded run {run_id!r} (the newest: {shown})",
                where="hm runs",
                hint="`hm runs` lists the recorded runs; older ones may have been pruned",
            )
        raise UsageError(
            f"{run_id!r} matches {len(matches)} runs", where="hm runs", hint="give more characters of the run id"
        )

    def prune(self, keep: int) -> list[RunInfo]:
        """Delete all but the newest ``keep`` runs (never a live one); returns those deleted."""
        gone = []
        for info in self.runs()[keep:]:
            if info.live:
                continue
            shutil.rmtree(info.dir, ignore_errors=True)
            gone.append(info)
        return gone


def _read_info(folder: Path) -> RunInfo | None:
    try:
        meta = json.loads((folder / "run.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or "run_id" not in meta:
        return None
    return RunInfo(
        run_id=str(meta["run_id"]),
        dir=folder,
        pipeline=str(meta.get("pipeline", "?")),
        started=str(meta.get("started", "")),
        status=str(meta.get("status", "running")),
        exit_code=meta.get("exit_code"),
        duration_ms=meta.get("duration_ms"),
        pid=meta.get("pid"),
    )


_STREAM_NAME = {"out": "stdout", "err": "stderr", "hm": "hm"}


def read_log(info: RunInfo, step_key: str, *, start: int = 0) -> tuple[list[dict[str, str]], int]:
    """The step's log lines (``{"ts", "stream", "line"}``) from byte ``start``, and
    where the next read starts (only whole lines, so a live log can be followed)."""
    path = info.dir / "logs" / f"{step_key}.log"
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return [], start
    end = data.rfind(b"\n") + 1
    lines = []
    for raw in data[:end].decode("utf-8", "replace").split("\n")[:-1]:
        ts, stream, line = [*raw.split(" ", 2), "", ""][:3]
        lines.append({"ts": ts, "stream": _STREAM_NAME.get(stream, stream), "line": line})
    return lines, start + end


def read_events(info: RunInfo) -> Iterator[dict[str, Any]]:
    try:
        with open(info.dir / "events.jsonl", "rb") as f:
            for line in f:
                if line.endswith(b"\n"):
                    yield json.loads(line)
    except FileNotFoundError:
        return
