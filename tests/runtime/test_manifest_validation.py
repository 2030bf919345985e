"""What the schema cannot check: names, semver, capabilities, verbs, requires_hm."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from hm.errors import PluginLoadError
from hm.runtime.manifest import decode_manifest
from hm_plugin_sdk.protocol import (
    ArgSpec,
    PluginManifest,
    StepExecutorCapability,
    SubcommandCapability,
)


def decode(manifest: PluginManifest) -> PluginManifest:
    return decode_manifest(msgspec.msgpack.encode(manifest), path="/p/x.so")


def manifest(**kw: Any) -> PluginManifest:
    base: dict[str, Any] = {"name": "x", "version": "1.0.0", "capabilities": [StepExecutorCapability(runners=["r"])]}
    base.update(kw)
    return PluginManifest(**base)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"version": "1.0"}, "version '1.0' is not a semantic version"),
        ({"name": "Bad Name"}, "name 'Bad Name' must be lowercase"),
        ({"capabilities": []}, "it lists no capabilities"),
        ({"capabilities": [StepExecutorCapability(runners=[])]}, "lists no runners"),
        (
            {"capabilities": [SubcommandCapability(verb=["go"]), SubcommandCapability(verb=["go"])]},
            "verb 'go' is declared twice",
        ),
        (
            {"capabilities": [SubcommandCapability(verb=["go"], args=[ArgSpec(name="a"), ArgSpec(name="a")])]},
            "declares an argument twice",
        ),
    ],
)
def test_invalid_manifests_are_refused_with_the_reason(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(PluginLoadError) as info:
        decode(manifest(**kw))
    assert message in info.value.what
    assert "/p/x.so" in info.value.one_line()


def test_requires_hm_range_that_excludes_this_hm() -> None:
    with pytest.raises(PluginLoadError) as info:
        decode(manifest(requires_hm=">=99.0.0"))
    assert "requires hm >=99.0.0 but this is hm" in info.value.what


def test_requires_hm_range_that_includes_this_hm() -> None:
    assert decode(manifest(requires_hm=">=0.1.0,<1.0.0")).requires_hm == ">=0.1.0,<1.0.0"


def test_requires_hm_that_is_not_a_range() -> None:
    with pytest.raises(PluginLoadError) as info:
        decode(manifest(requires_hm="soon"))
    assert "is not a semver range" in info.value.what


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        (
            ArgSpec(name="times", kind="option", type="int", default="one"),
            "argument 'times' of 'go' is an int option, but its default 'one' is a string",
        ),
        (
            ArgSpec(name="times", kind="option", type="int", default=True),
            "argument 'times' of 'go' is an int option, but its default True is a bool",
        ),
        (
            ArgSpec(name="shout", kind="flag", default="yes"),
            "argument 'shout' of 'go' is a flag, but its default 'yes' is a string",
        ),
        (
            ArgSpec(name="who", type="string", default=3),
            "argument 'who' of 'go' is a string argument, but its default 3 is an int",
        ),
        (
            ArgSpec(name="dry", kind="option", type="bool", default=1),
            "argument 'dry' of 'go' is a bool option, but its default 1 is an int",
        ),
    ],
)
def test_a_default_of_the_wrong_type_is_refused_naming_the_argument(arg: ArgSpec, message: str) -> None:
    with pytest.raises(PluginLoadError) as info:
        decode(manifest(capabilities=[SubcommandCapability(verb=["go"], args=[arg])]))
    assert info.value.what == f"its manifest is invalid: {message}"


@pytest.mark.parametrize(
    "arg",
    [
        ArgSpec(name="n", kind="option", type="int", default=3),
        ArgSpec(name="b", kind="option", type="bool", default=False),
        ArgSpec(name="s", default="x"),
        ArgSpec(name="f", kind="flag", default=True),
        ArgSpec(name="f", kind="flag", type="int", default=False),  # a flag is a bool whatever its type
        ArgSpec(name="n", kind="option", type="int"),
    ],
)
def test_a_default_of_the_arguments_type_is_accepted(arg: ArgSpec) -> None:
    decoded = decode(manifest(capabilities=[SubcommandCapability(verb=["go"], args=[arg])]))
    assert decoded.capabilities[0].args[0].default == arg.default  # type: ignore[union-attr]
