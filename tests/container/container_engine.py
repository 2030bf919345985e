"""A real container engine for the container runner's tests: Podman's Docker-compatible
API service on a private socket, started once per test session.

Not a conftest (basenames must be unique across the repository): the test modules
import the fixtures from here (``engine``, ``no_container_left``; the functions have
other names so that a test's parameter does not shadow an import).

What this machine needs (measured; ``.ci/install-container-engine`` installs it):

- ``podman``, ``runc`` and ``busybox-static`` from apt;
- no registry can be reached, so the test image is made here: a busybox root file
  system, tarred and ``podman import``-ed;
- a containers.conf (``CONTAINERS_CONF``) with ``runtime = "runc"`` and default
  ulimits this sandbox allows (crun and Podman's default ulimits fail here).

The service gets its own storage (``--root``/``--runroot``), so the tests neither
see nor touch the machine's images and containers, and two test sessions can run
side by side. Where Podman is not installed the tests skip, saying so; under CI
(``CI`` set) they fail instead, since CI installs it.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
# The `hm run` helpers (Project, events, ...) live in tests/run; pytest puts a test
# module's own folder on sys.path, and this folder is collected before that one.
sys.path.insert(0, str(ROOT / "tests" / "run"))
CONTAINER_PLUGIN = ROOT / "hm" / "bundled_plugins" / "container.so"

#: The image every test uses: busybox, made locally.
IMAGE = "localhost/hm-test-busybox:1"

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
"""


@dataclass(frozen=True)
class Engine:
    """The running service: its socket, and the Podman command line that reaches it."""

    socket: Path
    image: str

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for a child ``hm`` that uses this engine."""
        return {"DOCKER_HOST": self.docker_host, **extra}

    def podman(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``podman --remote ARGS`` against this service."""
        return subprocess.run(
            ["podman", "--remote", "--url", self.docker_host, *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def containers(self) -> list[str]:
        """Names of every container the engine has, running or not (``podman ps -a``)."""
        out = self.podman("ps", "-a", "--format", "{{.Names}}").stdout
        return [line for line in out.splitlines() if line.strip()]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the container tests (.ci/install-container-engine installs Podman)")
    pytest.skip(f"{reason} (run .ci/install-container-engine)")


def _busybox_rootfs_tar(dest: Path) -> Path:
    """A root file system of busybox applets: /bin/busybox plus one link per applet."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True, check=True).stdout.split()
    tar_path = dest / "busybox-rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:

        def add_dir(name: str, mode: int = 0o755) -> None:
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)

        def add_file(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))

        for name in ("bin", "etc", "proc", "sys", "dev", "root", "workspace"):
            add_dir(name)
        add_dir("tmp", 0o1777)
        tar.add(busybox, arcname="bin/busybox")
        for applet in applets:
            if applet != "busybox":
                link = tarfile.TarInfo(f"bin/{applet}")
                link.type, link.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(link)
        add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    return tar_path


def _ping(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(str(path))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.")
    except OSError:
        return False


def _unmount_below(base: Path) -> None:
    """Safety net: unmount whatever the engine left mounted under ``base`` (deepest first)."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = [line.split()[4] for line in lines if len(line.split()) > 4]
    for point in sorted((p for p in points if p.startswith(f"{base}/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="session", name="runner_built")
def runner_built_fixture() -> Path:
    """The bundled container runner's library (for tests that need no engine)."""
    if not CONTAINER_PLUGIN.exists():
        _unavailable(f"the container runner was not built ({CONTAINER_PLUGIN} is missing: libcurl/jansson headers?)")
    return CONTAINER_PLUGIN


@contextlib.contextmanager
def podman_service(base: Path) -> Iterator[Engine]:
    """Podman's API service with its own storage under ``base``, and the test image in it.

    Raises :class:`RuntimeError` if it does not come up (the tests and python -m bench.container use this).
    """
    conf = base / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    sock = base / "api.sock"
    # vfs: container file systems are plain copies (the image is 2 MB), so no
    # overlay mount outlives the service and the folder can always be deleted.
    storage = ["--root", str(base / "root"), "--runroot", str(base / "run"), "--tmpdir", str(base / "tmp")]
    storage += ["--storage-driver", "vfs"]
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    log = (base / "service.log").open("wb")
    service = subprocess.Popen(
        ["podman", *storage, "system", "service", "--time=0", f"unix://{sock}"],
        env=env,
        cwd=base,  # conmon drops files (e.g. "oom") in its working directory
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C test signals hm, never the service
    )
    try:
        deadline = time.monotonic() + 30
        while not _ping(sock):
            if service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"podman system service did not start: {(base / 'service.log').read_text()[-2000:]}")
            time.sleep(0.05)
        eng = Engine(socket=sock, image=IMAGE)
        tar = _busybox_rootfs_tar(base)
        eng.podman("import", "--change", "ENV PATH=/bin", str(tar), IMAGE)
        yield eng
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=15)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait(timeout=10)
        log.close()
        _unmount_below(base)
        shutil.rmtree(base / "root", ignore_errors=True)


def podman_missing() -> str | None:
    """Why this machine cannot run the engine, or ``None``."""
    for tool in ("podman", "runc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if shutil.which("busybox") is None and not Path("/bin/busybox").exists():
        return "busybox is not installed"
    if not CONTAINER_PLUGIN.exists():
        return f"the container runner was not built ({CONTAINER_PLUGIN} is missing: libcurl/jansson headers?)"
    return None


@pytest.fixture(scope="session", name="engine")
def engine_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """Podman's API service on a private socket for the whole session, with the test image."""
    missing = podman_missing()
    if missing is not None:
        _unavailable(missing)
    try:
        with podman_service(tmp_path_factory.mktemp("podman")) as eng:
            yield eng
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture(name="no_container_left")
def no_container_left_fixture(engine: Engine) -> Iterator[Engine]:
    """The engine, checked after the test: a run leaves no container behind."""
    yield engine
    left = engine.containers()
    assert left == [], f"containers left behind: {left}"
