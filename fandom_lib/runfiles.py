"""The files a target's run folder holds, written atomically (temporary name, then moved into place)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

PREPARED = "prepared.parquet"  # the validated rows the analysis uses (the table's own index)
TRUTH = "truth.parquet"  # true contributions, only for synthetic data
PREP_INFO = "prep.json"  # source, row counts, repairs, missing state columns
MODEL = "model.pt"  # trained weights, scaling, settings, split, history
TRAINING_INFO = "training.json"  # settings, history, quality gate
CONTRIBUTIONS = "contributions.parquet"  # one row per analysed input row (default method)
CONTRIBUTIONS_REFERENCE = "contributions_reference.parquet"  # the fixed reference order, for comparison
SUMMARY = "summary.json"  # parameters, row counts, quality, mean contribution per action


def run_file(run_dir: str | Path, name: str) -> Path:
    """Path of one artefact in a run folder."""
    return Path(run_dir) / name


def _jsonable(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_path(path: str | Path, suffix: str = ".part") -> Path:
    """A temporary sibling path to write to before moving into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: Path, path: str | Path) -> Path:
    """Move a finished temporary file into place, readable like any file the user makes."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)
    return Path(path)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write through `write(tmp)` to a temporary sibling, then move it into place; never leave a part file."""
    tmp = atomic_path(path)
    try:
        write(tmp)
        return publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write JSON atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(json.dumps(_jsonable(obj), indent=2)))


def read_json(path: str | Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a parquet file atomically, keeping the index."""
    return write_atomic(path, lambda tmp: df.to_parquet(tmp, index=True))
