"""``hm plugin check PATH``: a conformance suite for one plugin library.

Each check runs in its own child process, so a plugin that crashes or hangs fails a
check instead of taking hm down. :func:`run_suite` runs them and returns a
:class:`SuiteReport`; :mod:`hm.check.report` renders it for people and machines.

Modules: ``suite`` (parent: order, child processes, verdicts on crashes and hangs),
``checks`` (child: one check, one JSON report line), ``exercise`` (sample inputs and
calls), ``report`` (human and JSON output).
"""

from __future__ import annotations

from hm.check.report import render_human, to_json
from hm.check.suite import DEFAULT_TIMEOUT, CheckResult, SuiteReport, run_suite

__all__ = ["DEFAULT_TIMEOUT", "CheckResult", "SuiteReport", "render_human", "run_suite", "to_json"]
