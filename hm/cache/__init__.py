"""hm's step cache: a step with ``cache: {policy: read|read_write}`` whose inputs
have not changed is not run again; its workspace and log come back instead.

The pieces, each in its own module:

* ``_key``: what a cache key digests (:class:`KeyParts`, :func:`cache_key`);
* ``_tree``: a workspace as sorted nodes, and their digest (:func:`scan`,
  :func:`archive_nodes`, :func:`tree_digest`);
* ``_entry``: a stored step and its file format (:class:`Entry`);
* ``_store``: the content-addressed store on disk, its atomic writes and LRU
  eviction (:class:`CacheStore`);
* ``_workspace``: a workspace into the store and back (:func:`snapshot`,
  :func:`restore`);
* ``_config``: where the cache is and how big it may grow (:class:`CacheConfig`).

:mod:`hm.run.step_cache` uses them around each step of a run; ``hm cache``
(:mod:`hm.cli.cache_cmd`) lists, prunes and clears the store.
"""

from __future__ import annotations

from hm.cache._config import DEFAULT_MAX_SIZE, CacheConfig, format_size, parse_size
from hm.cache._entry import CorruptEntry, Entry, decode_log, encode_log
from hm.cache._key import KeyParts, cache_key
from hm.cache._store import GRACE_SECONDS, CacheStore, EntryInfo, EvictResult
from hm.cache._tree import (
    FileNode,
    Unsupported,
    archive_nodes,
    copy_hm_files,
    extract_hm_files,
    scan,
    tree_digest,
)
from hm.cache._workspace import Snapshot, TooBig, clear_dir, restore, snapshot

__all__ = [
    "DEFAULT_MAX_SIZE",
    "GRACE_SECONDS",
    "CacheConfig",
    "CacheStore",
    "CorruptEntry",
    "Entry",
    "EntryInfo",
    "EvictResult",
    "FileNode",
    "KeyParts",
    "Snapshot",
    "TooBig",
    "Unsupported",
    "archive_nodes",
    "cache_key",
    "clear_dir",
    "copy_hm_files",
    "decode_log",
    "encode_log",
    "extract_hm_files",
    "format_size",
    "parse_size",
    "restore",
    "scan",
    "snapshot",
    "tree_digest",
]
