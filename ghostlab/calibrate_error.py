"""Per-tensor quantization error of an int8 variant: where each tensor sits in the graph, the fp32
activations it is compared with, and its SQNR (ORT's ``qdq_loss_debug``), tagged by GhostNet role.

``GraphIndex`` also gives the island of nodes that must stay fp32 together (used by
``calibrate_auto``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .calibrate_ranges import Images, chunks, input_name, quiet, reader
from .ghostnet import ghostnet_role

# Ops whose output carries their input's values (or a subset, or the ReLU of them): an fp32 tensor
# stays fp32 only if the tensors these connect it to are fp32 too.
PASS_THROUGH_OPS = {"Relu", "Clip", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Identity",
                    "MaxPool"}


def sqnr_db(reference: Sequence[np.ndarray] | np.ndarray, test: Sequence[np.ndarray] | np.ndarray) -> float:
    """ORT's SQNR (dB) of ``test`` against ``reference``; ``inf`` when they are identical.

    ORT clamps a zero error to machine epsilon and so returns a large finite number for a tensor
    that was never quantized; here that case is infinite, never a number that looks measured.
    """
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    ref = [reference] if isinstance(reference, np.ndarray) else list(reference)
    tst = [test] if isinstance(test, np.ndarray) else list(test)
    if len(ref) == len(tst) and all(np.array_equal(a, b) for a, b in zip(ref, tst)):
        return math.inf
    return float(compute_signal_to_quantization_noice_ratio(ref, tst))


@dataclass
class GraphIndex:
    """Where each tensor sits in the preprocessed fp32 graph."""

    producer: dict[str, tuple[int, str, str]]  # tensor -> (depth, node name, op type)
    consumers: dict[str, list[tuple[int, str, str]]]
    nodes: dict[str, tuple[int, str, list[str], list[str]]]  # name -> (depth, op, inputs, outputs)
    initializers: set[str]

    @classmethod
    def of(cls, model: str | Path) -> "GraphIndex":
        import onnx

        graph = onnx.load(str(model)).graph
        producer, consumers, nodes = {}, {}, {}
        for g in graph.input:
            producer[g.name] = (0, g.name, "input")
        for depth, node in enumerate(graph.node, 1):
            nodes[node.name] = (depth, node.op_type, list(node.input), list(node.output))
            for t in node.output:
                producer[t] = (depth, node.name, node.op_type)
            for t in node.input:
                consumers.setdefault(t, []).append((depth, node.name, node.op_type))
        return cls(producer, consumers, nodes, {i.name for i in graph.initializer})

    def island(self, node: str) -> list[str]:
        """``node`` and every node that touches one of its activation tensors, following ops that pass
        values through (ReLU, Flatten, ...) both ways, in graph order.

        Excluding only ``node`` leaves its tensors quantized whenever a neighbour is quantized (the
        neighbour puts QuantizeLinear/DequantizeLinear on them), and ORT folds a ReLU into the
        quantization of the tensor before it; keeping ``node``'s inputs and outputs in fp32 takes
        this whole island.
        """
        nodes, seen = {node}, set()
        stack = [t for t in self.nodes[node][2] + self.nodes[node][3] if t and t not in self.initializers]
        while stack:
            tensor = stack.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            producer = self.producer.get(tensor)
            touching = [c[1] for c in self.consumers.get(tensor, [])]
            if producer and producer[2] != "input":
                touching.append(producer[1])
            for other in touching:
                nodes.add(other)
                _, op, inputs, outputs = self.nodes[other]
                if op in PASS_THROUGH_OPS:
                    stack.extend(t for t in inputs + outputs if t and t not in self.initializers)
        return sorted(nodes, key=lambda n: self.nodes[n][0])

    def weight_kind(self, tensor: str) -> str:
        """``bias`` for the third input of a Conv/Gemm, else ``weight``."""
        for _, node, _ in self.consumers.get(tensor, []):
            _, op, inputs, _ = self.nodes[node]
            if op in ("Conv", "Gemm", "ConvTranspose") and len(inputs) > 2 and inputs[2] == tensor:
                return "bias"
        return "weight"

    def place(self, tensor: str, kind: str) -> tuple[int, str, str]:
        """(depth, node, op) of an activation's producer or a weight's (or bias's) first consumer."""
        if kind != "activation":
            return (self.consumers.get(tensor) or [(0, "?", "?")])[0]
        return self.producer.get(tensor, (0, "?", "?"))


class ActivationCapture:
    """fp32 activations of a slice of images (ORT ``collect_activations``), kept to compare variants."""

    def __init__(self, prep_model: Path, images: Images, indices: np.ndarray, work_dir: Path, batch_size: int):
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                             modify_model_output_intermediate_tensors)

        self.images, self.indices, self.work_dir, self.batch_size = images, indices, work_dir, batch_size
        self.input_name = input_name(prep_model)
        aug = work_dir / ".fp32_activations.onnx"
        try:
            with quiet():
                modify_model_output_intermediate_tensors(str(prep_model), str(aug))
                self.float_acts = collect_activations(str(aug), self._reader())
        finally:
            aug.unlink(missing_ok=True)

    def _reader(self):
        return reader(chunks(self.images, self.indices, self.batch_size), self.input_name)

    def int8_activations(self, int8_model: Path) -> dict:
        from onnxruntime.quantization.qdq_loss_debug import (collect_activations,
                                                             modify_model_output_intermediate_tensors)

        aug = self.work_dir / f".{int8_model.stem}_activations.onnx"
        try:
            with quiet():
                modify_model_output_intermediate_tensors(str(int8_model), str(aug))
                return collect_activations(str(aug), self._reader())
        finally:
            aug.unlink(missing_ok=True)


def tensor_errors(prep_model: Path, int8_model: Path, capture: ActivationCapture, graph: GraphIndex,
                  calibrated: Iterable[str], excluded: Iterable[str] = ()) -> list[dict]:
    """One row per tensor: SQNR of weights and activations, GhostNet role, depth in the graph.

    Activations: ``sqnr_db`` compares the int8 model's tensor with the fp32 model's (error
    accumulated up to here), ``local_sqnr_db`` the tensor before and after its own QuantizeLinear/
    DequantizeLinear pair (error added here). Weights and biases: fp32 vs dequantized (both columns).
    A calibrated tensor the variant did not quantize has ``quantized`` False and SQNR ``inf`` (a
    node's output folded into the ReLU after it is one; ``kept_fp32`` marks the tensors of nodes
    in ``excluded``).
    """
    from onnxruntime.quantization.qdq_loss_debug import create_activation_matching, create_weight_matching

    with quiet():
        qdq_acts = capture.int8_activations(int8_model)
        acts = create_activation_matching(qdq_acts, capture.float_acts)
        weights = create_weight_matching(str(prep_model), str(int8_model))
    del qdq_acts
    rows = []
    for name in sorted(set(calibrated) | set(acts)):
        match = acts.get(name)
        if match is None:
            rows.append(_tensor_row(name, "activation", graph, False, math.inf, math.inf))
            continue
        pre = match["pre_qdq"]
        if graph.producer.get(name, (0, "", ""))[2] == "Relu":
            # ORT folds a ReLU into the QuantizeLinear after it (uint8 zero point at 0): the tensor
            # before Q is then the pre-ReLU value, so the ReLU is applied before comparing.
            pre = [np.maximum(a, 0) for a in pre]
        local = sqnr_db(pre, match["post_qdq"])
        total = sqnr_db(match["float"], match["post_qdq"]) if "float" in match else local
        rows.append(_tensor_row(name, "activation", graph, True, total, local))
    for name, match in sorted(weights.items()):
        value = sqnr_db(match["float"], match["dequantized"])
        rows.append(_tensor_row(name, graph.weight_kind(name), graph, True, value, value))
    excluded = set(excluded)
    for r in rows:
        r["kept_fp32"] = r["node"] in excluded
    rows.sort(key=lambda r: (r["depth"], r["kind"] == "activation", r["tensor"]))
    return rows


def _tensor_row(name: str, kind: str, graph: GraphIndex, quantized: bool, total: float, local: float) -> dict:
    depth, node, op = graph.place(name, kind)
    role = "stem" if op == "input" else ghostnet_role(node)
    return {"tensor": name, "kind": kind, "node": node, "op": op, "role": role, "depth": depth,
            "quantized": quantized, "sqnr_db": total, "local_sqnr_db": local}


def sqnr_summary(rows: list[dict]) -> dict:
    """Median and worst local SQNR over quantized tensors, and the output's SQNR vs fp32."""
    local = [r["local_sqnr_db"] for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])]
    worst = min((r for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])),
                key=lambda r: r["local_sqnr_db"], default=None)
    acts = [r for r in rows if r["kind"] == "activation" and r["quantized"] and math.isfinite(r["sqnr_db"])]
    deepest = max(acts, key=lambda r: r["depth"], default=None)
    return {
        "median_sqnr_db": float(np.median(local)) if local else math.nan,
        "worst_sqnr_db": worst["local_sqnr_db"] if worst else math.nan,
        "worst_tensor": worst["tensor"] if worst else "",
        "output_sqnr_db": deepest["sqnr_db"] if deepest else math.nan,
        "tensors_quantized": sum(r["quantized"] for r in rows),
        "tensors_fp32": sum(not r["quantized"] for r in rows),
    }


def worst_tensors(rows: list[dict], n: int = 10) -> list[dict]:
    """The ``n`` quantized tensors with the lowest local SQNR, for a table."""
    ranked = sorted((r for r in rows if r["quantized"] and math.isfinite(r["local_sqnr_db"])),
                    key=lambda r: r["local_sqnr_db"])[:n]
    return [{"tensor": r["tensor"], "kind": r["kind"], "role": r["role"], "depth": r["depth"],
             "local SQNR (dB)": r["local_sqnr_db"], "SQNR vs fp32 (dB)": r["sqnr_db"]} for r in ranked]



def finite_or_none(x: float) -> float | None:
    """JSON has no infinity: an unquantized tensor's SQNR is written as null (with quantized: false)."""
    return x if math.isfinite(x) else None
