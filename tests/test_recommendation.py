"""The recommendation (ghostlab.recommend) and the benchmark.json fields it reads (bench.headline,
bench.headline_cell): the fastest candidate within evaluate.max_drop_pts, or 'none qualifies'."""

import json

import numpy as np
import pytest

from ghostlab import bench, bench_setup, evaluate
from ghostlab import recommend as rc
from ghostlab.evaluate import Evaluation, Predictions
from ghostlab.recommend import recommendation_text


def recommend(benchmark, ev, max_drop):
    return rc.recommend(benchmark, ev.accuracy, ev.paired, ev.candidates, max_drop)


def _row(model, runtime, precision, ratio, vs_torch=None, batch=8, threads=2, sessions=1, img_s=None):
    return {"model": model, "kind": "onnx" if runtime == "onnxruntime" else runtime, "runtime": runtime,
            "precision": precision, "batch": batch, "threads": threads, "sessions": sessions,
            "img_s": img_s if img_s is not None else 100 * (ratio or 0.3), "p50_ms": 10.0 / (ratio or 0.3),
            "ratio_vs_fp32": ratio, "ratio_vs_torch": vs_torch}


SPEED = {  # candidate: (runtime, precision, × ORT fp32)
    "fp32": ("onnxruntime", "fp32", 1.0), "int8_auto": ("onnxruntime", "int8", 1.3),
    "ov_fp32": ("openvino", "fp32", 1.27), "ov_bf16": ("openvino", "bf16", 2.2),
    "ov_int8_auto": ("openvino", "int8", 1.9), "ov_nncf": ("openvino", "int8", 2.5),
}


def _benchmark():
    rows = [_row(m, rt, pr, r, vs_torch=r * 1.6) for m, (rt, pr, r) in SPEED.items()]
    rows.append(_row("torch", "torch", "fp32", 1 / 1.6, vs_torch=1.0))
    rows += [_row("fp32", "onnxruntime", "fp32", 1.0, batch=1, threads=1)]  # another cell: ignored
    models = {m: {"label": f"label of {m}", "runtime": rt, "precision": pr} for m, (rt, pr, _) in SPEED.items()}
    return {"results": rows, "models": models, "headline": bench.headline(rows, cores=2, batch=8)}


def _evaluation(upper, n=50_000):
    """An Evaluation whose paired stats give each candidate the 95 % upper bound in ``upper``."""
    acc = {m: {"top1": 70.0, "top5": 90.0, "n": n} for m in SPEED}
    paired = {m: {"top1_drop": hi - 0.3, "top1_drop_ci95": [hi - 0.6, hi], "agreement": 99.0, "mcnemar_p": 0.5,
                  "flips_right_to_wrong": 3, "flips_wrong_to_right": 2, "kl_mean": 0.01, "n": n,
                  "bootstrap_draws": 1000} for m, hi in upper.items()}
    cands = {m: {"name": m, "runtime": rt, "precision": pr, "label": f"label of {m}", "size_bytes": 20_000_000}
             for m, (rt, pr, _) in SPEED.items()}
    preds = Predictions(np.zeros(0, np.int64), np.zeros(0, np.int64), {})
    speed = {"model_images_per_s": {}, "images": n}
    return Evaluation("ghostnet_100", 1000, [], "seed", preds, acc, paired, {}, {}, speed, candidates=cands)


def test_the_headline_names_the_fastest_candidate_and_ort_s_best_int8():
    h = _benchmark()["headline"]
    assert h["best"] == "ov_nncf" and h["best_runtime"] == "openvino" and h["best_precision"] == "int8"
    assert h["best_vs_fp32"] == 2.5 and h["best_vs_torch"] == pytest.approx(4.0)
    assert h["best_int8"] == "int8_auto"  # ONNX Runtime's own, not OpenVINO's
    assert h["fp32_vs_torch"] == pytest.approx(1.6)


def test_one_reader_of_benchmark_rows():
    doc = _benchmark()
    cell = bench.headline_cell(doc)
    assert set(cell) == set(SPEED) | {"torch"} and all(r["batch"] == 8 for r in cell.values())
    assert bench.headline_cell({}) == {} and bench.headline_cell({"headline": {}}) == {}
    assert bench.select({}) == [] and bench.select({"results": ["junk", 3]}) == []
    assert len(bench.select(doc, model="fp32", sessions=None)) == 2


def test_the_fastest_candidate_within_the_budget_is_recommended():
    upper = {"int8_auto": 0.3, "ov_fp32": 0.0, "ov_bf16": 0.2, "ov_int8_auto": 0.4, "ov_nncf": 1.4}
    rec = recommend(_benchmark(), _evaluation(upper), max_drop=0.5)
    assert rec["candidate"] == "ov_bf16" and rec["qualifies"] is True
    assert rec["runtime"] == "openvino" and rec["precision"] == "bf16"
    assert rec["vs_fp32"] == 2.2 and rec["vs_torch"] == pytest.approx(3.52)
    assert rec["top1_drop_ci95"] == [pytest.approx(-0.4), 0.2] and rec["images"] == 50_000
    assert [f["candidate"] for f in rec["faster_but_outside"]] == ["ov_nncf"]
    assert "0.5 pp" in rec["rule"] and rec["max_drop_pts"] == 0.5
    text = recommendation_text(rec)
    assert text.startswith("Ship label of ov_bf16: 2.20× ORT fp32, 3.52× torch eager on this CPU")
    # the drop as every table and the index write it (positive = lost): −0.1 is a gain
    assert "top-1 drop −0.10 pp [−0.40, +0.20] on 50,000 images" in text and text.endswith("; 20.00 MB.")
    assert rec["text"] == text
    rows = rc.recommendation_rows(rec)
    assert rows[0]["verdict"] == "recommended" and rows[1]["candidate"] == "ov_nncf"
    # a looser budget takes the faster NNCF model
    assert recommend(_benchmark(), _evaluation(upper), max_drop=1.5)["candidate"] == "ov_nncf"


def test_none_qualifies_names_the_fastest_fp32_candidate():
    upper = {m: 2.0 for m in SPEED if m != "fp32"}
    rec = recommend(_benchmark(), _evaluation(upper), max_drop=0.5)
    assert rec["qualifies"] is False and rec["candidate"] == "ov_fp32" and rec["precision"] == "fp32"
    text = recommendation_text(rec)
    assert text.startswith("No candidate faster than ORT fp32 keeps its top-1 drop within 0.5 pp")
    assert "the fastest fp32 one is label of ov_fp32" in text
    # no bootstrap interval (evaluate.bootstrap 0): nothing can be shown within the budget
    nan = recommend(_benchmark(), _evaluation({m: float("nan") for m in upper}), max_drop=0.5)
    assert nan["qualifies"] is False


def test_no_timings_no_recommendation():
    assert recommend({}, _evaluation({"ov_bf16": 0.1}), 0.5) is None
    assert recommendation_text(None).startswith("No recommendation")


def test_evaluation_json_carries_candidates_and_the_recommendation():
    ev = _evaluation({"int8_auto": 0.3, "ov_fp32": 0.0, "ov_bf16": 0.2, "ov_int8_auto": 0.4, "ov_nncf": 1.4})
    ev.speed = {"model_images_per_s": {}}
    ev.recommendation = recommend(_benchmark(), ev, 0.5)
    doc = json.loads(json.dumps(evaluate.evaluation_json(ev)))
    assert doc["recommendation"]["candidate"] == "ov_bf16"
    for key in ("candidate", "runtime", "precision", "vs_fp32", "vs_torch", "top1_drop", "top1_drop_ci95", "rule"):
        assert key in doc["recommendation"]
    assert doc["models"]["ov_bf16"]["precision"] == "bf16" and doc["models"]["ov_bf16"]["runtime"] == "openvino"


def test_only_the_leading_candidates_get_the_full_grid():
    models = [bench_setup.BenchModel(m, "onnx", "fp32", 1, lambda t: None) for m in [*SPEED, "torch"]]
    rows = _benchmark()["results"]
    assert [m.name for m in bench.leading(models, rows, 2)] == ["fp32", "ov_bf16", "ov_nncf", "torch"]
    assert len(bench.leading(models, rows, None)) == len(models)


def test_a_descheduled_torch_is_compared_on_one_thread():
    """On a busy machine torch's all-cores rate collapses (its OpenMP threads wait for each other):
    the all-cores ratio then flatters every runtime, so the sentence quotes one thread each."""
    upper = {m: 0.1 for m in SPEED}
    doc = _benchmark()
    doc["results"] += [_row("ov_nncf", "openvino", "int8", 2.4, vs_torch=3.1, threads=1),
                       _row("torch", "torch", "fp32", 0.8, vs_torch=1.0, threads=1, img_s=300.0)]
    busy = rc.recommend(doc, *_args(upper))
    assert busy["torch_descheduled"] and busy["vs_torch_1_thread"] == 3.1
    assert "3.10× torch eager (1 thread each" in busy["text"] and "4.00×" not in busy["text"]
    doc["results"][-1]["img_s"] = 50.0  # torch's one thread no faster than its two: the all-cores ratio stands
    quiet = rc.recommend(doc, *_args(upper))
    assert not quiet["torch_descheduled"] and "4.00× torch eager on this CPU" in quiet["text"]


def _args(upper):
    ev = _evaluation(upper)
    return ev.accuracy, ev.paired, ev.candidates, 0.5
