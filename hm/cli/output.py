"""Writing to the user: one rich console per stream, JSON documents, error lines.

Results go to stdout; progress, warnings and errors go to stderr. ``NO_COLOR`` and
non-terminals get plain text (rich honours both).
"""

from __future__ import annotations

import sys
from typing import Any, Protocol

import msgspec
from rich.console import Console

from hm.errors import HmError

stdout = Console(soft_wrap=True, highlight=False)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)


def print_json(doc: Any) -> None:
    """One JSON document on stdout, newline-terminated."""
    sys.stdout.buffer.write(msgspec.json.encode(doc) + b"\n")
    sys.stdout.flush()


def print_error(err: HmError) -> None:
    """``error: WHERE: WHAT; HINT`` on one line of stderr."""
    stderr.print(f"[bold red]error:[/] {_escape(err.one_line())}")


class _OneLine(Protocol):
    def one_line(self) -> str: ...


def print_warning(warning: _OneLine) -> None:
    """``warning: WHERE: WHAT; HINT`` on one line of stderr (an HmError or a validation warning)."""
    stderr.print(f"[yellow]warning:[/] {_escape(warning.one_line())}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
