"""Text from plugins and file names, made safe for a terminal.

A plugin's name, message or stderr line, or a file name found on disk, may hold
control characters; written raw they can move the cursor, recolour the screen or
forge a line that looks like hm's own (``\\rwarning: …``). :func:`printable`
spells every C0/C1 control (and DEL) as an escape, keeping tabs.
"""

from __future__ import annotations

import re

__all__ = ["printable", "printable_lines"]

_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
#: Colour and style sequences (SGR, ``ESC [ … m``), the only escapes step output keeps.
_SGR = re.compile("\x1b\\[[0-9;]*m")


def _spell(match: re.Match[str]) -> str:
    code = ord(match.group())
    return {10: "\\n", 13: "\\r"}.get(code, f"\\x{code:02x}")


_CONTROLS_BUT_NEWLINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable_lines(text: str) -> str:
    """Like :func:`printable`, but keeps line breaks (hm's own multi-line messages)."""
    if _CONTROLS_BUT_NEWLINE.search(text) is None:
        return text
    return _CONTROLS_BUT_NEWLINE.sub(_spell, text)


def printable(text: str, *, keep_colour: bool = False) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\r``, ``\\n``).

    :param keep_colour: keep colour sequences (for a step's own output on a terminal).
    """
    if _CONTROLS.search(text) is None:
        return text
    if keep_colour:
        parts = _SGR.split(text)
        colours = _SGR.findall(text)
        out = [_CONTROLS.sub(_spell, parts[0])]
        for colour, part in zip(colours, parts[1:], strict=True):
            out.append(colour)
            out.append(_CONTROLS.sub(_spell, part))
        return "".join(out)
    return _CONTROLS.sub(_spell, text)
