"""``hm plugin install`` of a stdio plugin: a plugin directory (or an archive of
one, ``.tar.gz`` / ``.tgz`` / ``.zip``) holding one ``NAME.plugin.toml``; and
``hm plugin remove`` of one.

The steps are a library's (:mod:`hm.runtime.install`), on a tree: the source is
copied once into a private staging folder (an archive is unpacked there, with
tarfile's ``data`` filter: no absolute paths, no ``..``, no devices), validated
there by the probe (its command started and asked for its manifest in a child
process), then copied into ``<plugin folder>/.<name>.<pid>.<host>.XXXX.partial/``
and renamed to ``<plugin folder>/<manifest name>/``. A directory being replaced
is first renamed aside (a dot-name discovery skips) and removed after. The tree's
identity is a SHA-256 over its relative paths and contents, so installing the
same tree again changes nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from hm import paths
from hm.errors import PluginLoadError, UsageError
from hm.runtime.install import (
    _INSTALL,
    _NOTHING,
    InstallResult,
    PluginFile,
    Scope,
    _decide,
    _fsync_dir,
    _owner_tag,
    _require_project,
    _staging_folder,
    _with_notes,
    sweep_stale,
)
from hm.runtime.manifest_cache import ManifestCache, Outcome
from hm.runtime.probe import PROBE_TIMEOUT, probe
from hm.runtime.stdio_descriptor import DESCRIPTOR_SUFFIX, descriptor_key, is_descriptor

__all__ = ["ARCHIVE_SUFFIXES", "descriptor_in", "install_stdio", "is_stdio_tree", "remove_tree", "tree_digest"]

#: What an archive of a stdio plugin's directory is called (a local file, or an https URL with --pin).
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".zip")


def is_stdio_tree(source: str) -> bool:
    """A local plugin directory or a descriptor in one."""
    path = Path(source).expanduser()
    return path.is_dir() or (is_descriptor(path) and path.is_file())


def descriptor_in(folder: Path, shown: str) -> Path:
    """The one descriptor of a plugin directory.

    :raises UsageError: none, or more than one.
    """
    found = sorted(p for p in folder.glob(f"*{DESCRIPTOR_SUFFIX}") if p.is_file())
    if len(found) != 1:
        what = "no NAME.plugin.toml" if not found else f"{len(found)} descriptors ({', '.join(p.name for p in found)})"
        raise UsageError(
            f"{shown} holds {what}",
            where=_INSTALL,
            hint="a stdio plugin's directory holds exactly one NAME.plugin.toml next to its files; "
            f"see docs/stdio-protocol.md; {_NOTHING}",
        )
    return found[0]


def tree_digest(folder: Path) -> str:
    """SHA-256 over every file's relative path and content (``__pycache__`` left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _stage(source: Path, shown: str, into: Path) -> Path:
    """Copy or unpack ``source`` into ``into/tree``; the plugin directory in it."""
    tree = into / "tree"
    try:
        if source.is_dir():
            shutil.copytree(source, tree, ignore=shutil.ignore_patterns("__pycache__"))
        elif is_descriptor(source):
            shutil.copytree(source.parent, tree, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.name.endswith(".zip"):
            with zipfile.ZipFile(source) as z:
                for member in z.namelist():  # zipfile strips absolute paths and '..' itself; refuse them anyway
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise UsageError(
                            f"{shown} holds {member!r}, outside the folder it unpacks to",
                            where=_INSTALL,
                            hint=_NOTHING,
                        )
                z.extractall(tree)
        else:
            with tarfile.open(source) as t:
                t.extractall(tree, filter="data")
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise UsageError(
            f"cannot read {shown}: {exc}", where=_INSTALL, hint=f"check the file or folder; {_NOTHING}"
        ) from None
    # An archive may hold the plugin directory itself, or its contents.
    entries = list(tree.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and not list(tree.glob(f"*{DESCRIPTOR_SUFFIX}")):
        return entries[0]
    return tree


def _existing(dest: Path, cache: ManifestCache) -> PluginFile | None:
    if not dest.exists() and not dest.is_symlink():
        return None
    if not dest.is_dir() or dest.is_symlink():
        raise UsageError(
            f"{dest} is in the way: it is not a plugin directory",
            where=_INSTALL,
            hint="move it out of the plugin folder and install again",
        )
    try:
        desc = descriptor_in(dest, str(dest))
    except UsageError:
        return PluginFile(dest, "", None, None, PluginLoadError("holds no descriptor", path=str(dest)))
    key = descriptor_key(desc)
    outcome = cache.get(desc, key)
    if outcome is None:
        found = probe(desc)
        outcome = found.outcome
        if found.definitive:
            cache.put(desc, key, outcome)
    return PluginFile(desc, tree_digest(dest), outcome.manifest, outcome.abi, outcome.error)


def install_stdio(
    source: str,
    *,
    shown: str | None = None,
    scope: Scope = "user",
    start: Path | None = None,
    force: bool = False,
    cache: ManifestCache | None = None,
    probe_timeout: float = PROBE_TIMEOUT,
) -> InstallResult:
    """Install the stdio plugin at ``source`` (a directory, a descriptor or an
    archive, already pinned if it was downloaded) as ``<plugin folder>/<name>/``.
    ``shown`` is what messages call the source (default: ``source``).

    :raises UsageError: bad arguments or something else in the way (exit 2).
    :raises PluginLoadError: the plugin does not start or answer its manifest; nothing was installed (exit 4).
    """
    start = start if start is not None else Path.cwd()
    project_root = _require_project(start, _INSTALL) if scope == "project" else None
    cache = cache if cache is not None else ManifestCache()
    src = Path(source).expanduser()
    given = shown or source
    sweep_stale()
    with _staging_folder() as tmp:
        staged = _stage(src, given, tmp)
        desc = descriptor_in(staged, given)
        sha256 = tree_digest(staged)
        shown = str(src if is_descriptor(src) else (src / desc.name if src.is_dir() else f"{given}:{desc.name}"))
        result = probe(desc, shown_as=shown, timeout=probe_timeout)
        outcome = result.outcome
        if outcome.error is not None or outcome.manifest is None:
            err = outcome.error or PluginLoadError("cannot be loaded", path=shown)
            hint = f"{err.hint.rstrip('; ')}; {_NOTHING}" if err.hint else _NOTHING
            raise PluginLoadError(err.what, path=shown, plugin=err.plugin, hint=hint)
        manifest = outcome.manifest
        folder = paths.project_plugin_dir(project_root) if project_root is not None else paths.user_plugin_dir()
        dest = (folder / manifest.name).absolute()
        new = PluginFile(dest / desc.name, sha256, manifest, outcome.abi)
        previous = _existing(dest, cache)
        status = _decide(previous, new, force=force, source=given, scope=scope)
        if status != "already_installed":
            _replace_tree(staged, dest)
    _record(cache, dest / desc.name, outcome)
    cache.save()
    return _with_notes(InstallResult(status, scope, given, new, replaced=previous), start, cache)


def _replace_tree(staged: Path, dest: Path) -> None:
    folder = dest.parent
    partial: str | None = None
    aside: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        sweep_stale(folder)
        partial = tempfile.mkdtemp(dir=folder, prefix=f".{dest.name}.{_owner_tag()}.", suffix=".partial")
        shutil.copytree(staged, partial, dirs_exist_ok=True)
        if dest.exists():
            aside = tempfile.mkdtemp(dir=folder, prefix=f".{dest.name}.{_owner_tag()}.", suffix=".partial")
            os.rmdir(aside)
            os.replace(dest, aside)
        os.replace(partial, dest)
        partial = None
        _fsync_dir(folder)
    except OSError as exc:
        raise UsageError(
            f"cannot write {dest}: {exc.strerror or exc}",
            where=_INSTALL,
            hint=f"check the folder's permissions and free space; {_NOTHING}",
        ) from None
    finally:
        for left in (partial, aside):
            if left is not None:
                shutil.rmtree(left, ignore_errors=True)


def _record(cache: ManifestCache, desc: Path, outcome: Outcome) -> None:
    try:
        cache.put(desc, descriptor_key(desc), outcome)
    except OSError:
        pass  # the next listing probes it again


def remove_tree(target: Path) -> None:
    """Remove an installed plugin directory: renamed aside first (discovery skips
    dot-names), so no half-removed plugin is ever listed."""
    aside = target.with_name(f".{target.name}.{_owner_tag()}.removing.partial")
    os.replace(target, aside)
    shutil.rmtree(aside, ignore_errors=True)
