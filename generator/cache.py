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

CACHE_NAME = ".stepgen-cache.json"
COMBINED = "(combined)"


def _tree_hash(folder: Path | None, pattern: str) -> str:
    h = hashlib.sha256()
    if folder is not None and folder.is_dir():
        for f in sorted(folder.rglob(pattern)):
            if f.is_file():
                h.update(str(f.relative_to(folder)).encode())
                h.update(f.read_bytes())
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
            h.update(Path(f).read_bytes())
        except OSError:
            continue
        out[f] = h.hexdigest()
    return out


def load(out: Path) -> dict:
    try:
        data = json.loads((out / CACHE_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def hit(out: Path, cached: dict, path: str, key: str) -> dict | None:
    """The cached entry of ``path`` if its key matches and its outputs are all there."""
    entry = cached.get(path)
    if not isinstance(entry, dict) or entry.get("key") != key:
        return None
    if not all((out / name).exists() for name in entry.get("outputs", [])):
        return None
    return entry


def save(out: Path, cached: dict, fresh: dict[str, dict]) -> None:
    from .build import write_atomic
    merged = dict(cached)
    merged.update(fresh)
    write_atomic(out / CACHE_NAME, (json.dumps(merged, indent=1, sort_keys=True) + "\n").encode())


def combined_key(keys: dict[str, str], files: list[str], opts) -> str:
    h = hashlib.sha256(repr((opts.combine, opts.title)).encode())
    for f in files:
        h.update(keys.get(f, "missing").encode())
    return h.hexdigest()
