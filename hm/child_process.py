"""Stopping the helper processes hm starts (plugin probes, conformance checks,
pipeline rendering). Each runs in its own session, so one kill reaches everything
it spawned, and a grandchild cannot keep hm waiting on a pipe."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_child(proc: subprocess.Popen[bytes]) -> bytes:
    """Kill a child started with ``start_new_session`` (its whole process group) and
    return what it wrote to stderr so far."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass
    try:
        # communicate() again returns everything read so far, an earlier attempt's too.
        return proc.communicate(timeout=5)[1] or b""
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return b""
