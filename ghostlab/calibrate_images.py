"""The calibration image list, ``artifacts/calibration_images.json``: which images 02 drew.

02 draws the class-balanced set once (``data.calibration_set``), splits it into the range set
(``calibration_indices``/``calibration_files``) and the hold-out (``holdout_indices``/
``holdout_files``), and records both here: row indices into the image set, file names relative
to its folder (``source``; ``split`` says whether that is the evaluation set or
data.calibration_root). 04 reads this list to leave calibration images out of the accuracy
instead of drawing them again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .jsonio import read_json, write_json

FILE = "calibration_images.json"


def _files(images: Any, indices: np.ndarray) -> list[str]:
    files = getattr(images, "files", None)
    if files is None:
        return []
    root = Path(getattr(getattr(images, "dataset", None), "root", "") or "")
    out = []
    for i in indices:
        path = Path(files[int(i)])
        try:
            out.append(str(path.relative_to(root)))
        except ValueError:
            out.append(path.name)
    return out


def write(path: str | Path, images: Any, range_set: np.ndarray, holdout: np.ndarray, source: str,
          split: str, seed: int) -> Path:
    """Record the draw: ``range_set`` and ``holdout`` are row indices into ``images``."""
    return write_json(path, {
        "source": source,
        "split": split,  # "eval": drawn from the evaluation set; "calibration": data.calibration_root
        "seed": seed,
        "num_images": int(len(range_set) + len(holdout)),
        "calibration_indices": [int(i) for i in range_set],  # the range set: what the ranges are computed on
        "calibration_files": _files(images, range_set),
        "holdout_indices": [int(i) for i in holdout],  # agreement, sensitivity and auto are measured on these
        "holdout_files": _files(images, holdout),
    })


def read(path: str | Path) -> dict:
    return read_json(path)


def dataset_indices(path: str | Path) -> np.ndarray:
    """Every image 02 used (range set and hold-out), as sorted row indices into its image set."""
    doc = read(path)
    return np.unique(np.asarray(doc["calibration_indices"] + doc["holdout_indices"], dtype=np.int64))
