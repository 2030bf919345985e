"""A run's temporary directory (step workspaces, the workspace archive), made
at the start of the run and gone at its end, whatever the end.

The normal end removes it. So does an emergency exit (second Ctrl-C, SIGTERM,
SIGHUP). For the ends hm cannot act on (SIGKILL, a crash of an in-process
plugin, a plugin's ``exit()``) a *reaper* (``hm-worker --reaper``, in a session of
its own) holds the directory's name and removes it when hm's end of its pipe
closes without hm saying it is done.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hm import child_process, paths
from hm.runtime import WORKER_EXE

__all__ = ["RunDirectory", "remove_tree"]

log = logging.getLogger("hm.run")


class RunDirectory:
    def __init__(self, run_id: str) -> None:
        base = paths.work_dir()
        base.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f"hm-run-{run_id}-", dir=base))
        self._reaper: subprocess.Popen[bytes] | None = None
        if os.name == "posix" and WORKER_EXE.exists():
            try:
                self._reaper = child_process.spawn(
                    [str(WORKER_EXE), "--reaper"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=None
                )
                assert self._reaper.stdin is not None
                self._reaper.stdin.write(f"dir {self.path}\n".encode())
                self._reaper.stdin.flush()
            except OSError as exc:
                log.debug("no reaper for %s: %s", self.path, exc)
                self._reaper = None

    def remove(self) -> None:
        """Delete the directory now."""
        remove_tree(self.path)
        self._release()

    def keep(self) -> None:
        """Leave the directory (``HM_KEEP_WORKSPACES=1``): the reaper must not touch it."""
        self._release()

    def _release(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is None:
            return
        try:
            assert reaper.stdin is not None
            reaper.stdin.write(b"done\n")
            reaper.stdin.close()
            reaper.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            reaper.kill()
        child_process.forget(reaper)


def remove_tree(path: Path) -> None:
    """Delete a run directory, even where a step left read-only directories (mode 0555).

    Refuses anything but an ``hm-run-*`` directory: this deletes recursively.
    """
    if not path.name.startswith("hm-run-") or not path.is_absolute():
        raise ValueError(f"refusing to delete {path!s}: not a run directory")

    def make_writable_and_retry(func, failed: str, _exc: object) -> None:
        try:
            os.chmod(os.path.dirname(failed), 0o700)
            if os.path.isdir(failed) and not os.path.islink(failed):
                os.chmod(failed, 0o700)
            func(failed)
        except OSError:
            pass  # best effort: a leftover temporary directory is not worth failing a run

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable_and_retry)
    else:
        shutil.rmtree(path, onerror=lambda f, p, e: make_writable_and_retry(f, p, e[1]))
