"""A workspace as the cache sees it: a sorted list of nodes, and one digest of them.

A node is a directory, a regular file or a symbolic link, with its path relative
to the workspace (``/``-separated), its permission bits and, for a file, the
SHA-256 of its content; a link keeps its target. The *tree digest* hashes
exactly that, in path order, and nothing else: not modification times, not
owners. Two workspaces with the same digest hold the same files.

The same digest is computed for a workspace directory (:func:`scan`) and for
the run's workspace archive (:func:`archive_nodes`), which holds files only
(no directory entries), so the digest of a fresh chain's input is stable across
runs however the project's files were checked out.

What cannot be kept (a FIFO, a socket, a device, a name that is not UTF-8) raises
:class:`Unsupported` from :func:`scan`; the step then runs uncached.

hm's own files, the files directly in the project's ``.hm/`` folder (the pipeline
files and ``config.toml``), are no part of the digest (:func:`hm_own_file`):
what a pipeline file says about a step (its ``cmd``, ``env``, image…) is in the
step's key already, so editing one step, or adding another, does not make
every step miss. They are not stored either; a restored workspace gets the
current ones from the step's input (:mod:`hm.cache._workspace`). Subfolders of
``.hm/`` (scripts a step runs, project plugins) are digested like any file.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, Literal

import msgspec

__all__ = [
    "CHUNK",
    "HM_FOLDER",
    "SMALL_FILE",
    "FileNode",
    "Unsupported",
    "archive_nodes",
    "copy_hm_files",
    "extract_hm_files",
    "hash_file",
    "hm_own_file",
    "scan",
    "tree_digest",
]

#: Files up to this size are read whole; bigger ones in chunks of :data:`CHUNK`.
SMALL_FILE: Final = 1 << 20
CHUNK: Final = 1 << 20

Kind = Literal["f", "d", "l"]


class FileNode(msgspec.Struct, array_like=True, frozen=True):
    """One node of a workspace; an entry lists them in path order."""

    #: Relative, ``/``-separated, never ``..``, never empty.
    path: str
    #: ``"f"`` a regular file, ``"d"`` a directory, ``"l"`` a symbolic link.
    kind: Kind
    #: Permission bits (``mode & 0o777``).
    mode: int
    #: A file's size in bytes.
    size: int = 0
    #: A file's SHA-256 (hex), which is also its blob's name in the store.
    digest: str = ""
    #: A link's target, as written.
    target: str = ""
    #: Modification time (ns), restored but not part of the digest.
    mtime_ns: int = 0


class Unsupported(Exception):
    """The workspace holds something the cache cannot keep."""

    def __init__(self, path: str, what: str) -> None:
        self.path = path
        self.what = what
        super().__init__(f"{path}: {what}")


#: The folder of hm's own files in a project (and so in a workspace).
HM_FOLDER: Final = ".hm"


def hm_own_file(node: FileNode) -> bool:
    """A file directly in ``.hm/``: a pipeline file or ``config.toml`` (see the module docstring)."""
    return node.kind != "d" and node.path.startswith(f"{HM_FOLDER}/") and node.path.count("/") == 1


def tree_digest(nodes: list[FileNode]) -> str:
    """The SHA-256 of the nodes' kinds, paths, modes and contents, in path order
    (hm's own files left out)."""
    h = hashlib.sha256(b"hm-tree 1\n")
    for node in sorted(nodes, key=_order):
        if hm_own_file(node):
            continue
        value = node.digest if node.kind == "f" else node.target
        h.update(f"{node.kind}\0{node.path}\0{node.mode:o}\0{value}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _order(node: FileNode) -> bytes:
    return node.path.encode("utf-8", "surrogateescape")


def hash_file(path: str | os.PathLike[str], size: int, stop: Callable[[], bool] | None = None) -> str:
    """The SHA-256 of a file's content (read whole when small)."""
    with open(path, "rb", buffering=0) as f:
        if size <= SMALL_FILE:
            return hashlib.sha256(f.read()).hexdigest()
        h = hashlib.sha256()
        while chunk := f.read(CHUNK):
            h.update(chunk)
            if stop is not None and stop():
                raise InterruptedError("stopped")
        return h.hexdigest()


def scan(root: Path, *, hash_files: bool = True, stop: Callable[[], bool] | None = None) -> list[FileNode]:
    """Every node under ``root`` (not following links), sorted by path.

    :param hash_files: fill in file digests (``False``: leave them empty, for a
        caller that hashes while it copies).
    :param stop: asked between files; ``True`` raises :class:`InterruptedError`.
    :raises Unsupported: a FIFO, socket or device, or a name that is not UTF-8.
    :raises OSError: a file could not be read.
    """
    nodes: list[FileNode] = []
    for rel, st in _walk(str(root), ""):
        if stop is not None and stop():
            raise InterruptedError("stopped")
        mode = stat.S_IMODE(st.st_mode) & 0o777
        if stat.S_ISDIR(st.st_mode):
            nodes.append(FileNode(rel, "d", mode, mtime_ns=st.st_mtime_ns))
        elif stat.S_ISREG(st.st_mode):
            digest = hash_file(os.path.join(root, rel), st.st_size, stop) if hash_files else ""
            nodes.append(FileNode(rel, "f", mode, st.st_size, digest, mtime_ns=st.st_mtime_ns))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(os.path.join(root, rel))
            _check_name(target, rel, "a link target")
            nodes.append(FileNode(rel, "l", mode, target=target, mtime_ns=st.st_mtime_ns))
        else:
            raise Unsupported(rel, _special(st.st_mode))
    nodes.sort(key=_order)
    return nodes


def _walk(root: str, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
    with os.scandir(os.path.join(root, prefix) if prefix else root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = f"{prefix}/{entry.name}" if prefix else entry.name
        _check_name(entry.name, rel, "a file name")
        st = entry.stat(follow_symlinks=False)
        yield rel, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, rel)


def _check_name(name: str, rel: str, what: str) -> None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise Unsupported(rel.encode("utf-8", "backslashreplace").decode(), f"{what} that is not UTF-8") from None


def _special(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device file"
    return "a file of an unknown type"


class _ReadAt(io.RawIOBase):
    """A read-only stream over a ``read(offset, length)`` function (the run's archive)."""

    def __init__(self, read: Callable[[int, int], bytes], size: int) -> None:
        self._read = read
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._read(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def extract_hm_files(read: Callable[[int, int], bytes], size: int, target: Path) -> None:
    """Write the archive's own hm files (:func:`hm_own_file`) into ``target``
    (a restored workspace): regular files only, with their modes."""
    stream = io.BufferedReader(_ReadAt(read, size), buffer_size=CHUNK)
    with tarfile.open(fileobj=stream, mode="r:") as tar:
        for member in tar:
            path = member.name.removeprefix("./")
            if not (member.isreg() and hm_own_file(FileNode(path, "f", 0))):
                continue
            f = tar.extractfile(member)
            assert f is not None
            _write_own_file(target, path, f.read(), member.mode & 0o777)


def _write_own_file(target: Path, path: str, data: bytes, mode: int) -> None:
    folder = target / HM_FOLDER
    folder.mkdir(exist_ok=True)
    dest = folder / path.split("/", 1)[1]
    if dest.is_symlink() or dest.exists():
        dest.unlink()
    dest.write_bytes(data)
    os.chmod(dest, mode)


def copy_hm_files(source: Path, target: Path) -> None:
    """Copy the regular files directly in ``source/.hm`` into ``target/.hm``."""
    try:
        entries = list(os.scandir(source / HM_FOLDER))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.is_file(follow_symlinks=False):
            data = Path(entry.path).read_bytes()
            _write_own_file(target, f"{HM_FOLDER}/{entry.name}", data, entry.stat().st_mode & 0o777)


def archive_nodes(read: Callable[[int, int], bytes], size: int) -> list[FileNode]:
    """The nodes of a tar archive read through ``read(offset, length)``.

    A hard link is a node of kind ``"l"`` whose target is ``=`` and the path it
    links to: the digest tells it from a symbolic link to the same path.
    """
    nodes: list[FileNode] = []
    stream = io.BufferedReader(_ReadAt(read, size), buffer_size=CHUNK)
    with tarfile.open(fileobj=stream, mode="r:") as tar:
        for member in tar:
            path = member.name.removeprefix("./").rstrip("/")
            if not path:
                continue
            mode = member.mode & 0o777
            if member.isreg():
                h = hashlib.sha256()
                f = tar.extractfile(member)
                assert f is not None
                while chunk := f.read(CHUNK):
                    h.update(chunk)
                nodes.append(FileNode(path, "f", mode, member.size, h.hexdigest()))
            elif member.isdir():
                nodes.append(FileNode(path, "d", mode))
            elif member.issym():
                nodes.append(FileNode(path, "l", mode, target=member.linkname))
            elif member.islnk():
                nodes.append(FileNode(path, "l", mode, target=f"={member.linkname}"))
    nodes.sort(key=_order)
    return nodes
