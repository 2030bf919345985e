"""Putting a workspace into the store, and getting it back out.

:func:`snapshot` walks a step's workspace, hashes each file and stores the
contents the store does not have yet; unchanged files cost one read and no
write. hm's own files (``.hm/*``, see :mod:`hm.cache._tree`) are left out.
:func:`restore` recreates the nodes of an entry in an empty directory, checking
every blob against its digest as it copies it, and setting modes and
modification times as they were.

Restoring never writes outside the target: paths are checked (relative, no
``..``), a file or folder is only created in a folder the restore itself
created, and symbolic links are made last, so nothing is written through one.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hm.cache._entry import CorruptEntry
from hm.cache._store import CacheStore
from hm.cache._tree import CHUNK, SMALL_FILE, FileNode, hm_own_file, scan

__all__ = ["Snapshot", "TooBig", "clear_dir", "restore", "snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored workspace: its nodes, the bytes of its files, and how many were new."""

    files: list[FileNode]
    size: int
    added: int


class TooBig(Exception):
    """The workspace alone is bigger than the cache may be."""

    def __init__(self, size: int) -> None:
        self.size = size
        super().__init__(f"{size} bytes")


def snapshot(
    store: CacheStore, root: Path, *, limit: int | None = None, stop: Callable[[], bool] | None = None
) -> Snapshot:
    """Store the workspace under ``root``.

    :param limit: refuse (:class:`TooBig`, before writing anything) a workspace
        whose files add up to more bytes than this.
    :raises Unsupported: it holds something the cache cannot keep.
    :raises CorruptEntry: a file changed while it was being stored.
    :raises OSError: the store refused a write (full, read-only) or a file could not be read.
    """
    nodes = scan(root, hash_files=False, stop=stop)
    total = sum(n.size for n in nodes if not hm_own_file(n))
    if limit is not None and total > limit:
        raise TooBig(total)
    files: list[FileNode] = []
    size = added = 0
    for node in nodes:
        if hm_own_file(node):
            continue  # not part of the key: a restore takes the current ones
        if node.kind != "f":
            files.append(node)
            continue
        if stop is not None and stop():
            raise InterruptedError("stopped")
        path = root / node.path
        if node.size <= SMALL_FILE:
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            added += store.put_bytes(data, digest)
            length = len(data)
        else:
            digest = _hash(path)
            added += store.put_file(path, digest)
            length = node.size
        size += length
        files.append(FileNode(node.path, "f", node.mode, length, digest, mtime_ns=node.mtime_ns))
    return Snapshot(files, size, added)


def _hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def restore(store: CacheStore, files: list[FileNode], target: Path) -> int:
    """Recreate ``files`` under the empty folder ``target``; returns the bytes written.

    :raises CorruptEntry: a blob is missing or does not match its digest, or a
        path is not one the cache writes (the caller clears ``target``).
    :raises OSError: writing the workspace failed.
    """
    made: set[str] = {""}
    links: list[FileNode] = []
    folders: list[FileNode] = []
    written = 0
    for node in files:
        parent = _parent(node.path)
        if parent not in made:
            raise CorruptEntry(f"{node.path!r} is not inside a folder of the entry")
        dest = os.path.join(target, node.path)
        if node.kind == "d":
            os.mkdir(dest, 0o700)
            made.add(node.path)
            folders.append(node)
        elif node.kind == "f":
            written += _copy_blob(store, node, dest)
        elif node.kind == "l":
            links.append(node)
        else:
            raise CorruptEntry(f"{node.path!r} has an unknown kind {node.kind!r}")
    for node in links:
        dest = os.path.join(target, node.path)
        os.symlink(node.target, dest)
        _set_times(dest, node.mtime_ns, follow=False)
    for node in reversed(folders):  # deepest first: a read-only folder is finished last
        dest = os.path.join(target, node.path)
        os.chmod(dest, node.mode)
        _set_times(dest, node.mtime_ns)
    return written


def _parent(path: str) -> str:
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in path:
        raise CorruptEntry(f"{path!r} is not a relative path")
    return "/".join(parts[:-1])


def _copy_blob(store: CacheStore, node: FileNode, dest: str) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    h = hashlib.sha256()
    size = 0
    with store.open_blob(node.digest) as src:
        fd = os.open(dest, flags, 0o600)
        with os.fdopen(fd, "wb", buffering=0) as out:
            if node.size <= SMALL_FILE:
                data = src.read()
                h.update(data)
                out.write(data)
                size = len(data)
            else:
                while chunk := src.read(CHUNK):
                    h.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            if h.hexdigest() != node.digest or size != node.size:
                store.discard_blob(node.digest)
                raise CorruptEntry(f"blob {node.digest[:12]} ({node.path}) does not match its digest")
            os.fchmod(out.fileno(), node.mode)
    _set_times(dest, node.mtime_ns)
    return size


def _set_times(path: str, mtime_ns: int, *, follow: bool = True) -> None:
    if not mtime_ns:
        return
    try:
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=follow)
    except (NotImplementedError, OSError):
        pass  # a link's time on a system that cannot set it: not worth failing a restore


def clear_dir(path: Path) -> None:
    """Empty a folder a failed restore half filled (read-only folders included)."""
    for entry in os.scandir(path):
        full = entry.path
        if entry.is_dir(follow_symlinks=False):
            os.chmod(full, stat.S_IRWXU)
            clear_dir(Path(full))
            os.rmdir(full)
        else:
            os.unlink(full)
