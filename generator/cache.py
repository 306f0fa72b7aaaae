"""Rebuilds skip what did not change: a content hash per problem file, kept in the output folder.

The key of a file hashes its bytes, the options that shape its outputs
(formats, sheets), the templates (built-in and the instructor's) and
stepgen's own code and version.  A file whose key matches the one recorded in
``<out>/.stepgen-cache.json``, and whose recorded outputs all exist, is
skipped.  ``--force`` ignores the cache.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from . import __version__
from .files import FileRefused, hash_file, read_limited, write_atomic
from .spec import MAX_FILE_BYTES

CACHE_NAME = ".stepgen-cache.json"
COMBINED = "(combined)"


def _tree_hash(folder: Path | None, pattern: str) -> str:
    h = hashlib.sha256()
    if folder is not None and folder.is_dir():
        for f in sorted(folder.rglob(pattern)):
            h.update(str(f.relative_to(folder)).encode())
            hash_file(h, f, follow_links=True)      # regular files only (no FIFO), read in chunks
    return h.hexdigest()


@lru_cache(maxsize=4)
def _environment_hash(templates: str | None) -> str:
    from .render.templates import builtin_dir
    h = hashlib.sha256(__version__.encode())
    h.update(_tree_hash(Path(__file__).parent, "*.py").encode())
    h.update(_tree_hash(builtin_dir(), "*").encode())
    h.update(_tree_hash(Path(templates) if templates else None, "*").encode())
    return h.hexdigest()


def keys(files: list[str], opts) -> dict[str, str]:
    env = _environment_hash(opts.templates)
    out = {}
    for f in files:
        h = hashlib.sha256(env.encode())
        h.update(repr((opts.formats, opts.sheets, opts.timeout)).encode())
        try:
            h.update(read_limited(f, MAX_FILE_BYTES))   # checked first: no FIFO, link or huge file is read
        except FileRefused:
            continue                                   # loading reports it
        out[f] = h.hexdigest()
    return out


def load(out: Path) -> dict:
    try:
        data = json.loads(read_limited(out / CACHE_NAME, 64 * 1024 * 1024))
        return data if isinstance(data, dict) else {}
    except (FileRefused, ValueError, RecursionError):
        return {}


def hit(out: Path, cached: dict, path: str, key: str) -> dict | None:
    """The cached entry of ``path`` if its key matches and its outputs are all there."""
    entry = cached.get(path)
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    if not all((out / name).exists() for name in entry.get("outputs", [])):
        return None
    return entry


def save(out: Path, cached: dict, fresh: dict[str, dict], drop=()) -> None:
    """Record ``fresh`` entries; forget those in ``drop`` (files that failed, or whose outputs
    another file has written since)."""
    merged = {k: v for k, v in cached.items() if k not in set(drop)}
    merged.update(fresh)
    write_atomic(out / CACHE_NAME, (json.dumps(merged, indent=1, sort_keys=True) + "\n").encode())


def combined_key(keys: dict[str, str], files: list[str], opts) -> str:
    h = hashlib.sha256(repr((opts.combine, opts.title)).encode())
    for f in files:
        h.update(keys.get(f, "missing").encode())
    return h.hexdigest()
