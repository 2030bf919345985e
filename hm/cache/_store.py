"""The step cache on disk: content-addressed blobs, entries that name them, LRU
eviction, and nothing that a second hm running at the same time can tear.

Layout (under the cache directory, :class:`hm.cache.CacheConfig`)::

    CACHEDIR.TAG            marks the folder as a cache for backup tools
    v1/blobs/ab/abcdef…     file contents and logs, named by their SHA-256
    v1/entries/KEY.entry    one stored step (:mod:`hm.cache._entry`); its mtime is its last use
    v1/tmp/                 files being written

Safe to share between runs, without locks:

* every file is written under ``tmp/`` and renamed into place (atomic on
  POSIX), blobs before the entry that names them, so a reader sees a whole
  entry or none. Nothing is fsynced: what a crash tears, the digests find;
* blobs are immutable and named by content: two runs writing one blob write the
  same bytes;
* eviction deletes entries, least recently used first, then the blobs no
  entry names any more, except blobs written or reused in the last
  :data:`GRACE_SECONDS` (a store in progress whose entry is not written yet).
  A hit whose blob was evicted under it is found by the digest check, counted
  as a miss, and the step runs; a wrong workspace is never restored.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from hm.cache._entry import CorruptEntry, Entry, decode_entry, encode_entry
from hm.cache._tree import CHUNK

__all__ = ["GRACE_SECONDS", "CacheStore", "EntryInfo", "EvictResult"]

#: Unreferenced blobs and temporary files younger than this are left alone: a
#: store in progress has written or reused them and not written its entry yet.
GRACE_SECONDS: Final = 900.0
#: Eviction goes down to this share of the bound, so that it does not run after every store.
_LOW_WATER: Final = 0.9

_TAG: Final = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file marks hm's step cache (https://bford.info/cachedir/).\n"
    b"# `hm cache clear` empties it; everything here can be deleted.\n"
)


@dataclass(frozen=True, slots=True)
class EntryInfo:
    """An entry for listings: its file's size and last use, and the entry itself (``None`` if corrupt)."""

    key: str
    last_used: float
    file_size: int
    entry: Entry | None


@dataclass(frozen=True, slots=True)
class EvictResult:
    """What eviction removed (entries, blobs, bytes), the size left, and how much
    of that it had to keep because it is younger than :data:`GRACE_SECONDS`."""

    entries: int
    blobs: int
    freed: int
    total: int
    kept: int = 0


class CacheStore:
    """One cache directory. Methods raise :class:`OSError` for what the disk refuses
    (read-only, full, permissions) and :class:`CorruptEntry` for bytes that do
    not match their digest."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.base = root / "v1"
        self.blobs = self.base / "blobs"
        self.entries = self.base / "entries"
        self.tmp = self.base / "tmp"

    # -- set-up ---------------------------------------------------------------------
    def ensure(self) -> None:
        """Create the folders (and ``CACHEDIR.TAG``). :raises OSError: it cannot."""
        for path in (self.blobs, self.entries, self.tmp):
            path.mkdir(parents=True, exist_ok=True)
        tag = self.root / "CACHEDIR.TAG"
        if not tag.exists():
            self._atomic_write(tag, _TAG)

    def exists(self) -> bool:
        return self.base.is_dir()

    # -- blobs ----------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest[:2] / digest

    def _reuse(self, digest: str) -> bool:
        """True if the blob is there; marks it as just used, so eviction spares it."""
        try:
            os.utime(self.blob_path(digest))
            return True
        except FileNotFoundError:
            return False

    def put_bytes(self, data: bytes, digest: str) -> int:
        """Store ``data`` as blob ``digest`` (already computed); returns the bytes added."""
        if self._reuse(digest):
            return 0
        self._atomic_write(self.blob_path(digest), data, mkdir=True)
        return len(data)

    def put_file(self, source: Path, digest: str) -> int:
        """Store a big file's content as blob ``digest``, checking it while copying.

        :raises CorruptEntry: the file's content no longer has that digest (it changed).
        """
        if self._reuse(digest):
            return 0
        target = self.blob_path(digest)
        with self._temporary() as (tmp, out), open(source, "rb", buffering=0) as f:
            h = hashlib.sha256()
            size = 0
            while chunk := f.read(CHUNK):
                h.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            if h.hexdigest() != digest:
                raise CorruptEntry(f"{source} changed while it was being stored")
            self._publish(tmp, target, mkdir=True)
        return size

    def read_blob(self, digest: str) -> bytes:
        """A whole blob, checked. :raises CorruptEntry: missing, or not matching its
        digest (it is then deleted, so the next store writes it again)."""
        try:
            data = self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise CorruptEntry(f"blob {digest[:12]} is missing") from None
        if hashlib.sha256(data).hexdigest() != digest:
            self.discard_blob(digest)
            raise CorruptEntry(f"blob {digest[:12]} does not match its digest")
        return data

    def open_blob(self, digest: str) -> BinaryIO:
        """:raises CorruptEntry: the blob is missing."""
        try:
            return open(self.blob_path(digest), "rb", buffering=0)
        except FileNotFoundError:
            raise CorruptEntry(f"blob {digest[:12]} is missing") from None

    def discard_blob(self, digest: str) -> None:
        """Delete a blob found corrupt, so the next store writes it again."""
        with contextlib.suppress(OSError):
            self.blob_path(digest).unlink()

    # -- entries --------------------------------------------------------------------
    def entry_path(self, key: str) -> Path:
        return self.entries / f"{key}.entry"

    def write_entry(self, entry: Entry) -> None:
        self._atomic_write(self.entry_path(entry.key), encode_entry(entry))

    def read_entry(self, key: str) -> Entry | None:
        """The entry, or ``None`` if there is none. :raises CorruptEntry: it is damaged."""
        try:
            data = self.entry_path(key).read_bytes()
        except FileNotFoundError:
            return None
        entry = decode_entry(data)
        if entry.key != key:
            raise CorruptEntry(f"it holds the key {entry.key[:12]}, not {key[:12]}")
        return entry

    def touch_entry(self, key: str) -> None:
        """Mark an entry as just used (LRU); a read-only cache just keeps its old time."""
        with contextlib.suppress(OSError):
            os.utime(self.entry_path(key))

    def discard_entry(self, key: str) -> None:
        with contextlib.suppress(OSError):
            self.entry_path(key).unlink()

    def list_entries(self) -> list[EntryInfo]:
        """Every entry, least recently used first (corrupt ones with ``entry=None``)."""
        found = []
        for path in self._entry_files():
            try:
                st = path.stat()
                data = path.read_bytes()
            except OSError:
                continue  # deleted meanwhile
            key = path.name.removesuffix(".entry")
            try:
                entry: Entry | None = decode_entry(data)
            except CorruptEntry:
                entry = None
            found.append(EntryInfo(key, st.st_mtime, st.st_size, entry))
        found.sort(key=lambda info: info.last_used)
        return found

    def _entry_files(self) -> Iterator[Path]:
        try:
            with os.scandir(self.entries) as it:
                paths = [Path(e.path) for e in it if e.name.endswith(".entry")]
        except FileNotFoundError:
            return iter(())
        return iter(paths)

    # -- size and eviction ----------------------------------------------------------
    def _blob_files(self) -> dict[str, tuple[int, float]]:
        """digest -> (size, mtime) of every blob on disk."""
        found: dict[str, tuple[int, float]] = {}
        try:
            fans = list(os.scandir(self.blobs))
        except FileNotFoundError:
            return found
        for fan in fans:
            try:
                with os.scandir(fan.path) as it:
                    for blob in it:
                        try:
                            st = blob.stat()
                        except FileNotFoundError:
                            continue
                        found[blob.name] = (st.st_size, st.st_mtime)
            except (FileNotFoundError, NotADirectoryError):
                continue
        return found

    def _entries_size(self) -> int:
        total = 0
        for path in self._entry_files():
            with contextlib.suppress(OSError):
                total += path.stat().st_size
        return total

    def usage(self) -> int:
        """Bytes in blobs and entries (each blob once)."""
        return sum(size for size, _ in self._blob_files().values()) + self._entries_size()

    def evict(
        self, max_size: int, *, low_water: float = _LOW_WATER, sweep: bool = False, now: float | None = None
    ) -> EvictResult:
        """Bring the cache under ``max_size``: damaged entries and old orphan blobs
        first, then entries least recently used first, down to ``low_water`` of it.

        :param sweep: remove damaged entries and old orphan blobs even when the
            cache is within its bound (``hm cache prune``); otherwise a cache
            within its bound is only measured.
        """
        now = time.time() if now is None else now
        self._sweep_tmp(now)
        blobs = self._blob_files()
        total = sum(size for size, _ in blobs.values()) + self._entries_size()
        if total <= max_size and not sweep:
            return EvictResult(0, 0, 0, total)
        infos = self.list_entries()  # read and decoded only when something may go
        total = sum(size for size, _ in blobs.values()) + sum(i.file_size for i in infos)
        target = int(max_size * low_water) if total > max_size else max_size
        refs: dict[str, int] = {}
        for info in infos:
            for digest in info.entry.blobs() if info.entry else ():
                refs[digest] = refs.get(digest, 0) + 1
        young = {d for d, (_, mtime) in blobs.items() if now - mtime < GRACE_SECONDS}
        # What eviction cannot free (a store in progress) does not count against the target.
        protected = sum(blobs[d][0] for d in young if d not in refs)
        freed = entries = removed = 0

        def drop_blob(digest: str) -> None:
            nonlocal freed, removed, total
            size = blobs.pop(digest, (0, 0.0))[0]
            with contextlib.suppress(FileNotFoundError):
                self.blob_path(digest).unlink()
                freed += size
                total -= size
                removed += 1

        def drop_entry(info: EntryInfo) -> None:
            nonlocal freed, entries, total, protected
            with contextlib.suppress(FileNotFoundError):
                self.entry_path(info.key).unlink()
                freed += info.file_size
                total -= info.file_size
                entries += 1
            for digest in info.entry.blobs() if info.entry else ():
                refs[digest] -= 1
                if refs[digest] == 0 and digest in blobs:
                    if digest in young:
                        protected += blobs[digest][0]
                    else:
                        drop_blob(digest)

        for digest in [d for d in blobs if d not in refs and d not in young]:
            drop_blob(digest)
        for info in infos:
            if info.entry is None:
                drop_entry(info)
        for info in infos:  # least recently used first
            if total - protected <= target:
                break
            if info.entry is not None:
                drop_entry(info)
        return EvictResult(entries, removed, freed, total, protected)

    def clear(self) -> EvictResult:
        """Delete every entry and blob (a run using the cache meanwhile just misses)."""
        infos = self.list_entries()
        blobs = self._blob_files()
        freed = sum(size for size, _ in blobs.values()) + sum(i.file_size for i in infos)
        if self.base.exists():
            # Renamed first, so a concurrent store never writes into a half-deleted tree.
            doomed = self.root / f"v1.deleting-{os.getpid()}-{time.monotonic_ns()}"
            os.rename(self.base, doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        return EvictResult(len(infos), len(blobs), freed, 0)

    def _sweep_tmp(self, now: float) -> None:
        try:
            with os.scandir(self.tmp) as it:
                for f in it:
                    with contextlib.suppress(OSError):
                        if now - f.stat().st_mtime >= GRACE_SECONDS:
                            os.unlink(f.path)
        except FileNotFoundError:
            pass

    # -- atomic writes --------------------------------------------------------------
    @contextlib.contextmanager
    def _temporary(self) -> Iterator[tuple[str, BinaryIO]]:
        """A new file under ``tmp/``, deleted unless :meth:`_publish` moved it."""
        fd, tmp = tempfile.mkstemp(dir=self.tmp, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                yield tmp, out
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _publish(self, tmp: str, target: Path, *, mkdir: bool = False) -> None:
        try:
            os.replace(tmp, target)
        except FileNotFoundError:
            if not mkdir:
                raise
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)

    def _atomic_write(self, target: Path, data: bytes, *, mkdir: bool = False) -> None:
        if not self.tmp.is_dir():  # ensure() was not called, or the folder was cleared
            raise OSError(errno.ENOENT, "the cache folder is not set up", str(self.tmp))
        with self._temporary() as (tmp, out):
            out.write(data)
            out.flush()
            self._publish(tmp, target, mkdir=mkdir)
