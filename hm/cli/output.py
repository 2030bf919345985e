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
    stderr.print(f"[bold red]error:[/] {_message(err.one_line())}")


class _OneLine(Protocol):
    def one_line(self) -> str: ...


def print_warning(warning: _OneLine) -> None:
    """``warning: WHERE: WHAT; HINT`` on one line of stderr (an HmError or a validation warning)."""
    stderr.print(f"[yellow]warning:[/] {_message(warning.one_line())}")


def safe(text: object) -> str:
    """Text for rich markup that came from a plugin or a file name: control
    characters escaped (they could forge lines or move the cursor), markup
    escaped (square brackets are text)."""
    from rich.markup import escape

    from hm.safe_text import printable

    return escape(printable(str(text)))


_escape = safe


def _message(text: str) -> str:
    """An error or warning: control characters escaped, but its line breaks kept."""
    from rich.markup import escape

    from hm.safe_text import printable_lines

    return escape(printable_lines(text))
