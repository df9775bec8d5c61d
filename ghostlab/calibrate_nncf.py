"""int8 with OpenVINO's own quantizer: NNCF post-training quantization of the fp32 export.

What it does, in order (``quantize_run``, called from notebook 02 after ORT's variants):

1. reads ``model.onnx`` into OpenVINO (``Core.read_model``; dynamic shapes kept);
2. takes exactly the calibration images ORT's variants set their ranges on
   (``calibration_image_indices``: 02's image list, the same class-balanced draw minus the hold-out);
3. for each of ``VARIANTS`` runs ``nncf.quantize`` (performance preset: symmetric activations, the
   CPU plugin's fast path), once over the whole network and once with the depthwise convolutions
   (OpenVINO's ``GroupConvolution``: GhostNet's cheap operations) left in float;
4. saves each as OpenVINO IR, ``artifacts/<name>.xml`` + ``.bin`` (names in ``runtimes.NNCF_VARIANTS``,
   where ``runtimes.run_candidates`` finds them), and ``artifacts/calibration_nncf.json``::

    {"images": int, "source": str, "preset": "performance",
     "variants": {"<name>": {"ignored_types": [str], "fake_quantize": int, "group_convolutions": int,
                             "size_bytes": int, "seconds": float, "xml": str}}}
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from .runtimes import NNCF_VARIANTS

# name -> OpenVINO op types NNCF leaves in float
VARIANTS: dict[str, list[str]] = {"ov_nncf": [], "ov_nncf_nodw": ["GroupConvolution"]}
assert set(VARIANTS) == set(NNCF_VARIANTS)
IMAGE_LIST = "calibration_images.json"


def calibration_image_indices(run: Any, labels: np.ndarray, drawn: np.ndarray) -> tuple[np.ndarray, str]:
    """Dataset indices of the images ORT's variants calibrated on, and where that came from.

    02 writes them to ``artifacts/calibration_images.json`` (key ``calibration_indices``, or
    ``indices``); without that file they are chosen here the way 02 chooses them: ``drawn`` (the
    class-balanced seeded draw of ``data.calibration_set``) minus ``calibrate.split_holdout``'s
    hold-out. ``labels``: the labels of the split the images come from.
    """
    from .jsonio import read_json

    path = run.artifact(IMAGE_LIST)
    if path.exists():
        doc = read_json(path)
        for key in ("calibration_indices", "indices"):
            if isinstance(doc, dict) and key in doc:
                return np.asarray(doc[key], dtype=np.int64), IMAGE_LIST
    from .calibrate import split_holdout

    c = run.params.calibrate
    drawn = np.asarray(drawn, dtype=np.int64)
    rest, _ = split_holdout(np.asarray(labels)[drawn], c.holdout_images, c.seed)
    return drawn[rest], "chosen as 02 chooses them (no calibration_images.json)"


def quantize(model_path: str | Path, images: Any, indices: np.ndarray, out_dir: str | Path,
             variants: dict[str, list[str]] | None = None) -> dict:
    """NNCF int8 IR of ``model_path`` per variant, calibrated on ``images.normalized([i])`` for each
    index (one image per step); returns the ``calibration_nncf.json`` variants (module docstring)."""
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    model = ov.Core().read_model(str(model_path))
    dataset = nncf.Dataset([int(i) for i in indices], lambda i: images.normalized(np.asarray([i])))
    out = {}
    for name, types in (variants or VARIANTS).items():
        t0 = time.perf_counter()
        quantized = nncf.quantize(model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE,
                                  subset_size=len(indices),
                                  ignored_scope=nncf.IgnoredScope(types=list(types)) if types else None)
        xml = Path(out_dir) / f"{name}.xml"
        ov.save_model(quantized, str(xml))  # weights compressed to int8 in the .bin
        ops = [op.get_type_name() for op in quantized.get_ops()]
        out[name] = {"ignored_types": list(types), "fake_quantize": ops.count("FakeQuantize"),
                     "group_convolutions": ops.count("GroupConvolution"),
                     "size_bytes": xml.stat().st_size + xml.with_suffix(".bin").stat().st_size,
                     "seconds": time.perf_counter() - t0, "xml": xml.name}
    return out


def quantize_run(run: Any) -> dict:
    """Notebook 02: the NNCF variants of the run's ``model.onnx``; writes the IR files and
    ``artifacts/calibration_nncf.json`` and returns the latter."""
    from . import data
    from .jsonio import write_json

    p = run.params
    model = run.require("model.onnx", "01_export")
    images, drawn = data.calibration_set(p, data.preprocess_for(p), show_progress=False)
    indices, source = calibration_image_indices(run, np.asarray(images.labels), drawn)
    result = {"images": int(len(indices)), "source": source, "preset": "performance",
              "variants": quantize(model, images, indices, run.artifacts)}
    write_json(run.artifact("calibration_nncf.json"), result)
    return result


def summary_rows(result: dict) -> list[dict]:
    """One row per NNCF variant: what stayed float, how many quantizers, size, time."""
    return [{"variant": name, "left in float": ", ".join(v["ignored_types"]) or "nothing",
             "quantizers (FakeQuantize)": v["fake_quantize"], "depthwise convs": v["group_convolutions"],
             "size (MB)": v["size_bytes"] / 1e6, "seconds": v["seconds"],
             "calibration images": result["images"]}
            for name, v in result["variants"].items()]
