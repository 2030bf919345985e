"""``hm plugin new``: a plugin project that builds with one command and passes
``hm plugin check`` as generated.

A C project vendors the SDK headers of this hm (``include/``) and builds with
``make``; a Rust project depends on the SDK crate shipped with this hm by path and
builds with ``cargo build --release --offline``; a Python project is a stdio
plugin (``NAME.plugin.toml`` and a script using ``hm_plugin_sdk.stdio``) with
nothing to build. The templates live next to this
module (``c_templates.py``, ``rust_templates.py``).
"""

from __future__ import annotations

import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hm.errors import UsageError
from hm.runtime import plugin_suffix
from hm.scaffold import c_templates, python_templates, rust_templates
from hm_plugin_sdk.abi import INCLUDE_DIR

Lang = Literal["c", "rust", "python"]
CapabilityKind = Literal["executor", "hook", "subcommand"]

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
RUST_SDK_DIR = INCLUDE_DIR.parent / "rust"


@dataclass(frozen=True)
class NewProject:
    path: Path
    files: list[Path]
    build_command: str
    library: str


def create_project(dest: Path, name: str, lang: Lang, capability: CapabilityKind) -> NewProject:
    """Write a new plugin project named ``name`` into ``dest`` (which must not exist or be empty).

    :raises UsageError: a bad name, or a destination that is not empty.
    """
    if not _NAME.match(name):
        raise UsageError(
            f"'{name}' is not a valid plugin name",
            where="hm plugin new",
            hint="use lowercase letters, digits and '-', starting with a letter (it is also the runner or verb name)",
        )
    if dest.exists() and any(dest.iterdir()):
        raise UsageError(
            f"{dest} already exists and is not empty", where="hm plugin new", hint="choose another directory"
        )
    dest.mkdir(parents=True, exist_ok=True)
    values = {"name": name, "ident": name.replace("-", "_"), "type": _camel(name)}
    files: dict[str, str]
    if lang == "c":
        files = {
            "plugin.c": c_templates.source(capability),
            "Makefile": c_templates.MAKEFILE,
            "README.md": c_templates.README,
            ".gitignore": "*.so\n*.dylib\n*.dll\n",
        }
        build, library = "make", f"{name}{plugin_suffix()}"
    elif lang == "python":
        files = {
            f"{name}.plugin.toml": python_templates.DESCRIPTOR,
            "plugin.py": python_templates.source(capability),
            "README.md": python_templates.README,
            ".gitignore": "__pycache__/\n",
        }
        build, library = "", f"{name}.plugin.toml"
    else:
        files = {
            "Cargo.toml": rust_templates.CARGO_TOML,
            "src/lib.rs": rust_templates.source(capability),
            "README.md": rust_templates.README,
            ".gitignore": "/target\n",
        }
        build = "cargo build --release --offline"
        prefix = "" if sys.platform == "win32" else "lib"
        library = f"target/release/{prefix}{values['ident']}{plugin_suffix()}"
        values["sdk_path"] = RUST_SDK_DIR.as_posix()
    values["build"], values["library"] = build, library
    written = []
    for rel, template in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(template, values))
        written.append(path)
    if lang == "c":
        (dest / "include").mkdir(exist_ok=True)
        for header in ("hm_plugin.h", "hm_msgpack.h", "hm_protocol.h"):
            shutil.copyfile(INCLUDE_DIR / header, dest / "include" / header)
            written.append(dest / "include" / header)
    return NewProject(dest, written, build, library)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("-"))


def _fill(template: str, values: dict[str, str]) -> str:
    """``{{key}}`` placeholders; C and Rust braces are left alone."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], template)
