"""Decoding and validating a plugin's manifest.

msgspec checks the schema; this module checks what a schema cannot: the name
and runner/verb spellings, the semver version, at least one capability, no
duplicate verbs or arguments, argument defaults of the argument's type, and the
optional ``requires_hm`` range.
"""

from __future__ import annotations

import re

import msgspec

from hm import __version__
from hm.errors import PluginLoadError
from hm_plugin_sdk.protocol import (
    ArgSpec,
    LifecycleHookCapability,
    PluginManifest,
    StepExecutorCapability,
    SubcommandCapability,
)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_WORD = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_ARG = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_decoder = msgspec.msgpack.Decoder(PluginManifest)
_HINT = "fix the plugin's manifest (see docs/plugin-authors.md, 'The manifest') and rebuild it"


def decode_manifest(data: bytes, *, path: str) -> PluginManifest:
    """Decode and validate manifest bytes returned by a plugin.

    :raises PluginLoadError: naming the field that is wrong.
    """
    try:
        msgspec.msgpack.decode(data)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise PluginLoadError(f"its manifest is not valid msgpack ({exc})", path=path, hint=_HINT) from None
    try:
        manifest = _decoder.decode(data)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise PluginLoadError(f"its manifest does not match the schema: {exc}", path=path, hint=_HINT) from None
    validate_manifest(manifest, path=path)
    return manifest


def validate_manifest(m: PluginManifest, *, path: str) -> None:
    problems = list(_problems(m))
    if problems:
        raise PluginLoadError(
            f"its manifest is invalid: {'; '.join(problems)}", path=path, plugin=_safe_name(m), hint=_HINT
        )
    if m.requires_hm:
        _check_requires(m, path)


def _safe_name(m: PluginManifest) -> str | None:
    return m.name if _NAME.match(m.name) else None


def _problems(m: PluginManifest):
    if not _NAME.match(m.name):
        yield f"name {m.name!r} must be lowercase letters, digits, '-', '_' or '.'"
    try:
        import semver  # only where a manifest is validated: listing cached ones needs none

        semver.Version.parse(m.version)
    except ValueError:
        yield f"version {m.version!r} is not a semantic version like 1.2.3"
    if not m.capabilities:
        yield "it lists no capabilities"
    verbs: set[tuple[str, ...]] = set()
    for cap in m.capabilities:
        if isinstance(cap, StepExecutorCapability):
            if not cap.runners:
                yield "a step_executor capability lists no runners"
            for r in cap.runners:
                if not _NAME.match(r):
                    yield f"runner name {r!r} must be lowercase letters, digits, '-', '_' or '.'"
            yield from _runner_arg_problems(cap)
        elif isinstance(cap, SubcommandCapability):
            path = tuple(cap.verb)
            if not path or not all(_WORD.match(w) for w in path):
                yield f"verb {' '.join(path) or '(empty)'!r} must be lowercase words"
            if path in verbs:
                yield f"verb {' '.join(path)!r} is declared twice"
            verbs.add(path)
            names = [a.name for a in cap.args]
            for a in cap.args:
                if not _ARG.match(a.name):
                    yield f"argument {a.name!r} of {' '.join(path)!r} must be a lowercase identifier"
                wrong_default = _default_problem(a, " ".join(path))
                if wrong_default:
                    yield wrong_default
            if len(set(names)) != len(names):
                yield f"verb {' '.join(path)!r} declares an argument twice"
        elif isinstance(cap, LifecycleHookCapability):
            if cap.timeout_ms <= 0:
                yield f"a {cap.phase} hook has timeout_ms {cap.timeout_ms}; it must be positive"


#: ArgSpec.type -> the Python type its default must have (bool is not an int here).
_DEFAULT_TYPES: dict[str, type] = {"string": str, "int": int, "bool": bool}
_A_TYPE = {str: "a string", int: "an int", bool: "a bool"}


def _default_problem(arg: ArgSpec, verb: str) -> str | None:
    """Why ``arg.default`` cannot be a value of the argument, or None.

    The schema allows any of str, int, bool or nil; without this check hm would hand
    a mistyped default to the plugin as if the user had typed it (an int option
    whose default is "one"). A flag is a bool whatever its ``type``.
    """
    if arg.default is None:
        return None
    want = "bool" if arg.kind == "flag" else arg.type
    value = arg.default
    if isinstance(value, _DEFAULT_TYPES[want]) and (want == "bool" or not isinstance(value, bool)):
        return None
    if arg.kind == "flag":
        what = "a flag"
    else:
        kind = "argument" if arg.kind == "positional" else arg.kind
        what = f"{'an' if arg.type == 'int' else 'a'} {arg.type} {kind}"
    return (
        f"argument {arg.name!r} of {verb!r} is {what}, but its default {value!r} is "
        f"{_A_TYPE.get(type(value), type(value).__name__)}"
    )


def _runner_arg_problems(cap: StepExecutorCapability):
    """A runner_args declaration hm can check pipelines against."""
    names: set[str] = set()
    for spec in cap.runner_args or []:
        if not spec.name or spec.name in names:
            yield f"runner_args {spec.name!r} is declared twice or has no name"
        names.add(spec.name)
        if not spec.types:
            yield f"runner_args {spec.name!r} lists no types"
        if (spec.choices or spec.pattern is not None) and "string" not in spec.types:
            yield f"runner_args {spec.name!r} has choices or a pattern but does not accept strings"
        if spec.pattern is not None:
            try:
                re.compile(spec.pattern)
            except re.error as exc:
                yield f"runner_args {spec.name!r} has an invalid pattern {spec.pattern!r} ({exc})"


def _check_requires(m: PluginManifest, path: str) -> None:
    import semver

    current = semver.Version.parse(__version__)
    try:
        ok = all(current.match(part.strip()) for part in m.requires_hm.split(",") if part.strip())  # type: ignore[union-attr]
    except ValueError:
        raise PluginLoadError(
            f"requires_hm {m.requires_hm!r} is not a semver range like '>=0.1.0,<2.0.0'",
            path=path,
            plugin=m.name,
            hint=_HINT,
        ) from None
    if not ok:
        raise PluginLoadError(
            f"requires hm {m.requires_hm} but this is hm {__version__}",
            path=path,
            plugin=m.name,
            hint=f"upgrade hm, or install a version of {m.name} made for hm {__version__}",
        )
