"""Checking a step's ``runner_args`` against what its runner declares.

A runner lists the keys it takes in its manifest (``StepExecutorCapability.runner_args``,
each a :class:`~hm_plugin_sdk.protocol.RunnerArgSpec` with its types, and optional
choices or pattern for strings). Checking them here, before a run starts, turns a
``memory: [1]`` or a misspelt ``netwrok`` into one line and exit 3, instead of a
failure halfway through a run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hm_plugin_sdk.protocol import RunnerArgSpec

__all__ = ["check_runner_args"]

_TYPE_WORDS = {"string": "a string", "int": "an int", "number": "a number", "bool": "a bool"}


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, Sequence):
        return "list"
    return type(value).__name__


def _accepts(kind: str, value: Any) -> bool:
    if isinstance(value, bool):  # a bool is an int in Python, never in a pipeline
        return kind == "bool"
    if kind == "string":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
    return False


def check_runner_args(
    runner: str, args: Mapping[str, Any], specs: Sequence[RunnerArgSpec], *, plugin: str | None = None
) -> list[tuple[str, str]]:
    """Problems of ``args`` for ``runner``, each as ``(problem, hint)``; empty when all is well.

    :param plugin: the name of the plugin that provides ``runner``, for the hint.
    """
    by_name = {spec.name: spec for spec in specs}
    known = ", ".join(sorted(by_name)) or "none"
    hint = f"`hm plugin info {plugin or 'NAME'}` lists the runner_args of runner '{runner}'"
    problems: list[tuple[str, str]] = []
    for key, value in args.items():
        spec = by_name.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            guess = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(
                (f"runner_args '{key}' is not an argument of runner '{runner}' (it takes: {known}){guess}", hint)
            )
            continue
        problem = _check_value(spec, value)
        if problem is not None:
            about = f" ({spec.help})" if spec.help else ""
            problems.append((f"runner_args.{key} {problem}{about}", hint))
    return problems


def _check_value(spec: RunnerArgSpec, value: Any) -> str | None:
    if not any(_accepts(kind, value) for kind in spec.types):
        wanted = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in spec.types)
        return f"must be {wanted}, got {_type_of(value)} {value!r}"
    if isinstance(value, str):
        if spec.choices and value not in spec.choices:
            return f"must be one of {', '.join(spec.choices)}, got {value!r}"
        if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
            return f"{value!r} is not valid"
    return None
