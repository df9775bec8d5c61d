"""Automatic mixed precision: which nodes hurt when quantized, and the ``auto`` variant that keeps
the fewest of them in fp32 to reach ``calibrate.auto_target_agreement``.

1. Candidates: nodes the base variant's per-tensor SQNR points at (``MixedPrecision.candidates``).
2. Sensitivity: each candidate quantized alone (``nodes_to_quantize``), ranked by the mean KL it
   causes on the hold-out.
3. ``greedy_select`` down that ranking: a node (with its fp32 island, ``GraphIndex.island``) is
   kept when it improves the hold-out, until the target is met.

When no node is kept, ``auto`` is the base variant byte for byte: it is recorded as an alias of
the base (``calibration_<auto>.json`` has ``alias_of``) and no second model file is written, so
03 and 04 do not time or evaluate the same model twice.

Works on a ``calibrate.Calibration`` (``cal``), which owns the images, ranges and results.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .calibrate_error import finite_or_none
from .config import VariantParams
from .errors import CalibrationError
from .ghostnet import ghostnet_role
# ``Calibration`` and ``VariantResult`` (annotations) are calibrate's; imported there, not here.


def greedy_select(candidates: Sequence[str], score: Callable[[list[str]], dict],
                  meets: Callable[[dict], bool]) -> tuple[list[str], list[dict]]:
    """Candidates kept, in order, and every trial: walk ``candidates``, keep one when adding it to those
    kept improves ``score`` (higher ``top1_agreement``, then lower ``mean_kl``); stop once ``meets``.

    ``score(nodes)`` returns a dict with ``top1_agreement`` and ``mean_kl``; at most
    ``len(candidates) + 1`` calls.
    """
    kept: list[str] = []
    best = score([])
    trials = [{"tried": "(base)", "accepted": True, "kept": 0, **best}]
    for node in candidates:
        if meets(best):
            break
        trial = score(kept + [node])
        better = (trial["top1_agreement"], -trial["mean_kl"]) > (best["top1_agreement"], -best["mean_kl"])
        if better:
            kept, best = kept + [node], trial
        trials.append({"tried": node, "accepted": better, "kept": len(kept), **trial})
    return kept, trials


def time_models(models: dict[str, Path], input_size: int, rounds: int = 30, threads: int = 1,
                batch: int = 1) -> list[dict]:
    """Median latency (ms) per model, measured in interleaved rounds so machine noise hits all alike."""
    from .runtimes import onnx_candidate

    x = np.random.default_rng(0).standard_normal((batch, 3, input_size, input_size)).astype(np.float32)
    sessions = {k: onnx_candidate(k, p).session(threads) for k, p in models.items()}
    for s in sessions.values():
        for _ in range(3):
            s(x)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s(x)
            times[k].append(time.perf_counter() - t0)
    ref = float(np.median(times["fp32"])) if "fp32" in times else None
    return [{"model": k, "median_ms": 1e3 * float(np.median(v)),
             # throughput over fp32's (> 1: faster), the one speed ratio every report uses
             "× faster than fp32": (ref / float(np.median(v))) if ref else math.nan,
             "batch": batch, "threads": threads, "rounds": rounds} for k, v in times.items()]


def alias_note(result: VariantResult) -> str:
    """'auto = minmax (0 nodes kept in fp32)' for an alias, else ''."""
    return f"{result.name} = {result.alias_of} (0 nodes kept in fp32)" if result.alias_of else ""


def candidates(cal: Calibration, base: VariantParams) -> list[dict]:
    """Nodes worth ranking, as the base variant's SQNR suggests (up to ``sensitivity_candidates``).

    Two lists, taken in turn: nodes touching the tensors with the lowest local SQNR (noisy
    quantization right there), and nodes whose output lost the most SQNR against fp32 compared
    with their inputs (error made inside the node, e.g. an input whose range is dominated by one
    outlier channel: its own SQNR looks fine while the other channels are lost).
    """
    result = cal.results.get(base.name) or cal.build(base)
    local: dict[str, float] = {}
    total: dict[str, float] = {}
    for r in result.tensors:
        if not r["quantized"] or not math.isfinite(r["local_sqnr_db"]):
            continue
        if r["kind"] == "activation":
            total[r["tensor"]] = r["sqnr_db"]
        touching = [r["node"]] if r["kind"] != "activation" else \
            [r["node"]] + [c[1] for c in cal.graph.consumers.get(r["tensor"], [])]
        for node in touching:
            if node in cal.graph.nodes:
                local[node] = min(local.get(node, math.inf), r["local_sqnr_db"])
    drop: dict[str, float] = {}
    for node, (_, _, inputs, outputs) in cal.graph.nodes.items():
        ins = [total[t] for t in inputs if t in total and math.isfinite(total[t])]
        outs = [total[t] for t in outputs if t in total and math.isfinite(total[t])]
        if ins and outs:
            drop[node] = min(ins) - min(outs)
    by_local = [n for n, _ in sorted(local.items(), key=lambda kv: kv[1])]
    by_drop = [n for n, _ in sorted(drop.items(), key=lambda kv: -kv[1])]
    chosen: list[str] = []
    for pair in zip(by_local, by_drop + [""] * max(0, len(by_local) - len(by_drop))):
        for n in pair:
            if n and n not in chosen and len(chosen) < cal.params.sensitivity_candidates:
                chosen.append(n)
    return [{"node": n, "min_sqnr_db": finite_or_none(local.get(n, math.inf)),
             "sqnr_drop_db": finite_or_none(drop.get(n, math.inf))} for n in chosen]


class MixedPrecision:
    """Sensitivity ranking and the ``auto`` variants of one calibration."""

    def __init__(self, cal: Calibration):
        self.cal = cal
        self.sensitivities: dict[str, list[dict]] = {}

    def base_for(self, auto: VariantParams) -> VariantParams:
        """``auto.base`` or, when unset, the built variant with the best hold-out agreement (then lowest KL)."""
        cal, plain = self.cal, self.cal.plain_variants()
        if auto.base:
            base = cal.params_of(auto.base)
            if base not in plain:
                raise CalibrationError(f"calibrate.variants[{auto.name}].base must name a non-auto variant")
            return base
        built = [cal.results[v.name] for v in plain if v.name in cal.results]
        if not built:
            if not plain:
                raise CalibrationError("an auto variant needs a non-auto variant to start from; add one to "
                                       "calibrate.variants")
            return plain[0]
        best = max(built, key=lambda r: (r.top1_agreement, -r.mean_kl))
        return cal.params_of(best.name)

    def sensitivity(self, base: VariantParams) -> list[dict]:
        """Each candidate node quantized alone; ranked by mean KL on the hold-out (worst first)."""
        if base.name in self.sensitivities:
            return self.sensitivities[base.name]
        cal, rows = self.cal, []
        tmp = cal.work_dir / ".one_node.onnx"
        for cand in candidates(cal, base):
            node = cand["node"]
            depth, op = cal.graph.nodes[node][:2]
            try:
                cal.quantize(base, tmp, nodes_to_quantize=[node])
                scores = cal.evaluate(tmp)
            finally:
                tmp.unlink(missing_ok=True)
            rows.append({"node": node, "op": op, "role": ghostnet_role(node), "depth": depth,
                         "min_sqnr_db": cand["min_sqnr_db"], "sqnr_drop_db": cand["sqnr_drop_db"], **scores})
        rows.sort(key=lambda r: (-r["mean_kl"], r["top1_agreement"]))
        for rank, r in enumerate(rows, 1):
            r["rank"] = rank
        self.sensitivities[base.name] = rows
        return rows

    def build(self, auto: VariantParams) -> VariantResult:
        """The base variant with a few ranked nodes kept in fp32, to reach the target agreement.

        Walks down the sensitivity ranking (at most ``auto_max_excluded`` nodes): each node is tried
        on top of those already kept and kept itself only if the hold-out improves (higher agreement,
        or the same with lower KL); it stops as soon as the target is met (``greedy_select``). Each
        kept node goes to fp32 with its island (the neighbours that would otherwise quantize its
        tensors), so what stays fp32 is the node's whole input-to-output path. Keeping none makes
        it an alias of the base (no second file).
        """
        cal = self.cal
        base = self.base_for(auto)
        base_result = cal.results.get(base.name) or cal.build(base)
        target = cal.params.auto_target_agreement
        fixed = list(base.nodes_to_exclude)
        ranking = [r["node"] for r in self.sensitivity(base) if r["node"] not in fixed]
        limit = min(cal.params.auto_max_excluded, len(ranking))
        tmp = cal.work_dir / ".auto_try.onnx"

        def excluded(nodes: Sequence[str]) -> list[str]:
            """The islands of ``nodes`` (see ``GraphIndex.island``), after the base's own exclusions."""
            out = list(fixed)
            for node in nodes:
                out += [n for n in cal.graph.island(node) if n not in out]
            return out

        steps = {(): {"top1_agreement": base_result.top1_agreement, "mean_kl": base_result.mean_kl}}

        def score(nodes: Sequence[str]) -> dict:
            key = tuple(nodes)
            if key not in steps:
                try:
                    cal.quantize(base, tmp, nodes_to_exclude=excluded(nodes))
                    steps[key] = cal.evaluate(tmp)
                finally:
                    tmp.unlink(missing_ok=True)
            return {**steps[key], "fp32_nodes": len(excluded(nodes))}

        picked, trials = greedy_select(ranking[:limit], score, lambda sc: sc["top1_agreement"] >= target)
        best = [t for t in trials if t["accepted"]][-1]
        info = {"base": base.name, "target_agreement": target, "reached": best["top1_agreement"] >= target,
                "ranked_nodes": picked, "kept_fp32": excluded(picked),
                "max_ranked_nodes": cal.params.auto_max_excluded, "steps": trials,
                "sensitivity": self.sensitivity(base)}
        if picked:
            result = cal.build(base, nodes_to_exclude=excluded(picked), auto=info, name=auto.name, write=False)
        else:
            result = cal.alias(base_result, auto.name, auto=info)
        info["speed"] = self.speed(result)
        cal.write(result)
        return result

    # ---- what the report shows
    def autos(self) -> list[VariantResult]:
        return [r for r in self.cal.results.values() if r.auto]

    def rank_nodes(self) -> tuple[str, list[dict]]:
        """(base variant, sensitivity ranking) for the first auto variant, or the best built variant."""
        autos = self.cal.derived_variants()
        base = self.base_for(autos[0] if autos else VariantParams(name="auto", method="auto"))
        return base.name, self.sensitivity(base)

    def sensitivity_rows(self, top: int = 15) -> list[dict]:
        _, rows = self.rank_nodes()
        return [{"rank": r["rank"], "node": r["node"], "role": r["role"], "op": r["op"], "depth": r["depth"],
                 "min SQNR (dB)": r["min_sqnr_db"], "SQNR drop (dB)": r["sqnr_drop_db"],
                 "top1 agreement": r["top1_agreement"],
                 "mean KL": r["mean_kl"]} for r in rows[:top]]

    def rows(self) -> list[dict]:
        """Per auto variant: base, target, whether it was reached, which nodes stayed fp32, its file."""
        return [{"variant": r.name, "base": r.auto["base"], "target": r.auto["target_agreement"],
                 "reached": r.auto["reached"], "top1_agreement": r.top1_agreement,
                 "mean_kl": r.mean_kl, "ranked nodes": ", ".join(r.auto["ranked_nodes"]) or "(none)",
                 "fp32_nodes": len(r.nodes_to_exclude),
                 "kept in fp32": ", ".join(r.nodes_to_exclude) or "(none)",
                 "model": alias_note(r) or r.path.name} for r in self.autos()]

    def steps(self) -> list[dict]:
        """Every node the auto search tried, whether it was kept, and the hold-out scores."""
        return [{"variant": r.name, **step} for r in self.autos() for step in r.auto["steps"]]

    def speed(self, result: VariantResult) -> list[dict]:
        """A quick side-by-side latency (batch 1, one thread, interleaved rounds) of fp32, the base
        and ``result`` (an alias is the base's file: timed once, under the base's name)."""
        cal = self.cal
        models = {"fp32": cal.prep_model, result.auto["base"]: cal.results[result.auto["base"]].path}
        if not result.alias_of:
            models[result.name] = result.path
        return time_models(models, cal.input_size, cal.params.timing_rounds)

    def speed_rows(self) -> list[dict]:
        """The speed check of every auto variant (fp32 and base rows once)."""
        rows = {}
        for r in self.autos():
            for row in r.auto["speed"]:
                rows.setdefault(row["model"], row)
        return list(rows.values())

    def headline(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in self.autos():
            out[f"{r.name}_fp32_nodes"] = len(r.nodes_to_exclude)
            out[f"{r.name}_reached_target"] = r.auto["reached"]
            if r.alias_of:
                out[f"{r.name}_same_as"] = r.alias_of
        return out
