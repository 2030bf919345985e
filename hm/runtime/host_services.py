"""What a plugin call can reach through the host API, as plain Python.

:class:`HostServices` is the default, used outside a run (manifests, subcommands):
logging, the persistent plugin-scope key-value store, the user's terminal and
the project's ``.hm/`` configuration. The run engine subclasses it to add
step logs, cancellation, build/step KV scopes and the workspace archive.

A method signals a non-OK ``hm_status_t`` by raising :class:`HostStatus`; the
callbacks in ``host_api`` turn that into the return code, so no Python exception
ever reaches C.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

from hm.runtime.calls import CallContext
from hm.runtime.kv_store import PluginKvStore
from hm.runtime.limits import MAX_CONFIG_BYTES
from hm_plugin_sdk.abi import KvScope, Status, Stream
from hm_plugin_sdk.protocol import PluginEvent

log = logging.getLogger("hm.plugin")


class HostStatus(Exception):
    """Raised by a service to return ``status`` to the plugin."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.name)
        self.status = status


class HostServices:
    """Host-API behaviour outside a pipeline run."""

    def __init__(
        self,
        *,
        project_root: Path | None = None,
        kv: PluginKvStore | None = None,
        stdout: BinaryIO | None = None,
        stderr: BinaryIO | None = None,
    ) -> None:
        self.project_root = project_root
        self._kv = kv
        self._stdout = stdout
        self._stderr = stderr

    # -- logging and events -------------------------------------------------
    def log(self, ctx: CallContext, level: int, message: str) -> None:
        where = f"{ctx.plugin}" + (f" [{ctx.step_key}]" if ctx.step_key else "")
        log.log(level, "%s: %s", where, message)

    def emit_event(self, ctx: CallContext, event: PluginEvent) -> None:
        log.debug("%s: event %s %s", ctx.plugin, event.name, event.data)

    def step_log(self, ctx: CallContext, stream: Stream, data: bytes) -> None:
        raise HostStatus(Status.ERR_UNAVAILABLE)

    def should_cancel(self, ctx: CallContext) -> bool:
        return False

    # -- key-value store ----------------------------------------------------
    def kv_get(self, ctx: CallContext, scope: KvScope, key: bytes) -> bytes | None:
        # During `manifest` the plugin's name is not known yet, so it has no store.
        if scope is not KvScope.PLUGIN or ctx.op == "manifest":
            raise HostStatus(Status.ERR_UNAVAILABLE)
        return self._plugin_kv().get(ctx.plugin, key)

    def kv_set(self, ctx: CallContext, scope: KvScope, key: bytes, value: bytes) -> None:
        if scope is not KvScope.PLUGIN or ctx.op == "manifest":
            raise HostStatus(Status.ERR_UNAVAILABLE)
        self._plugin_kv().set(ctx.plugin, key, value)

    def kv_compare_and_swap(
        self, ctx: CallContext, scope: KvScope, key: bytes, expected: bytes | None, value: bytes
    ) -> bool:
        """Since 1.1: True when swapped, False on a conflict."""
        if scope is not KvScope.PLUGIN or ctx.op == "manifest":
            raise HostStatus(Status.ERR_UNAVAILABLE)
        return self._plugin_kv().compare_and_swap(ctx.plugin, key, expected, value)

    def session_output(self, ctx: CallContext, data: bytes) -> None:
        """Since 1.1: only a session's services take its output."""
        raise HostStatus(Status.ERR_UNAVAILABLE)

    def _plugin_kv(self) -> PluginKvStore:
        if self._kv is None:
            self._kv = PluginKvStore.default()
        return self._kv

    # -- the user's terminal --------------------------------------------------
    def write_stdout(self, ctx: CallContext, data: bytes) -> None:
        self._write(self._stdout or sys.stdout.buffer, data)

    def write_stderr(self, ctx: CallContext, data: bytes) -> None:
        self._write(self._stderr or sys.stderr.buffer, data)

    @staticmethod
    def _write(stream: BinaryIO, data: bytes) -> None:
        try:
            stream.write(data)
            stream.flush()
        except OSError as exc:
            raise HostStatus(Status.ERR_IO) from exc

    # -- files ----------------------------------------------------------------
    def archive_size(self, ctx: CallContext) -> int:
        raise HostStatus(Status.ERR_UNAVAILABLE)

    def archive_read(self, ctx: CallContext, offset: int, size: int) -> bytes:
        raise HostStatus(Status.ERR_UNAVAILABLE)

    def read_config(self, ctx: CallContext, rel_path: str) -> bytes:
        """Read ``.hm/<rel_path>``, a regular file of at most MAX_CONFIG_BYTES.

        The path is resolved beneath ``.hm/`` by the kernel in one step
        (``openat2`` with ``RESOLVE_BENEATH``, or one ``O_NOFOLLOW`` component at a
        time), so swapping a symlink in between cannot lead outside; a FIFO, a
        device or a directory is refused without blocking.
        """
        if self.project_root is None:
            raise HostStatus(Status.ERR_UNAVAILABLE)
        if not rel_path or os.path.isabs(rel_path) or "\0" in rel_path or ".." in rel_path.split("/"):
            raise HostStatus(Status.ERR_DENIED)
        fd = open_beneath(self.project_root / ".hm", rel_path)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise HostStatus(Status.ERR_NOT_FOUND)
            if not stat.S_ISREG(st.st_mode):
                log.warning("%s: fs_read_config(%r) refused: not a regular file", ctx.plugin, rel_path)
                raise HostStatus(Status.ERR_DENIED)
            if st.st_size > MAX_CONFIG_BYTES:
                log.warning(
                    "%s: fs_read_config(%r) refused: %d bytes, more than the %d bytes allowed",
                    ctx.plugin,
                    rel_path,
                    st.st_size,
                    MAX_CONFIG_BYTES,
                )
                raise HostStatus(Status.ERR_DENIED)
            chunks = []
            left = MAX_CONFIG_BYTES + 1
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            if left <= 0:  # it grew past the limit while being read
                raise HostStatus(Status.ERR_DENIED)
            return b"".join(chunks)
        except BlockingIOError as exc:
            raise HostStatus(Status.ERR_DENIED) from exc
        except OSError as exc:
            raise HostStatus(Status.ERR_IO) from exc
        finally:
            os.close(fd)


def open_beneath(base: Path, rel_path: str) -> int:
    """An fd for reading ``rel_path`` beneath the directory ``base``, never outside it.

    :raises HostStatus: NOT_FOUND (missing), DENIED (it would leave ``base`` or
        crosses a symlink the kernel cannot check), IO (anything else).
    """
    from hm.runtime._ffi import lib

    fd = int(lib.hm_bridge_open_beneath(os.fsencode(base), os.fsencode(rel_path)))
    if fd >= 0:
        return fd
    err = -fd
    if err in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        raise HostStatus(Status.ERR_NOT_FOUND)
    if err in (errno.EXDEV, errno.ELOOP, errno.EPERM):
        raise HostStatus(Status.ERR_DENIED)
    raise HostStatus(Status.ERR_IO)
