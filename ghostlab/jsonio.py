"""JSON in and out of run folders: atomic writes, numpy/Path values made plain.

Compute modules import this (not ``runfolder``, which is notebook plumbing).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def jsonable(value: Any) -> Any:
    """numpy scalars and arrays, Paths and tuples -> plain JSON types."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (temp file + rename): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(jsonable(data), indent=2, allow_nan=True))
    os.replace(tmp, path)
    return path


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def read_json_dict(path: str | Path) -> dict | None:
    """A JSON object from a file that may be missing, unreadable or still being written: None then
    (and for anything that is not an object). For reports that show whatever a run has so far."""
    try:
        doc = read_json(path)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
