"""The run's workspace archive: one uncompressed POSIX (pax) tar of the project.

Made at most once per run, on the first ``archive_read``/``archive_total_size``,
so runs whose runners never ask for it pay nothing. In a git work tree it holds
what git would (tracked files plus untracked ones not ignored by ``.gitignore``);
elsewhere every file but ``.git/``. Reads use ``os.pread``: thread-safe, no shared
file position between steps.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

_ALWAYS_SKIPPED = {".git"}


def project_files(root: Path) -> list[str]:
    """Relative paths of the files to archive, sorted."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        names = [n for n in out.decode("utf-8", "surrogateescape").split("\0") if n]
        return sorted(n for n in names if (root / n).is_file() or (root / n).is_symlink())
    except (OSError, subprocess.SubprocessError):
        pass
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _ALWAYS_SKIPPED)
        rel = os.path.relpath(dirpath, root)
        for name in filenames:
            found.append(name if rel == "." else os.path.join(rel, name))
    return sorted(found)


class WorkspaceArchive:
    def __init__(self, root: Path, scratch_dir: Path) -> None:
        self.root = root
        self._scratch = scratch_dir
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0

    def _ensure(self) -> int:
        with self._lock:
            if self._fd is None:
                fd, path = tempfile.mkstemp(prefix="workspace-", suffix=".tar", dir=self._scratch)
                with (
                    os.fdopen(os.dup(fd), "wb") as raw,
                    tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar,
                ):
                    for rel in project_files(self.root):
                        try:
                            tar.add(self.root / rel, arcname=rel, recursive=False)
                        except OSError:
                            continue  # vanished or unreadable while archiving: skip it, as git would
                self._size = os.fstat(fd).st_size
                self._fd = fd
                os.unlink(path)  # the open descriptor keeps it readable; nothing to clean up
            return self._fd

    def size(self) -> int:
        self._ensure()
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        fd = self._ensure()
        if offset >= self._size:
            return b""
        return os.pread(fd, min(length, self._size - offset), offset)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
