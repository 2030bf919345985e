"""Size and shape limits on what a plugin sends hm, in one place.

A plugin is trusted to be correct, not to be small: every message it returns or
publishes is bounded before hm decodes or keeps it, so a buggy or hostile plugin
fails one call with a named cause instead of exhausting hm's memory or stack.
docs/plugin-authors.md ("Limits") documents each number.
"""

from __future__ import annotations

from typing import Final

#: Largest manifest a plugin may return (``vtable.manifest``).
MAX_MANIFEST_BYTES: Final = 1 << 20
#: Largest message of any other kind a plugin may return or publish, and the
#: largest frame of the worker protocol.
MAX_MESSAGE_BYTES: Final = 64 << 20
#: Deepest nesting of maps and arrays accepted in a plugin's free-form data
#: (``PluginEvent.data``).
MAX_NESTING: Final = 32
#: Largest file ``fs_read_config`` returns.
MAX_CONFIG_BYTES: Final = 16 << 20
#: Largest key and value ``kv_set`` stores.
MAX_KV_KEY_BYTES: Final = 4 << 10
MAX_KV_VALUE_BYTES: Final = 16 << 20


def nesting_depth(value: object, limit: int = MAX_NESTING) -> int:
    """The nesting depth of ``value`` (scalars 0, ``{}`` 1…), counted up to ``limit + 1``.

    Iterative, so a hostile document cannot exhaust Python's stack here.
    """
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: object = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                return deepest
        stack.extend((child, depth) for child in children)  # type: ignore[attr-defined]
    return deepest
