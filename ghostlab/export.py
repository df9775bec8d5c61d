"""torch -> ONNX export, ONNX checks, and torch vs ONNX Runtime parity.

The model is exported with the TorchScript exporter (``dynamo=False``), a dynamic batch
and (by default) dynamic height/width, so the benchmark can always feed the canonical
3x224x224 input whatever size the profile trains at. Names: input ``input``, output ``logits``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ExportError
from .runtimes import Candidate, onnx_candidate, openvino_candidates

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def export_onnx(model: nn.Module, path: str | Path, input_size: int, opset: int = 17,
                dynamic_batch: bool = True, dynamic_spatial: bool = True) -> Path:
    """Export ``model`` (eval mode, re-parameterized if V3) to ``path``; run onnx's full check."""
    import onnx

    from .models import deploy_copy

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = deploy_copy(model)
    dummy = torch.zeros(1, 3, input_size, input_size)
    axes: dict[int, str] = {}
    if dynamic_batch:
        axes[0] = "batch"
    if dynamic_spatial:
        axes.update({2: "height", 3: "width"})
    tmp = path.with_name(f".{path.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape arithmetic are expected
        try:
            torch.onnx.export(
                model, (dummy,), str(tmp), dynamo=False, opset_version=opset,
                input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "batch"} if dynamic_batch else {}},
                do_constant_folding=True,
            )
        except Exception as err:  # the exporter raises many types; one line says where
            tmp.unlink(missing_ok=True)
            raise ExportError(f"ONNX export of the model failed at opset {opset}: "
                              f"{str(err).splitlines()[0][:200]}; try export.opset=17") from None
    try:
        onnx.checker.check_model(str(tmp), full_check=True)
    except onnx.checker.ValidationError as err:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"the exported model fails onnx.checker: {str(err).splitlines()[0][:200]}") from None
    os.replace(tmp, path)
    return path


def parity(model: nn.Module, onnx_path: str | Path, x: np.ndarray) -> dict:
    """Compare torch and ORT logits on the same batch: max abs diff, cosine, top-1 agreement."""
    with torch.inference_mode():
        ref = model.eval()(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()
    got = onnx_candidate("fp32", onnx_path).session()(x)
    a, b = ref.reshape(len(ref), -1).astype(np.float64), got.reshape(len(got), -1).astype(np.float64)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {
        "n": int(len(x)),
        "max_abs_diff": float(np.abs(a - b).max()),
        "cosine_min": float(cos.min()),
        "top1_agreement": float((a.argmax(1) == b.argmax(1)).mean()),
    }


def candidate_parity(candidates: list[Candidate], reference: np.ndarray, x: np.ndarray) -> dict[str, dict]:
    """Each candidate's logits on ``x`` against ``reference`` (ORT fp32's on the same batch):
    max abs diff and top-1 agreement, with the precision it ran at."""
    out = {}
    for c in candidates:
        got = c.session()(x).astype(np.float64)
        some = len(x) > 0
        out[c.name] = {"label": c.label, "runtime": c.runtime, "precision": c.precision,
                       **{k: v for k, v in c.options}, "n": int(len(x)),
                       "max_abs_diff": float(np.abs(got - reference).max()) if some else float("nan"),
                       "top1_agreement": float((got.argmax(1) == reference.argmax(1)).mean()) if some else float("nan")}
    return out


def candidate_parity_rows(result: dict) -> list[dict]:
    """One row per candidate 01 can check (OpenVINO on the export): its logits against ORT fp32's."""
    return [{"candidate": name, "what": r["label"], "max |Δ logit| vs ORT fp32": r["max_abs_diff"],
             "top-1 agreement": r["top1_agreement"], "images": r["n"]}
            for name, r in result.get("candidates", {}).items()]


def op_histogram(onnx_path: str | Path) -> dict[str, int]:
    """How many nodes of each op type the graph has, most common first."""
    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return dict(Counter(node.op_type for node in graph.node).most_common())


def file_size_mb(path: str | Path) -> float:
    return Path(path).stat().st_size / 1e6  # MB = 10^6 bytes, as every report labels it


# ---------------------------------------------------------------- the notebook's step

def run(run) -> dict:
    """Notebook 01: build the model, export it, check parity on real images; writes
    ``artifacts/model.onnx`` and ``artifacts/export.json`` and returns what it wrote."""
    from . import data, models
    from .jsonio import write_json

    p = run.params
    dataset = data.load_dataset(p)
    model = models.load_model(p, dataset.num_classes)
    preprocess = data.preprocess_for(p, model)
    facts = models.model_facts(model, p.model.name, p.model.input_size)
    onnx_path = export_onnx(model, run.artifact("model.onnx"), p.model.input_size, p.export.opset,
                            p.export.dynamic_batch, p.export.dynamic_spatial)
    images = data.cached_images(dataset, preprocess, p)
    x = images.normalized(np.arange(min(p.export.parity_images, len(images))))
    ort = onnx_candidate("fp32", onnx_path)
    result = {
        **facts,
        "weights": p.model.weights,
        "opset": p.export.opset,
        "dynamic_batch": p.export.dynamic_batch,
        "dynamic_spatial": p.export.dynamic_spatial,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "onnx_mb": file_size_mb(onnx_path),
        "class_names": dataset.class_names,
        "preprocess": preprocess.describe(),
        "parity": parity(model, onnx_path, x),
        # OpenVINO on the export (f32; bf16 where the CPU has it) against ORT fp32. The int8
        # candidates do not exist yet (02 makes them): their agreement is in 04.
        "candidates": candidate_parity(openvino_candidates([ort]), ort.session()(x).astype(np.float64), x),
        "ops": op_histogram(onnx_path),
    }
    write_json(run.artifact("export.json"), result)
    return result


def model_card_rows(result: dict) -> list[dict]:
    """Params and MACs beside the paper's figures (when the paper reports this model) and, for models
    with a seed model card (``ghostnet.CARD_FACTS``), the card's figures beside the counts they match:
    parameters without the classifier, and FLOPs = 2 x MACs (and every op counted) beside its "GFLOPs"."""
    paper, card = result.get("paper", {}), result.get("card")
    flops = result.get("flops_224") or {}

    def row(fact: str, ours, paper_value=None, card_value=None) -> dict:
        out = {"fact": fact, "this model": ours, "paper": paper_value}
        return {**out, "seed card": card_value} if card else out

    rows = [
        row("parameters", result["params"], paper.get("params")),
        *([row("parameters without the classifier", result["params_without_classifier"], None,
               card and card["params"])] if "params_without_classifier" in result else []),
        row(f"MACs at {result['input_size']}px", result["macs"],
            paper.get("macs") if result["input_size"] == 224 else None),
        *([row("MACs at 224px", result["macs_224"], paper.get("macs"))] if "macs_224" in result else []),
        *([row("FLOPs at 224px = 2 × MACs", flops["two_x_macs"], None, card and card["gflops"] * 1e9),
           row("FLOPs at 224px, every op (+ batch norm, activations, SE, adds)", flops["every_op"], None,
               card and card["gflops"] * 1e9)] if flops else []),
        row("classes", result["num_classes"], 1000 if paper else None, 1000 if card else None),
        row("ONNX size (MB)", round(result["onnx_mb"], 2)),
    ]
    if card and not card.get("gflops_reproduced", True):
        rows.append(row(f"the card's {card['gflops']} GFLOPs",
                        "not reproducible: no counting convention gives it (ghostlab/ghostnet.py, CARD_FACTS)"))
    return rows


def settings_rows(result: dict) -> list[dict]:
    return [
        {"setting": "opset", "value": result["opset"]},
        {"setting": "exporter", "value": "TorchScript (dynamo=False), exportable=True"},
        {"setting": "dynamic axes", "value": ", ".join(
            n for n, on in (("batch", result["dynamic_batch"]), ("height/width", result["dynamic_spatial"])) if on)
            or "none"},
        {"setting": "input / output", "value": f"{result['input_name']} / {result['output_name']}"},
        {"setting": "preprocessing", "value": result["preprocess"]},
        {"setting": "weights", "value": result["weights"]},
    ]
