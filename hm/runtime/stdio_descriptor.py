"""``NAME.plugin.toml``: the descriptor of a plugin that is an executable (docs/stdio-protocol.md).

A descriptor says how to start the plugin and which protocol it speaks::

    command = ["python3", "plugin.py"]   # argv; files of the descriptor's folder by their names
    protocol = "1.0"                     # the stdio protocol version it was written for
    [env]                                # optional: extra environment of the process
    LOG = "1"

This module owns reading a descriptor (no process is started: listing needs
none) and the descriptor's *identity* for the manifest cache: the descriptor
and every file its command names in its folder (the script), so editing the
script is a change on disk just as rebuilding a library is.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from hm.errors import PluginLoadError
from hm.runtime.manifest_cache import FileKey

__all__ = ["DESCRIPTOR_SUFFIX", "Descriptor", "descriptor_key", "is_descriptor", "read_descriptor", "stem_of"]

#: What a descriptor's file name ends with.
DESCRIPTOR_SUFFIX = ".plugin.toml"
_DOCS = "see docs/stdio-protocol.md, 'The descriptor'"
_KEYS = {"command", "protocol", "env"}


def is_descriptor(path: Path) -> bool:
    """Whether ``path`` names a stdio plugin's descriptor (by its name only)."""
    return path.name.endswith(DESCRIPTOR_SUFFIX) and len(path.name) > len(DESCRIPTOR_SUFFIX)


def stem_of(path: Path) -> str:
    """``hello`` for ``hello.plugin.toml``; a library's stem otherwise."""
    return path.name[: -len(DESCRIPTOR_SUFFIX)] if is_descriptor(path) else path.stem


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A parsed descriptor. ``argv`` is the command with its program resolved."""

    path: Path
    command: tuple[str, ...]
    protocol: tuple[int, int]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        """The plugin's folder: where its files are (``HM_PLUGIN_DIR`` of its process)."""
        return self.path.parent

    def argv(self) -> list[str]:
        """The command to run: its program found, and each later word that names a
        file of the plugin's folder made absolute. The process starts in hm's own
        working directory, as a native plugin runs in hm's process, so a command's
        relative paths mean what the user meant (``hm wc README.md``).

        :raises PluginLoadError: the program is missing or not executable.
        """
        args = [str((self.folder / a).absolute()) if _is_file(self.folder / a) else a for a in self.command[1:]]
        program = self.command[0]
        if "/" in program:
            exe = (self.folder / program).absolute()
            if not exe.is_file():
                raise self.error(f"its command {program!r} does not exist ({exe})", "check `command` in the descriptor")
            if not os.access(exe, os.X_OK):
                raise self.error(
                    f"its command {program!r} is not executable ({exe})",
                    f"make it executable (`chmod +x {exe}`) or start it through an interpreter in `command`",
                )
            return [str(exe), *args]
        found = shutil.which(program)
        if found is None:
            raise self.error(
                f"its command {program!r} is not on PATH", f"install {program!r} or give its full path in `command`"
            )
        return [found, *args]

    def error(self, what: str, hint: str, *, where: str | None = None) -> PluginLoadError:
        return PluginLoadError(
            what, path=str(self.path), plugin=stem_of(self.path), where=where, hint=hint, stage="open"
        )


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _toml_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> PluginLoadError:
    match = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
    if match:
        where = f"{path}:{match.group(1)}"
    elif "(at end of document)" in str(exc):  # an unclosed array or string: blame the last line
        where = f"{path}:{max(1, len(text.splitlines()))}"
    else:
        where = str(path)
    what = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
    return PluginLoadError(
        f"is not valid TOML: {what}", path=str(path), where=where, hint=f"fix the file; {_DOCS}", stage="descriptor"
    )


def _line_of(text: str, key: str) -> int | None:
    """The line a top-level ``key`` is set on, for ``file:line`` in messages."""
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(rf"\s*{re.escape(key)}\s*=", line) or re.match(rf"\s*\[\s*{re.escape(key)}\s*\]", line):
            return number
    return None


def read_descriptor(path: Path) -> Descriptor:
    """Parse the descriptor at ``path``.

    :raises PluginLoadError: it cannot be read or is malformed; ``where`` is
        ``file:line`` when a line is to blame.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PluginLoadError(
            f"cannot be read: {exc}", path=str(path), hint="check its permissions", stage="descriptor"
        ) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(path, text, exc) from None

    def bad(key: str, what: str) -> PluginLoadError:
        line = _line_of(text, key)
        where = f"{path}:{line}" if line else str(path)
        return PluginLoadError(what, path=str(path), where=where, hint=_DOCS, stage="descriptor")

    unknown = sorted(set(doc) - _KEYS)
    if unknown:
        raise bad(unknown[0], f"has unknown setting(s) {', '.join(unknown)} (known: command, protocol, env)")
    command = doc.get("command")
    if command is None:
        raise PluginLoadError(
            "has no `command` (the program to run, as a list of strings)",
            path=str(path),
            hint=f'add e.g. command = ["python3", "plugin.py"]; {_DOCS}',
            stage="descriptor",
        )
    if not isinstance(command, list) or not command or not all(isinstance(a, str) and a for a in command):
        raise bad("command", "`command` must be a non-empty list of non-empty strings")
    version = doc.get("protocol")
    if not isinstance(version, str) or not re.fullmatch(r"\d{1,4}\.\d{1,4}", version):
        raise bad("protocol", '`protocol` must be the protocol version as "MAJOR.MINOR", e.g. "1.0"')
    major, minor = (int(part) for part in version.split("."))
    env = doc.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise bad("env", "`env` must be a table of strings")
    return Descriptor(path, tuple(command), (major, minor), dict(env))


def _named_files(path: Path) -> list[Path]:
    """The files in the descriptor's folder its command names (the script and program)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    command = doc.get("command")
    if not isinstance(command, list):
        return []
    files = []
    for arg in command:
        if isinstance(arg, str) and arg and not arg.startswith("-"):
            candidate = path.parent / arg
            try:
                if candidate.is_file():
                    files.append(candidate)
            except (OSError, ValueError):
                continue
    return files


def descriptor_key(path: Path) -> FileKey:
    """The identity of a stdio plugin on disk: its descriptor and the files its
    command names, combined (largest mtime, summed size, one hash over all).

    :raises OSError: the descriptor cannot be read.
    """
    own = FileKey.of(path)
    named = [FileKey.of(p) for p in _named_files(path) if p.resolve() != path.resolve()]
    if not named:
        return own
    digest = hashlib.sha256(own.sha256.encode())
    for key in named:
        digest.update(key.sha256.encode())
    return FileKey(
        own.size + sum(k.size for k in named), max(own.mtime_ns, *(k.mtime_ns for k in named)), digest.hexdigest()
    )
