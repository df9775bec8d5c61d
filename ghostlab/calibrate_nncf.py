"""int8 with OpenVINO's own quantizer: NNCF post-training quantization of the fp32 export.

What it does, in order (``quantize_run``, called from notebook 02 after ORT's variants):

1. reads ``model.onnx`` into OpenVINO (``Core.read_model``; dynamic shapes kept);
2. takes exactly the calibration images ORT's variants set their ranges on: the range set of 02's
   image list, ``artifacts/calibration_images.json`` (``calibrate_images``; the hold-out is left out);
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


def calibration_image_indices(run: Any) -> np.ndarray:
    """Row indices of the images ORT's variants set their ranges on (the range set of 02's image
    list, ``calibrate_images.FILE``), into the image set 02 drew them from."""
    from . import calibrate_images

    doc = calibrate_images.read(run.require(calibrate_images.FILE, "02_calibrate"))
    return np.asarray(doc["calibration_indices"], dtype=np.int64)


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
    images, _ = data.calibration_set(p, data.preprocess_for(p), show_progress=False)  # the set 02 drew from
    indices = calibration_image_indices(run)
    result = {"images": int(len(indices)), "source": "the range set of calibration_images.json (as ORT's variants)",
              "preset": "performance",
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
