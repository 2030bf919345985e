"""What one conformance check found, and the line a check process reports it with.

Shared by both ends: the check process (:mod:`hm.check.checks`) writes one
:class:`CheckResult` as a JSON line; the suite (:mod:`hm.check.suite`) reads it
back, or makes a failed result itself when the process crashed, hung or wrote
garbage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = ["MARKER", "CheckResult", "Status", "parse_report_line"]

Status = Literal["passed", "failed", "skipped"]

#: Prefix of the progress lines a check process writes to stderr before each step
#: that runs plugin code, so a crash or a hang can be reported "during" that step.
MARKER: Final = "hm-check: "


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the report: a check's name, its status and what it saw."""

    name: str
    status: Status
    detail: str
    #: Only from the ``manifest`` check: the plugin's name and its capability labels.
    plugin: str | None = None
    capabilities: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The ``checks[]`` entry of ``--format json``."""
        return {"name": self.name, "status": self.status, "detail": self.detail}

    def to_report_line(self) -> bytes:
        """The one line a check process writes on its private stdout."""
        doc: dict[str, Any] = {"name": self.name, "status": self.status, "detail": self.detail}
        if self.plugin is not None:
            doc["plugin"] = self.plugin
            doc["capabilities"] = self.capabilities
        return (json.dumps(doc, separators=(",", ":")) + "\n").encode()


def parse_report_line(out: bytes, name: str) -> CheckResult | None:
    """The result in a check process's stdout, or ``None`` if it is not exactly one
    well-formed report line about check ``name``."""
    lines = out.decode(errors="replace").strip().splitlines()
    if len(lines) != 1:
        return None
    try:
        doc = json.loads(lines[0])
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("name") != name:
        return None
    status, detail = doc.get("status"), doc.get("detail")
    if status not in ("passed", "failed") or not isinstance(detail, str):
        return None
    plugin = doc.get("plugin")
    caps = doc.get("capabilities", [])
    if plugin is not None and not isinstance(plugin, str):
        return None
    if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
        return None
    return CheckResult(name, status, detail, plugin=plugin, capabilities=caps)
