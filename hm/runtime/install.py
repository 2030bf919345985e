"""``hm plugin install`` and ``hm plugin remove``: putting a library into a plugin folder, safely.

Installing runs these steps in this order, and nothing is written to a plugin folder
before the last one:

1. **check the arguments** (:func:`check_pin`, :func:`parse_source`, the project):
   ``http://`` is refused outright, ``https://`` needs ``--pin``, any other scheme and
   a missing file are usage errors;
2. **stage** the source: copy it (or download it) *once* into a private folder
   under hm's cache directory, hashing while copying, so the bytes that are checked,
   validated and installed are the same bytes even if the source changes meanwhile;
3. **verify the pin** before any plugin code runs;
4. **validate** the staged copy in a child process (:func:`~hm.runtime.probe.probe`),
   exactly as discovery reads an uncached library: a library that aborts, faults or
   hangs while loading takes down the child, not hm. hm never loads it in-process
   (a library once loaded can never be unloaded, see DESIGN.md);
5. **write** ``<manifest name><suffix>`` into the user plugin folder or the project's
   ``.hm/plugins/``: a temporary file in that folder, fsync, ``os.replace`` (atomic;
   a new inode, so a running hm that mapped the old file keeps its mapping), fsync of
   the folder. What is already there decides (:func:`_decide`): an identical file is
   left untouched; a newer version or a new build of the same version of the *same*
   plugin (same manifest name) is an upgrade and replaces it; an older version, a
   different plugin or a file that cannot be loaded is replaced only with ``--force``;
6. **record** the validated outcome in the manifest cache, so the next listing runs
   no plugin code for the new file.

**Leftovers.** An install that is killed (SIGKILL, a crash, a power cut) cannot
clean up after itself. So the staging folders live where the next install looks:
``<cache dir>/install-staging/<pid>.<host>-XXXXXXXX``, and the temporary file in a
plugin folder is ``.<name><suffix>.<pid>.<host>.XXXXXXXX.partial`` (``<host>``: 8 hex
digits of a hash of the host name, as a home folder may be shared between machines).
Every install first sweeps what a process of this host that no longer runs left
(:func:`sweep_stale`); what another host left, and what older hm versions left
(``$TMPDIR/hm-install-*``, ``.partial`` files without a pid), once an hour old.

Downloads use urllib with a 60 s timeout, a 256 MiB cap and redirects to https only;
a failed download is a usage error (exit 2): hm has no network exit code and the
remedy is in the user's hands (the URL, the network).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Literal

import semver

from hm import paths
from hm.errors import PluginConflictError, PluginLoadError, UsageError
from hm.runtime.discovery import BUNDLED_DIR, plugin_suffix
from hm.runtime.manifest import _NAME as _PLUGIN_NAME  # the one definition of a valid plugin name
from hm.runtime.manifest_cache import FileKey, ManifestCache, Outcome
from hm.runtime.probe import PROBE_TIMEOUT, probe
from hm.runtime.registry import PluginRecord, Registry
from hm_plugin_sdk.protocol import PluginManifest

__all__ = [
    "DOWNLOAD_TIMEOUT",
    "MAX_DOWNLOAD_BYTES",
    "InstallResult",
    "RemoveResult",
    "Scope",
    "check_pin",
    "find_hm_project",
    "install_plugin",
    "remove_plugin",
    "staging_root",
    "sweep_stale",
]

Scope = Literal["user", "project"]

#: Seconds a download may stall (urllib's socket timeout: per connect / read).
DOWNLOAD_TIMEOUT = 60.0
#: The largest plugin hm downloads. A real plugin is a few MiB; this bounds a runaway server.
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024

_INSTALL = "hm plugin install"
_REMOVE = "hm plugin remove"
_NOTHING = "nothing was installed"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20


def folder_label(scope: Scope) -> str:
    return "this project's plugin folder" if scope == "project" else "the user plugin folder"


# -- step 1: arguments ----------------------------------------------------------------


def check_pin(pin: str | None) -> str | None:
    """The pin as 64 lower-case hex digits (``sha256:`` prefix and upper case accepted)."""
    if pin is None:
        return None
    digest = pin.strip()
    if digest[:7].lower() == "sha256:":
        digest = digest[7:]
    digest = digest.lower()
    if not _HEX64.match(digest):
        raise UsageError(
            f"--pin {pin!r} is not a SHA-256 digest",
            where=_INSTALL,
            hint="give the 64 hex digits of the file's SHA-256 (`sha256sum FILE` prints them), "
            "optionally prefixed with sha256:",
        )
    return digest


@dataclass(frozen=True, slots=True)
class _Source:
    shown: str  # as the user gave it
    url: str | None = None
    path: Path | None = None


def parse_source(source: str, pin: str | None) -> _Source:
    match = _SCHEME.match(source)
    if match is None:
        path = Path(source).expanduser()
        if not path.exists():
            raise UsageError(
                f"no such file: {source}",
                where=_INSTALL,
                hint="give the path of a plugin library (.so, .dylib or .dll) or an https:// URL with --pin",
            )
        if not path.is_file():
            raise UsageError(
                f"{source} is not a file",
                where=_INSTALL,
                hint="give the path of the plugin library itself, not of a folder",
            )
        return _Source(source, path=path)
    scheme = match.group(1).lower()
    if scheme == "http":
        raise UsageError(
            f"refusing to download a plugin over plain http: {source}",
            where=_INSTALL,
            hint="a plugin is code that runs with your rights; use its https:// URL together with --pin SHA256",
        )
    if scheme != "https":
        raise UsageError(
            f"cannot install from a {scheme}:// URL",
            where=_INSTALL,
            hint="give a local file path, or an https:// URL with --pin SHA256",
        )
    if pin is None:
        raise UsageError(
            "installing from an https URL needs --pin SHA256",
            where=_INSTALL,
            hint="ask the plugin's publisher for the file's SHA-256 and pass it as --pin, "
            "or download the file yourself, check it, and install the local file",
        )
    if not urllib.parse.urlsplit(source).hostname:
        raise UsageError(f"{source} has no host name", where=_INSTALL, hint="check the URL")
    return _Source(source, url=source)


def find_hm_project(start: Path) -> Path | None:
    """The nearest of ``start`` and its ancestors holding ``.hm/`` or ``.git``; None outside a project.

    The same rule (and the same resolved spelling) as the session's project root, so the
    project plugin folder written here is the one discovery scans.
    """
    from hm.pipeline.sources import find_project_root

    root = find_project_root(start)
    if (root / ".hm").is_dir() or (root / ".git").exists():
        return root
    return None


def _require_project(start: Path, command: str) -> Path:
    root = find_hm_project(start)
    if root is None:
        raise UsageError(
            f"{start.resolve()} is not in an hm project",
            where=command,
            hint="run it inside a project (a folder with .hm/ or .git, or below one), "
            "pass `hm -C PROJECT_DIR …`, or leave out --project for the user plugin folder",
        )
    return root


# -- step 2: staging ------------------------------------------------------------------


class _HttpsOnlyRedirect(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to another https URL: a pinned download is still code,
    and a downgrade to http would let anyone on the path choose the error message."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme.lower() != "https":
            raise UsageError(
                f"refusing to follow a redirect from {req.full_url} to {newurl}: not https",
                where=_INSTALL,
                hint="ask the publisher for an https URL that stays on https",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _open_url(url: str, timeout: float) -> IO[bytes]:
    """Open ``url`` for reading (a function of its own so tests can replace the network)."""
    opener = urllib.request.build_opener(_HttpsOnlyRedirect())
    request = urllib.request.Request(url, headers={"User-Agent": "hm-plugin-install"})
    return opener.open(request, timeout=timeout)


def _too_large(url: str) -> UsageError:
    return UsageError(
        f"{url} is larger than {MAX_DOWNLOAD_BYTES // (1024 * 1024)} MiB, the limit for a plugin download",
        where=_INSTALL,
        hint=f"check the URL; a plugin library is rarely more than a few MiB; {_NOTHING}",
    )


def _download(url: str, out: IO[bytes], digest: hashlib._Hash) -> int:
    try:
        with _open_url(url, DOWNLOAD_TIMEOUT) as response:
            final = getattr(response, "geturl", lambda: url)() or url
            if urllib.parse.urlsplit(final).scheme.lower() != "https":
                raise UsageError(
                    f"{url} ended at {final}, which is not https",
                    where=_INSTALL,
                    hint="ask the publisher for an https URL that stays on https",
                )
            headers = getattr(response, "headers", None)
            length = headers.get("Content-Length") if headers is not None else None
            if length is not None and length.strip().isdigit() and int(length) > MAX_DOWNLOAD_BYTES:
                raise _too_large(url)
            size = 0
            while block := response.read(_CHUNK):
                size += len(block)
                if size > MAX_DOWNLOAD_BYTES:
                    raise _too_large(url)
                digest.update(block)
                out.write(block)
            return size
    except urllib.error.HTTPError as exc:
        raise UsageError(
            f"cannot download {url}: HTTP {exc.code} {exc.reason}",
            where=_INSTALL,
            hint=f"check the URL; {_NOTHING}",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UsageError(
            f"cannot download {url}: {reason}",
            where=_INSTALL,
            hint=f"check the URL and your network connection; {_NOTHING}",
        ) from None


def _stage(source: _Source, folder: Path) -> tuple[Path, str]:
    """Copy ``source`` once into ``folder``; the staged file and its SHA-256."""
    staged = folder / f"staged{plugin_suffix()}"
    digest = hashlib.sha256()
    with staged.open("wb") as out:
        if source.url is not None:
            _download(source.url, out, digest)
        else:
            assert source.path is not None
            try:
                with source.path.open("rb") as f:
                    while block := f.read(_CHUNK):
                        digest.update(block)
                        out.write(block)
            except OSError as exc:
                raise UsageError(
                    f"cannot read {source.shown}: {exc.strerror}", where=_INSTALL, hint="check its permissions"
                ) from None
    return staged, digest.hexdigest()


# -- leftovers of killed installs ------------------------------------------------------

#: Leftovers whose owner cannot be checked (another host's, or an older hm's that named
#: no pid) are removed once they are this old: no copy or validation takes an hour.
STALE_AFTER_SECONDS = 3600.0
_OWNED = re.compile(r"^(?P<pid>\d+)\.(?P<host>[0-9a-f]{8})-")  # "<pid>.<host>-XXXXXXXX"
_PARTIAL = re.compile(r"^\..+\.(?P<pid>\d+)\.(?P<host>[0-9a-f]{8})\.[^.]+\.partial$")


def _host_tag() -> str:
    """8 hex digits naming this host: a pid means something only on the host that made it."""
    return hashlib.sha256(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def _owner_tag() -> str:
    """``<pid>.<host>``: who writes a staging folder or a ``.partial`` file."""
    return f"{os.getpid()}.{_host_tag()}"


def staging_root() -> Path:
    """Where installs stage their copies: hm's cache directory, so the next install
    finds what a killed one left. ($TMPDIR varies between sessions and is often a RAM
    disk, too small for a large plugin.)"""
    return paths.cache_dir() / "install-staging"


def _pid_alive(pid: int) -> bool:
    """POSIX only: signal 0 checks that the process exists and sends nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists (e.g. another user's process)
    return True


def _abandoned(path: Path, owner: re.Match[str] | None, now: float) -> bool:
    """True when ``path`` belongs to no running install: its owner is a process of this
    host that runs no more, or the owner cannot be checked and ``path`` is
    :data:`STALE_AFTER_SECONDS` old (another host's, or written by an older hm)."""
    if owner is not None and owner["host"] == _host_tag():
        pid = int(owner["pid"])
        if pid == os.getpid():
            return False  # this very install
        if os.name == "posix":
            return not _pid_alive(pid)
    try:
        return now - path.lstat().st_mtime > STALE_AFTER_SECONDS
    except OSError:
        return False


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()
    except OSError:
        pass  # a sweep is never worth an error: the next install tries again


def sweep_stale(plugin_folder: Path | None = None) -> list[Path]:
    """Remove what killed installs left behind; returns what was removed.

    Looks in :func:`staging_root`, in ``plugin_folder`` (its ``.*.partial`` files) and,
    for installs by older hm versions, at ``$TMPDIR/hm-install-*`` folders of this user.
    What belongs to a running install is kept: its pid is in the name, and a name
    without a pid is kept until it is :data:`STALE_AFTER_SECONDS` old.
    """
    now = time.time()
    removed: list[Path] = []

    def consider(path: Path, owner: re.Match[str] | None) -> None:
        if _abandoned(path, owner, now):
            _remove(path)
            removed.append(path)

    for folder, pattern in ((staging_root(), _OWNED), (plugin_folder, _PARTIAL)):
        if folder is None:
            continue
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            if folder is plugin_folder and not (path.name.startswith(".") and path.name.endswith(".partial")):
                continue
            consider(path, pattern.match(path.name))
    try:
        legacy = [p for p in Path(tempfile.gettempdir()).glob("hm-install-*") if p.is_dir() and not p.is_symlink()]
    except OSError:
        legacy = []
    for path in legacy:
        try:
            mine = os.name != "posix" or path.lstat().st_uid == os.getuid()
        except OSError:
            mine = False
        if mine:
            consider(path, None)
    return removed


@contextmanager
def _staging_folder() -> Iterator[Path]:
    """A private (0700) folder under :func:`staging_root`, named after this process."""
    root = staging_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{_owner_tag()}-", dir=root))
    except OSError as exc:
        raise UsageError(
            f"cannot create a staging folder in {root}: {exc.strerror or exc}",
            where=_INSTALL,
            hint=f"check the permissions of hm's cache directory and free space; {_NOTHING}",
        ) from None
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the result -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PluginFile:
    """A plugin library in a folder, as far as hm read it (in a child process)."""

    path: Path
    sha256: str
    manifest: PluginManifest | None
    abi: tuple[int, int] | None
    error: PluginLoadError | None = None

    @property
    def name(self) -> str:
        return self.manifest.name if self.manifest else self.path.stem

    @property
    def version(self) -> str | None:
        return self.manifest.version if self.manifest else None

    @property
    def label(self) -> str:
        """``NAME VERSION``, or ``a plugin that cannot be loaded`` for a broken one."""
        if self.manifest is None:
            return "a plugin that cannot be loaded"
        return f"{self.manifest.name} {self.manifest.version}"


#: ``installed``: nothing was there. ``upgraded``: a newer version of the same plugin
#: replaced the old one. ``reinstalled``: a new build of the same version did.
#: ``replaced``: ``--force`` replaced something else (another plugin, a file that cannot
#: be loaded, a newer version: a downgrade). ``already_installed``: the identical file is there.
InstallStatus = Literal["installed", "upgraded", "reinstalled", "replaced", "already_installed"]


@dataclass(slots=True)
class InstallResult:
    status: InstallStatus
    scope: Scope
    source: str
    plugin: PluginFile
    replaced: PluginFile | None = None
    #: Same-named plugins of lower precedence the new one hides.
    shadows: list[PluginRecord] = field(default_factory=list)
    #: The same-named plugin of higher precedence that hides the new one.
    shadowed_by: PluginRecord | None = None
    conflicts: list[PluginConflictError] = field(default_factory=list)


@dataclass(slots=True)
class RemoveResult:
    scope: Scope
    removed: PluginFile
    #: The plugin of that name hm uses now, if any.
    now_uses: PluginRecord | None = None


# -- install --------------------------------------------------------------------------


def install_plugin(
    source: str,
    *,
    pin: str | None = None,
    scope: Scope = "user",
    start: Path | None = None,
    force: bool = False,
    cache: ManifestCache | None = None,
    probe_timeout: float = PROBE_TIMEOUT,
) -> InstallResult:
    """Install ``source`` (a path or an https URL) into the user or project plugin folder.

    :param start: where the project is looked for (default: the current directory).
    :raises UsageError: bad arguments, pin mismatch, a different plugin in the way (exit 2).
    :raises PluginLoadError: the library is not a valid plugin; nothing was installed (exit 4).
    """
    # 1. arguments: everything that can be refused without reading the source
    from hm.runtime.install_stdio import ARCHIVE_SUFFIXES, install_stdio, is_stdio_tree

    if not _SCHEME.match(source) and is_stdio_tree(source):  # a stdio plugin's directory or descriptor
        if pin is not None:
            raise UsageError(
                "--pin applies to a file or an https URL, not to a plugin directory",
                where=_INSTALL,
                hint="pin an archive of the directory (.tar.gz, .tgz or .zip), or drop --pin",
            )
        return install_stdio(source, scope=scope, start=start, force=force, cache=cache, probe_timeout=probe_timeout)
    # an archive of a stdio plugin is staged and pinned as a library is, then unpacked
    archive = next((s for s in ARCHIVE_SUFFIXES if urllib.parse.urlsplit(source).path.endswith(s)), None)
    digest_pin = check_pin(pin)
    src = parse_source(source, digest_pin)
    start = start if start is not None else Path.cwd()
    project_root = _require_project(start, _INSTALL) if scope == "project" else None
    cache = cache if cache is not None else ManifestCache()

    sweep_stale()
    with _staging_folder() as tmp:
        # 2. one copy, hashed as it is made
        staged, sha256 = _stage(src, tmp)
        # 3. the pin, before any plugin code runs
        if digest_pin is not None and sha256 != digest_pin:
            raise UsageError(
                f"{source} does not match --pin: expected sha256 {digest_pin}, got sha256 {sha256}",
                where=_INSTALL,
                hint=f"the file is not the one the pin describes: check the pin and the source; {_NOTHING}",
            )
        if archive is not None:
            staged_archive = staged.rename(staged.with_name(f"staged{archive}"))
            return install_stdio(
                str(staged_archive),
                shown=source,
                scope=scope,
                start=start,
                force=force,
                cache=cache,
                probe_timeout=probe_timeout,
            )
        # 4. validation in a child process
        result = probe(staged, shown_as=source, timeout=probe_timeout)
        outcome = result.outcome
        if outcome.error is not None or outcome.manifest is None:
            err = outcome.error or PluginLoadError("cannot be loaded", path=source)
            hint = f"{err.hint.rstrip('; ')}; {_NOTHING}" if err.hint else _NOTHING
            raise PluginLoadError(err.what, path=source, plugin=err.plugin, hint=hint)
        manifest = outcome.manifest

        # 5. the destination
        folder = paths.project_plugin_dir(project_root) if project_root is not None else paths.user_plugin_dir()
        dest = (folder / f"{manifest.name}{plugin_suffix()}").absolute()
        new = PluginFile(dest, sha256, manifest, outcome.abi)
        previous = _existing(dest, cache)
        status = _decide(previous, new, force=force, source=source, scope=scope)
        if status == "already_installed":
            _record(cache, dest, sha256, outcome)  # the file is the one just validated
            cache.save()
            return _with_notes(InstallResult("already_installed", scope, source, new), start, cache)
        _write_atomically(staged, dest)

    # 6. the manifest cache: the next listing runs no plugin code for this file
    _record(cache, dest, sha256, outcome)
    cache.save()
    return _with_notes(InstallResult(status, scope, source, new, replaced=previous), start, cache)


def _decide(previous: PluginFile | None, new: PluginFile, *, force: bool, source: str, scope: Scope) -> InstallStatus:
    """What installing ``new`` over ``previous`` (the file at its destination) is.

    :raises UsageError: it would replace something other than an older or equal
        version of the same plugin, and ``force`` is not set.
    """
    if previous is None:
        return "installed"
    if previous.sha256 == new.sha256:
        return "already_installed"
    assert new.manifest is not None
    old = previous.manifest
    same_plugin = previous.error is None and old is not None and old.name == new.manifest.name
    order = _compare_versions(old.version, new.manifest.version) if same_plugin and old is not None else None
    if order is not None and order < 0:
        return "upgraded"
    if order == 0:
        return "reinstalled"
    if force:
        return "replaced"
    remove = f"`hm plugin remove {new.manifest.name}{' --project' if scope == 'project' else ''}` first"
    if order is not None:  # the same plugin, but the one installed is newer
        raise UsageError(
            f"{previous.path} holds {previous.label}, newer than {new.label} from {source}; refusing to downgrade it",
            where=_INSTALL,
            hint=f"add --force to install the older version, or {remove}",
        )
    held = previous.label if previous.error is None else f"{previous.label} ({previous.error.what})"
    raise UsageError(
        f"{previous.path} already holds {held}; refusing to replace it with {new.label} from {source}",
        where=_INSTALL,
        hint=f"add --force to replace it, or {remove}",
    )


def _compare_versions(old: str, new: str) -> int | None:
    """-1, 0 or 1 as ``old`` is lower than, equal to or higher than ``new`` (semver order);
    None if either is not a semantic version (a manifest hm validated always is)."""
    try:
        return semver.Version.parse(old).compare(new)
    except ValueError:
        return None


def _existing(dest: Path, cache: ManifestCache) -> PluginFile | None:
    """What ``dest`` holds now (read from the cache, else in a child process), or None."""
    if not dest.exists() and not dest.is_symlink():
        return None
    if dest.is_dir() or not dest.exists():
        raise UsageError(
            f"{dest} is in the way: it is {'a folder' if dest.is_dir() else 'a dangling link'}",
            where=_INSTALL,
            hint="move it out of the plugin folder and install again",
        )
    try:
        key = FileKey.of(dest)
    except OSError as exc:
        raise UsageError(f"cannot read {dest}: {exc.strerror}", where=_INSTALL, hint="check its permissions") from None
    outcome = cache.get(dest, key)
    if outcome is None:
        found = probe(dest)
        outcome = found.outcome
        if found.definitive:
            cache.put(dest, key, outcome)
    return PluginFile(dest, key.sha256, outcome.manifest, outcome.abi, outcome.error)


def _record(cache: ManifestCache, dest: Path, sha256: str, outcome: Outcome) -> None:
    """Cache ``outcome`` for ``dest`` if it still holds the bytes that were validated."""
    try:
        key = FileKey.of(dest)
        if key.sha256 == sha256:  # not if another process replaced the file meanwhile
            cache.put(dest, key, outcome)
    except OSError:
        pass  # a cache is never worth an error: the next listing reads the file again


def _write_atomically(staged: Path, dest: Path) -> None:
    """``staged`` becomes ``dest``: temp file in dest's folder, fsync, rename, fsync the folder."""
    folder = dest.parent
    tmp_name: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sweep_stale(folder)
        # A name without the library suffix: discovery never picks up a half-written file.
        # The pid in it tells a later install whether its writer still runs (sweep_stale).
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{dest.name}.{_owner_tag()}.", suffix=".partial")
        with os.fdopen(fd, "wb") as out, staged.open("rb") as f:
            shutil.copyfileobj(f, out, _CHUNK)
            out.flush()
            if os.name == "posix":
                os.fchmod(out.fileno(), 0o755 & ~_umask())
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)  # a new inode: a process that mapped the old file keeps it
        tmp_name = None
        _fsync_dir(folder)
    except OSError as exc:
        raise UsageError(
            f"cannot write {dest}: {exc.strerror or exc}",
            where=_INSTALL,
            hint=f"check the folder's permissions and free space; {_NOTHING}",
        ) from None
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in ``folder`` durable (POSIX; a no-op elsewhere)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _with_notes(result: InstallResult, start: Path, cache: ManifestCache) -> InstallResult:
    """Fill in what the new plugin shadows, what shadows it and what it conflicts with."""
    from hm.pipeline.sources import find_project_root

    registry = Registry.discover(find_project_root(start), cache=cache)
    dest = result.plugin.path
    mine = next((r for r in registry.records if _same_file(r.path, dest)), None)
    if mine is None:
        return result
    result.shadowed_by = (
        next((r for r in registry.records if _same_file(r.path, mine.shadowed_by)), None)
        if mine.shadowed_by is not None
        else None
    )
    result.shadows = [r for r in registry.records if r.shadowed_by is not None and _same_file(r.shadowed_by, dest)]
    result.conflicts = [c for c in registry.conflicts if mine.label in c.what]
    return result


def _same_file(a: Path, b: Path | None) -> bool:
    if b is None:
        return False
    if a == b:
        return True
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


# -- remove ---------------------------------------------------------------------------


def remove_plugin(name: str, *, scope: Scope = "user", start: Path | None = None) -> RemoveResult:
    """Delete ``<name><suffix>`` from the user or project plugin folder.

    :raises UsageError: an invalid name, or no such file there (the hint says where
        the plugin actually is and why hm cannot remove it).
    """
    from hm.pipeline.sources import find_project_root

    if not _PLUGIN_NAME.match(name):
        raise UsageError(
            f"{name!r} is not a plugin name",
            where=_REMOVE,
            hint="a plugin name is lowercase letters, digits, '-', '_' or '.'; `hm plugin list` shows them",
        )
    start = start if start is not None else Path.cwd()
    if scope == "project":
        folder = paths.project_plugin_dir(_require_project(start, _REMOVE))
    else:
        folder = paths.user_plugin_dir()
    target = (folder / f"{name}{plugin_suffix()}").absolute()
    registry = Registry.discover(find_project_root(start))
    tree = (folder / name).absolute()
    if tree.is_dir() and not tree.is_symlink() and not target.exists():
        return _remove_stdio(name, tree, scope, folder, registry)
    if not (target.is_file() or target.is_symlink()):
        raise UsageError(
            f"no plugin '{name}' in {folder_label(scope)} (looked for {target})",
            where=_REMOVE,
            hint=_where_else(name, scope, target, registry),
        )
    rec = next((r for r in registry.records if _same_file(r.path, target)), None)
    try:
        sha256 = FileKey.of(target).sha256
    except OSError:
        sha256 = ""
    removed = PluginFile(
        target,
        sha256,
        rec.manifest if rec else None,
        rec.abi if rec else None,
        rec.error if rec else None,
    )
    try:
        target.unlink()
        _fsync_dir(folder)
    except OSError as exc:
        raise UsageError(
            f"cannot remove {target}: {exc.strerror or exc}", where=_REMOVE, hint="check the folder's permissions"
        ) from None
    # Records are in precedence order: the first other healthy one of that name is what hm uses now.
    now = next(
        (r for r in registry.records if r.ok and r.name == removed.name and not _same_file(r.path, target)),
        None,
    )
    return RemoveResult(scope, removed, now)


def _remove_stdio(name: str, tree: Path, scope: Scope, folder: Path, registry: Registry) -> RemoveResult:
    """Remove the stdio plugin directory ``tree`` (see :mod:`hm.runtime.install_stdio`)."""
    from hm.runtime.install_stdio import remove_tree, tree_digest

    rec = next((r for r in registry.records if _same_file(r.path.parent, tree)), None)
    desc = rec.path if rec is not None else tree
    removed = PluginFile(desc, tree_digest(tree), rec.manifest if rec else None, rec.abi if rec else None)
    try:
        remove_tree(tree)
        _fsync_dir(folder)
    except OSError as exc:
        raise UsageError(
            f"cannot remove {tree}: {exc.strerror or exc}", where=_REMOVE, hint="check the folder's permissions"
        ) from None
    now = next((r for r in registry.records if r.ok and r.name == name and not _same_file(r.path, desc)), None)
    return RemoveResult(scope, removed, now)


def _where_else(name: str, scope: Scope, target: Path, registry: Registry) -> str:
    """Where a plugin called ``name`` is, if not at ``target``, and what to do about it."""
    recs = [r for r in registry.records if r.name == name or r.path.stem == name]
    if not recs:
        return "hm finds no plugin of that name anywhere; `hm plugin list` shows the plugins it finds"
    rec = next((r for r in recs if r.active), recs[0])
    where = rec.path
    if rec.origin == "bundled" or _same_file(rec.path.parent, BUNDLED_DIR):
        return (
            f"'{name}' is bundled with hm ({where}) and cannot be removed; "
            "install a plugin of the same name to shadow it"
        )
    if rec.origin == "env":
        return f"'{name}' is at {where}, found through HM_PLUGIN_PATH; take it off HM_PLUGIN_PATH to stop using it"
    if rec.origin == "package":
        dist = _distribution_of(rec.path)
        what = f"`pip uninstall {dist}`" if dist else "uninstall that package with pip"
        return f"'{name}' comes from a Python package ({where}); {what} to remove it"
    if rec.origin == "project" and scope == "user":
        return f"'{name}' is in this project's plugin folder ({where}); add --project to remove it from there"
    if rec.origin == "user" and scope == "project":
        return f"'{name}' is in the user plugin folder ({where}); drop --project to remove it from there"
    folder = "this project's plugin folder" if rec.origin == "project" else "the user plugin folder"
    return (
        f"'{name}' is in {folder} as {where}, not under the name hm installs it as; "
        "delete that file yourself if you no longer want it"
    )


def _distribution_of(path: Path) -> str | None:
    """The installed distribution that declares an ``hm.plugins`` entry point and ships ``path``."""
    try:
        target = path.resolve()
        for ep in metadata.entry_points(group="hm.plugins"):
            dist = ep.dist
            if dist is None:
                continue
            for f in dist.files or ():
                if Path(str(dist.locate_file(f))).resolve() == target:
                    return str(dist.metadata["Name"])
    except Exception:  # metadata of foreign packages: best effort only
        return None
    return None
