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
