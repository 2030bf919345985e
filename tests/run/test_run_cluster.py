"""``hm run --cluster``: the same pipelines on a real Dask cluster as locally.

One LocalCluster (two worker processes, with nannies) serves the whole module; the
``hm`` under test reaches it as ``--cluster tcp://…`` from a child process, as a
user's hm reaches a remote scheduler. ``--cluster local:2`` is tested once, for
its start and its clean end.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from run_helpers import (
    ROOT,
    Project,
    events,
    finished,
    hm_env,
    kill_pid,
    logs,
    no_traceback,
    popen_hm,
    stop_process,
    wait_for_file,
    wait_gone,
)

distributed = pytest.importorskip("distributed")

PROBE = ["host-fn-probe"]
#: The HM_HOME of the module's cluster workers (set by the fixture).
WORKER_HOME: list[Path] = []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A LocalCluster of 2 worker processes (2 threads each); yields its Client."""
    worker_home = tmp_path_factory.mktemp("worker-home")
    WORKER_HOME[:] = [worker_home]
    env = {"HM_HOME": str(worker_home), "HM_PLUGIN_PATH": "", "PYTHONPATH": str(ROOT)}
    local = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_dashboard_address=None,
        memory_limit=0,
        silence_logs=40,
        env=env,
    )
    client = distributed.Client(local)
    try:
        yield client
    finally:
        client.close()
        local.close()


def _address(client: Any) -> str:
    return str(client.scheduler.address)


def _comparable(evs: list[dict[str, Any]]) -> dict[str, Any]:
    """The events without timing, ids and host names: per step, then the build's end."""
    per_step: dict[str, list[tuple[Any, ...]]] = {}
    drop = {"ts", "run_id", "duration_ms", "project_root"}
    for e in evs:
        body = tuple(sorted((k, repr(v)) for k, v in e.items() if k not in drop))
        per_step.setdefault(e.get("step_key") or e["kind"], []).append(body)
    end = {k: v for k, v in evs[-1].items() if k not in drop}
    return {"steps": per_step, "end": end}


MIXED = """
    a = step("a", "echo made > chain.txt; mkdir -p sub && echo deep > sub/x; echo a-out")
    b = step("b", "cat chain.txt sub/x; echo b >> chain.txt", builds_in=a)
    step("b2", "cat chain.txt; test ! -e from-archive.txt || echo archive-too", builds_in=b)
    step("fork", "cat chain.txt", builds_in=a)
    step("fresh", "cat from-archive.txt; echo oops >&2; exit 3")
    step("probe", "unused", runner="probe")
    wait(continue_on_failure=True)
    step("after", "echo after-the-wait")
"""


def test_the_same_pipeline_gives_the_same_events_locally_and_on_the_cluster(tmp_path: Path, cluster: Any) -> None:
    (tmp_path / "from-archive.txt").write_text("in the archive\n")
    project = Project(tmp_path).pipeline(MIXED)
    (tmp_path / ".hm" / "probe.txt").write_text("hello-config\n")
    remote, remote_evs = project.run_json("-k", "--cluster", _address(cluster), plugins=PROBE)
    # The probe's PLUGIN-scope write went to the client's persistent store, not a worker's.
    from hm.runtime import PluginKvStore

    assert PluginKvStore.default().get("host-fn-probe", b"probe") == b"42"
    assert list(WORKER_HOME[0].rglob("*.sqlite3")) == []
    local, local_evs = project.run_json("-k", plugins=PROBE)
    no_traceback(remote)
    assert local.returncode == remote.returncode == 1, remote.stderr
    assert _comparable(remote_evs) == _comparable(local_evs)
    # A chain's workspace arrives intact, through a fork too, and the archive reaches a fresh step.
    assert logs(remote_evs, "b") == ["made", "deep"]
    assert logs(remote_evs, "b2") == ["made", "b", "archive-too"]
    assert logs(remote_evs, "fork") == ["made"]
    assert logs(remote_evs, "fresh") == ["in the archive", "oops"]
    # Every host function behaved on a worker: KV scopes, events, config, archive.
    assert finished(remote_evs)["probe"]["message"].startswith("host-fn-probe: 19/19")
    assert "config probe.txt hello-config" in logs(remote_evs, "probe")
    assert finished(remote_evs)["after"]["status"] == "succeeded"


def _cluster_processes() -> set[int]:
    """PIDs of Dask worker processes (multiprocessing children running distributed)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"multiprocessing" in cmd or b"distributed" in cmd:
                found.add(int(entry.name))
    return found


class _Receiver(http.server.ThreadingHTTPServer):
    """A small OTLP/HTTP trace receiver: decodes every ExportTraceServiceRequest it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.spans: list[Any] = []
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def wait_for(self, names: set[str], timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                by_name = {span.name: span for span in self.spans}
            if names <= set(by_name):
                return by_name
            time.sleep(0.05)
        raise AssertionError(f"spans missing: {names - set(by_name)} (got {sorted(by_name)})")


class _ReceiverHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
        server: _Receiver = self.server  # type: ignore[assignment]
        with server.lock:
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    server.spans.extend(scope_spans.spans)
        reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    pytest.importorskip("opentelemetry.proto")
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _attrs(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out


def test_ctrl_c_on_the_terminal_leaves_local_workers_to_hm(tmp_path: Path) -> None:
    # A terminal's Ctrl-C reaches the whole foreground process group: local:N's worker
    # processes too. They leave it to hm, so the step is cancelled, not lost with its worker.
    before = _cluster_processes()
    pid_file = tmp_path / "pid"
    project = Project(tmp_path).pipeline(f'step("sleepy", "echo $$ > {pid_file}; sleep 30")')
    full = {**os.environ, **hm_env(), "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hm", "run", "--format", "json", "--cluster", "local:2"],
        cwd=project.root,
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    pid = None
    try:
        pid = int(wait_for_file(pid_file, timeout=30))
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
        evs = events(out.decode())
        assert finished(evs)["sleepy"]["status"] in ("cancelled", "failed"), finished(evs)["sleepy"]
        assert evs[-1]["kind"] == "build_finished" and evs[-1]["status"] == "cancelled"
        assert "Traceback" not in err.decode() and "KeyboardInterrupt" not in err.decode()
        time.sleep(0.5)
        assert _cluster_processes() - before == set(), "the local cluster's processes outlived the run"
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)


def test_local_n_runs_traced_on_its_own_cluster_and_leaves_nothing_behind(tmp_path: Path, receiver: _Receiver) -> None:
    before = _cluster_processes()
    project = Project(tmp_path).pipeline('a = step("a", "echo one > f")\nstep("b", "cat f", builds_in=a)')
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    result, evs = project.run_json("--cluster", "local:2", env=otel)
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert logs(evs, "b") == ["one"]
    assert evs[-1]["kind"] == "build_finished" and evs[-1]["status"] == "succeeded"
    assert "exit()" not in result.stderr, result.stderr
    time.sleep(0.5)
    assert _cluster_processes() - before == set(), "the local cluster's processes outlived the run"

    # One trace: run -> step -> the attempt on its worker -> the plugin call there.
    spans = receiver.wait_for({"hm run t", "step a", "step b", "shell execute_step"})
    run, a, b = spans["hm run t"], spans["step a"], spans["step b"]
    assert run.parent_span_id == b"" and _attrs(run)["hm.exit_code"] == 0
    assert {s.trace_id for s in receiver.spans} == {run.trace_id}
    for step in (a, b):
        assert step.parent_span_id == run.span_id
        attrs = _attrs(step)
        assert (attrs["hm.plugin"], attrs["hm.runner"], attrs["hm.exit_code"]) == ("shell", "shell", 0)
        assert attrs["hm.worker"].startswith("tcp://127.0.0.1:")
        (attempt,) = [s for s in receiver.spans if s.parent_span_id == step.span_id]
        assert _attrs(attempt)["hm.worker"] == attrs["hm.worker"]
        (call,) = [s for s in receiver.spans if s.parent_span_id == attempt.span_id]
        assert call.name == "shell execute_step" and _attrs(call)["hm.step"] == _attrs(step)["hm.step"]


def test_a_local_run_and_an_extension_are_traced(tmp_path: Path, receiver: _Receiver) -> None:
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    project = Project(tmp_path).pipeline('step("a", "exit 4")')
    result, _ = project.run_json(env=otel)
    assert result.returncode == 1
    spans = receiver.wait_for({"hm run t", "step a", "shell execute_step"})
    assert spans["step a"].parent_span_id == spans["hm run t"].span_id
    assert spans["shell execute_step"].parent_span_id == spans["step a"].span_id
    assert (_attrs(spans["step a"])["hm.exit_code"], _attrs(spans["step a"])["hm.status"]) == (4, "failed")

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ext = bin_dir / "hm-hello"
    ext.write_text('#!/bin/sh\necho "$TRACEPARENT"\nexit 3\n')
    ext.chmod(0o755)
    env = {**hm_env(), **otel, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        [sys.executable, "-m", "hm", "hello"], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 3, out.stderr
    span = receiver.wait_for({"hm hello"})["hm hello"]
    assert (_attrs(span)["hm.extension"], _attrs(span)["hm.exit_code"]) == ("hello", 3)
    assert out.stdout.split("-")[1] == span.trace_id.hex(), "the extension did not get the trace context"


def test_hm_cluster_env_is_read_and_a_bad_address_is_a_usage_error(tmp_path: Path) -> None:
    project = Project(tmp_path).pipeline('step("a", "true")')
    result = project.run("--cluster", "nowhere")
    assert result.returncode == 2 and "'nowhere' is not a cluster address" in result.stderr
    started = time.monotonic()
    result = project.run(env={"HM_CLUSTER": "tcp://127.0.0.1:9", "HM_CLUSTER_TIMEOUT": "1"})
    assert time.monotonic() - started < 20
    no_traceback(result)
    assert result.returncode == 2
    assert "cannot reach the dask scheduler at tcp://127.0.0.1:9" in result.stderr


def test_without_dask_cluster_says_how_to_install_it(tmp_path: Path) -> None:
    shim = tmp_path / "no-dask"
    (shim / "distributed").mkdir(parents=True)
    (shim / "distributed" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'distributed'\", name='distributed')\n"
    )
    project = Project(tmp_path / "p").pipeline('step("a", "true")')
    env = {"PYTHONPATH": os.pathsep.join([str(shim), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "hm", "run", "--cluster", "local:2"],
        cwd=project.root,
        env={**os.environ, **hm_env(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    no_traceback(result)
    assert result.returncode == 2
    assert "pip install 'hm[cluster]'" in result.stderr


def test_importing_the_cli_imports_neither_dask_nor_opentelemetry() -> None:
    code = (
        "import sys, hm.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'opentelemetry')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_fail_fast_stops_a_remote_step(tmp_path: Path, cluster: Any) -> None:
    project = Project(tmp_path).pipeline('step("slow", "sleep 30")\nstep("bad", "sleep 0.5; exit 1")')
    started = time.monotonic()
    result, evs = project.run_json("--cluster", _address(cluster))
    took = time.monotonic() - started
    assert result.returncode == 1
    done = finished(evs)
    assert done["slow"]["status"] == "cancelled"
    # should_cancel turned true on the worker within 1 s of the failure (both started together).
    late = done["slow"]["duration_ms"] - done["bad"]["duration_ms"]
    assert late < 1000, f"the remote step stopped {late} ms after the failure"
    assert took < 12, f"the run took {took:.1f} s"


def test_ctrl_c_stops_remote_steps_and_leaves_no_task(tmp_path: Path, cluster: Any) -> None:
    pid_file = tmp_path / "pid"
    project = Project(tmp_path).pipeline(f'step("sleepy", "echo $$ > {pid_file}; sleep 30")')
    proc = popen_hm(project.root, "--format", "json", "--cluster", _address(cluster))
    pid = None
    try:
        pid = int(wait_for_file(pid_file, timeout=30))
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err.decode()
        assert time.monotonic() - sent < 8
        assert finished(events(out.decode()))["sleepy"]["status"] == "cancelled"
        assert wait_gone(pid, 5), "the remote step's process still runs"
        deadline = time.monotonic() + 5
        while cluster.processing() and any(cluster.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(cluster.processing().values()), "a task still runs on the cluster"
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)


def test_build_and_step_kv_scopes_work_across_remote_steps(tmp_path: Path, cluster: Any) -> None:
    project = Project(tmp_path).pipeline(
        """
        step("put", "put colour blue", runner="kv")
        wait()
        step("get", "get colour", runner="kv")
        """
    )
    for where in ((), ("--cluster", _address(cluster))):
        result, evs = project.run_json(*where, plugins=["kv-relay-runner"])
        assert result.returncode == 0, result.stdout + result.stderr
        # BUILD is shared by the run's steps wherever they ran; STEP is the step's own.
        assert logs(evs, "get") == ["build colour=blue step colour=(missing)"], where


def test_a_timeout_on_the_cluster_is_a_timeout(tmp_path: Path, cluster: Any) -> None:
    project = Project(tmp_path).pipeline('step("slow", "sleep 30", timeout_seconds=1)')
    started = time.monotonic()
    result, evs = project.run_json("--cluster", _address(cluster))
    assert result.returncode == 1
    done = finished(evs)["slow"]
    assert (done["status"], done["exit_code"]) == ("timed_out", 124)
    assert time.monotonic() - started < 10


def test_a_plugin_a_worker_lacks_fails_its_step_naming_the_worker(tmp_path: Path, cluster: Any) -> None:
    # HM_CLUSTER_UPLOAD=0: workers must have the same build; theirs has no host-fn-probe
    # (the cluster's workers see no HM_PLUGIN_PATH) but does have the bundled shell.
    # A build of its own (one byte appended): no worker has it, even from an earlier upload.
    from conftest import fixture_path

    library = tmp_path / "lib" / "host-fn-probe.so"
    library.parent.mkdir()
    library.write_bytes(fixture_path("host-fn-probe").read_bytes() + b"\0")
    project = Project(tmp_path).pipeline('step("probe", "unused", runner="probe")\nstep("sh", "echo here")')
    env = {"HM_CLUSTER_UPLOAD": "0", "HM_PLUGIN_PATH": str(library)}
    result, evs = project.run_json("-k", "--cluster", _address(cluster), env=env)
    no_traceback(result)
    assert result.returncode == 5, result.stdout + result.stderr
    done = finished(evs)
    assert done["probe"]["status"] == "error"
    assert "worker tcp://127.0.0.1:" in done["probe"]["message"]
    assert "has no plugin host-fn-probe with sha256" in done["probe"]["message"]
    assert (done["sh"]["status"], logs(evs, "sh")) == ("succeeded", ["here"])


def _ancestor_in(pid: int, wanted: set[int]) -> int:
    """``pid`` or its nearest ancestor in ``wanted`` (the shell runner spawns through a helper)."""
    while pid not in wanted:
        status = Path(f"/proc/{pid}/status").read_text()
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
        assert pid > 1, "the step does not run under a Dask worker"
    return pid


def test_a_worker_killed_mid_step_fails_that_step_naming_it_and_the_run_goes_on(tmp_path: Path, cluster: Any) -> None:
    ppid_file, pid_file = tmp_path / "ppid", tmp_path / "pid"
    project = Project(tmp_path).pipeline(
        f"""
        step("doomed", "echo $$ > {pid_file}; echo $PPID > {ppid_file}; sleep 20")
        step("other", "sleep 2; echo survived")
        """
    )
    proc = popen_hm(project.root, "--format", "json", "-k", "-j", "2", "--cluster", _address(cluster))
    pid = None
    try:
        worker_pid = int(wait_for_file(ppid_file, timeout=30))
        pid = int(wait_for_file(pid_file))
        workers = {pid: address for address, pid in cluster.run(os.getpid).items()}
        worker_pid = _ancestor_in(worker_pid, set(workers))
        os.kill(worker_pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        evs = events(out.decode())
        done = finished(evs)
        assert proc.returncode == 5, err.decode()
        assert done["doomed"]["status"] == "error"
        assert f"its worker {workers[worker_pid]} died while it ran" in done["doomed"]["message"]
        assert (done["other"]["status"], logs(evs, "other")) == ("succeeded", ["survived"])
        assert evs[-1]["kind"] == "build_finished"
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)
        cluster.wait_for_workers(2, timeout=60)


def test_artifacts_and_the_step_cache_work_for_remote_steps(tmp_path: Path, cluster: Any) -> None:
    counter = tmp_path / "runs"
    project = Project(tmp_path / "p").pipeline(
        f"""
        make = step("make", "echo run >> {counter}; mkdir -p dist && echo built > dist/out.txt",
                    cache="read_write", artifacts=["dist/*"])
        step("use", "cat dist/out.txt", builds_in=make)
        """
    )
    out = tmp_path / "out"
    for attempt in ("stored", "hit"):
        result, evs = project.run_json("--cluster", _address(cluster), "--artifacts-dir", str(out))
        assert result.returncode == 0, result.stdout + result.stderr
        done = finished(evs)
        assert done["make"]["cache"] == attempt
        assert [a["path"] for a in done["make"]["artifacts"]] == ["dist/out.txt"]
        # A hit's workspace is restored on the client; the next step gets it from there.
        assert logs(evs, "use") == ["built"], attempt
    assert (out / "make" / "dist" / "out.txt").read_text() == "built\n"
    assert counter.read_text() == "run\n", "the cached step ran twice"


def test_an_isolated_plugin_runs_in_its_hm_worker_on_the_cluster(tmp_path: Path, cluster: Any) -> None:
    project = Project(tmp_path).pipeline('step("probe", "unused", runner="probe")')
    result, evs = project.run_json("--isolate", "--cluster", _address(cluster), plugins=PROBE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert finished(evs)["probe"]["message"].startswith("host-fn-probe: 19/19")


def test_the_abi_check_runs_on_the_worker_and_names_it() -> None:
    # What a worker does with an uploaded library its hm cannot load (here: one claiming
    # ABI 9999), through the real loader; the client's own check would have refused it first.
    from conftest import fixture_path

    from hm.cluster.task import LoadFailed, load_plugin

    library = fixture_path("bad-abi-version")
    data = library.read_bytes()
    spec = {
        "plugin": "bad-abi-version",
        "plugin_sha": hashlib.sha256(data).hexdigest(),
        "plugin_file": library.name,
        "isolation": "in-process",
    }
    with pytest.raises(LoadFailed) as caught:
        load_plugin(spec, data, "tcp://10.0.0.9:4321")
    error = caught.value.error
    assert error["kind"] == "load" and error["stage"] == "header"
    assert error["what"].startswith("on worker tcp://10.0.0.9:4321: ")
    assert "9999" in error["what"]


def test_a_client_that_dies_leaves_no_step_running_on_the_cluster(tmp_path: Path, cluster: Any) -> None:
    # hm killed outright (kill -9, a lost laptop): the scheduler drops its futures, the
    # worker marks the running task cancelled, and the step is told to stop.
    pid_file = tmp_path / "pid"
    project = Project(tmp_path).pipeline(f'step("sleepy", "echo $$ > {pid_file}; sleep 30")')
    proc = popen_hm(project.root, "--format", "json", "--cluster", _address(cluster))
    pid = None
    try:
        pid = int(wait_for_file(pid_file, timeout=30))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert wait_gone(pid, 10), "the step of a dead client still runs on the cluster"
    finally:
        stop_process(proc)
        if pid is not None:
            kill_pid(pid)


def test_parallelism_bounds_the_tasks_in_flight(tmp_path: Path, cluster: Any) -> None:
    project = Project(tmp_path).pipeline("\n".join(f'step("s{i}", "sleep 0.4")' for i in range(5)))
    result, evs = project.run_json("-j", "2", "--cluster", _address(cluster))
    assert result.returncode == 0, result.stderr
    running, most = 0, 0
    for e in evs:
        if e["kind"] == "step_started":
            running += 1
            most = max(most, running)
        elif e["kind"] == "step_finished":
            running -= 1
    assert most == 2


def test_a_scheduler_lost_mid_run_fails_the_step_not_hm(tmp_path: Path) -> None:
    # A scheduler of its own (no workers: the step waits on it), killed while hm waits.
    address_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(address_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    proc = None
    try:
        address = json.loads(wait_for_file(address_file, timeout=30))["address"]
        project = Project(tmp_path / "p").pipeline('step("a", "true")')
        proc = popen_hm(project.root, "--format", "json", "--cluster", address)
        time.sleep(2)
        scheduler.kill()
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err.decode(), err.decode()
        evs = events(out.decode())
        assert evs[-1]["kind"] == "build_finished"
        assert proc.returncode == 5, err.decode()
        assert finished(evs)["a"]["status"] == "error"
    finally:
        scheduler.kill()
        scheduler.wait()
        if proc is not None:
            stop_process(proc)
