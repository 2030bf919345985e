"""The cache key of a step: one SHA-256 over everything its result depends on.

What goes in (:class:`KeyParts`): the runner and the plugin that provides it
(name and version), the image's id, the step's key, ``cmd``, environment (the
pipeline's and the step's) and ``runner_args``, the tree digest of the
workspace it starts from, and the user's own ``cache.key``. They are encoded
as JSON with sorted keys, so the key does not depend on the order a pipeline
wrote its ``env`` or ``runner_args`` in.

Not in it: the step's label and timeout (they change nothing it makes), the
run id, and the environment of the machine hm runs on (a shell step sees it:
name what matters in the step's ``env`` or in ``cache.key``).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import msgspec

__all__ = ["KEY_FORMAT", "KeyParts", "cache_key"]

#: Bumped when what goes into a key changes, so old entries stop matching.
KEY_FORMAT: Final = 1


class KeyParts(msgspec.Struct, kw_only=True, frozen=True):
    runner: str
    plugin: str
    plugin_version: str
    image_id: str | None
    step_key: str
    cmd: str
    env: dict[str, str]
    runner_args: dict[str, Any]
    input_tree: str
    user_key: str | None
    format: int = KEY_FORMAT


_encode = msgspec.json.Encoder(order="sorted").encode


def cache_key(parts: KeyParts) -> str:
    """The entry name for ``parts``: 64 hex digits."""
    return hashlib.sha256(b"hm-step-key\n" + _encode(parts)).hexdigest()
