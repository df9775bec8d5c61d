"""Calibration: ORT int8 variants, SQNR, sensitivity and the auto variant (ghostlab.calibrate,
calibrate_error, calibrate_auto; ranges in test_calibrate_ranges.py).

The integration tests quantize a ghostnet_050 on the tiny profile's demo images. The tiny demo
checkpoint (one epoch) predicts one class for every image, which would make any agreement test pass,
so the model here is a random GhostNet whose classifier is fitted by least squares to those images:
its predictions depend on the input, and int8 has to track them.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from ghostlab import calibrate as C
from ghostlab import calibrate_auto as A
from ghostlab import calibrate_error as E
from ghostlab import calibrate_images, ghostnet
from ghostlab.config import VariantParams
from ghostlab.errors import CalibrationError


# ---------------------------------------------------------------- pure helpers

@pytest.mark.parametrize("node, role", [
    ("/conv_stem/Conv", "stem"),
    ("/act1/Relu", "stem"),
    ("/blocks/blocks.3/blocks.3.0/ghost1/primary_conv/primary_conv.0/Conv", "primary conv"),
    ("/blocks/blocks.3/blocks.3.0/ghost1/cheap_operation/cheap_operation.0/Conv", "cheap depthwise op"),
    ("/blocks/blocks.3/blocks.3.0/ghost1/Concat", "ghost concat"),
    ("/blocks/blocks.3/blocks.3.0/se/conv_reduce/Conv", "squeeze-excite"),
    ("/blocks/blocks.3/blocks.3.0/se/gate/HardSigmoid", "squeeze-excite"),
    ("/blocks/blocks.1/blocks.1.0/shortcut/shortcut.0/Conv", "shortcut"),
    ("/blocks/blocks.0/blocks.0.0/Add", "shortcut"),
    ("/blocks/blocks.1/blocks.1.0/conv_dw/Conv", "downsample dw"),
    ("/blocks/blocks.2/blocks.2.0/ghost1/short_conv/short_conv.0/Conv", "dfc attention"),
    ("/blocks/blocks.2/blocks.2.0/ghost1/Mul", "dfc attention"),
    ("/blocks/blocks.9/blocks.9.0/conv/Conv", "head"),
    ("/conv_head/Conv", "head"),
    ("/classifier/Gemm", "head"),
    ("/something/else", "other"),
])
def test_ghostnet_role_from_node_name(node, role):
    assert ghostnet.ghostnet_role(node) == role


def test_sqnr_of_an_untouched_tensor_is_infinite_not_a_number():
    x = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)
    assert E.sqnr_db(x, x.copy()) == math.inf
    assert E.sqnr_db([x, x], [x.copy(), x.copy()]) == math.inf
    noisy = x + np.float32(0.01) * np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    expected = 20 * math.log10(np.linalg.norm(x) / np.linalg.norm(x - noisy))
    assert E.sqnr_db(x, noisy) == pytest.approx(expected, rel=1e-4)


def _fake_score(gains: dict[str, float], base: float = 0.9):
    calls = []

    def score(nodes):
        calls.append(list(nodes))
        agree = base + sum(gains[n] for n in nodes)
        return {"top1_agreement": round(agree, 6), "mean_kl": 1.0 - agree}

    return score, calls


def test_greedy_select_keeps_only_nodes_that_help_and_stops_at_the_target():
    score, calls = _fake_score({"a": 0.05, "b": -0.02, "c": 0.0, "d": 0.05, "e": 0.05})
    kept, trials = A.greedy_select(["a", "b", "c", "d", "e"], score, lambda s: s["top1_agreement"] >= 0.99)
    assert kept == ["a", "d"]
    assert [t["tried"] for t in trials] == ["(base)", "a", "b", "c", "d"]  # "e" is never tried
    assert [t["accepted"] for t in trials] == [True, True, False, False, True]
    assert len(calls) == 5


def test_greedy_select_reports_a_missed_target():
    score, _ = _fake_score({"a": 0.01, "b": 0.01})
    kept, trials = A.greedy_select(["a", "b"], score, lambda s: s["top1_agreement"] >= 0.99)
    assert kept == ["a", "b"] and trials[-1]["top1_agreement"] < 0.99
    kept, trials = A.greedy_select([], score, lambda s: False)
    assert kept == [] and len(trials) == 1


def test_holdout_is_class_balanced_and_disjoint():
    labels = np.repeat(np.arange(5), 8)
    rest, held = C.split_holdout(labels, 10, seed=0)
    assert len(held) == 10 and len(rest) == 30
    assert not set(rest) & set(held)
    assert np.bincount(labels[held], minlength=5).tolist() == [2] * 5
    # a small set keeps at least half for the ranges
    rest, held = C.split_holdout(labels[:6], 100)
    assert len(held) == 3 and len(rest) == 3
    with pytest.raises(CalibrationError):
        C.split_holdout(labels[:1], 1)


def test_warnings_name_the_fix():
    s8s8 = VariantParams(name="s8", activation_type="int8", weight_type="int8")
    u8s8 = VariantParams(name="u8")
    reduced = VariantParams(name="r", reduce_range=True)
    out = C.variant_warnings([s8s8, u8s8, reduced], {"vnni": False}, machine="x86_64")
    assert any("s8" in w and "activation_type: uint8" in w for w in out)
    assert any("variant u8" in w and "reduce_range: true" in w for w in out)
    assert not any("variant r:" in w for w in out)
    assert C.variant_warnings([s8s8, u8s8], {"vnni": True}, machine="x86_64") == [out[0]]
    assert C.variant_warnings([s8s8, u8s8], {"vnni": False}, machine="aarch64") == []
    assert "raise calibrate.num_images" in C.data_warnings(5, 10)[0]
    assert C.data_warnings(10, 10) == []


def test_agreement_and_kl():
    a = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=np.float32)
    same = C.agreement(a, a)
    assert same["top1_agreement"] == 1.0 and same["mean_kl"] == pytest.approx(0.0, abs=1e-12)
    flipped = C.agreement(a, a[:, ::-1].copy())
    assert flipped["top1_agreement"] == 0.5 and flipped["mean_kl"] > 0.5


# ---------------------------------------------------------------- on a real (tiny) model

def _outlier_channel(model, channel: int, scale: float = 300.0) -> None:
    """One channel of conv_head is scaled up and the classifier scales it back: the fp32 function is
    unchanged (ReLU is positively homogeneous), but the int8 range of the pooled features is set by
    that one channel and crushes the other 1279, the classic reason to keep a node in fp32."""
    import torch

    with torch.no_grad():
        model.conv_head.weight[channel] *= scale
        if model.conv_head.bias is not None:
            model.conv_head.bias[channel] *= scale
        model.classifier.weight[:, channel] /= scale


def _fitted_ghostnet(params, images):
    """A random ghostnet whose classifier is fitted to the images' labels (ridge regression on its
    pooled features; the ridge keeps the head off the features' low-variance directions, which
    int8 noise would flip), and its most active pooled-feature channel."""
    import torch

    from ghostlab.models import create_model

    torch.manual_seed(0)
    num_classes = len(images.class_names)
    model = create_model(params.model.name, "random", num_classes=num_classes)
    x = torch.from_numpy(images.normalized(np.arange(len(images))))
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
        mean = feats.mean(0)
        centred = feats - mean
        target = torch.nn.functional.one_hot(torch.from_numpy(images.labels), num_classes).float()
        gram = centred @ centred.T
        ridge = 0.1 * gram.trace() / len(gram)
        weight = centred.T @ torch.linalg.solve(gram + ridge * torch.eye(len(gram)), target - target.mean(0))
        model.classifier.weight.copy_(weight.T)
        model.classifier.bias.copy_(-(mean @ weight))
    return model, int(feats.mean(0).argmax())  # a channel that is never zero after the ReLU


def _calibration(tmp_path, params, model, variants, **calibrate):
    from ghostlab import export
    from ghostlab.runfolder import NotebookRun

    params = params.replace(calibrate=dataclasses.replace(
        params.calibrate, num_images=32, holdout_images=16, chunk_size=8, variants=variants,
        sensitivity_candidates=8, auto_max_excluded=4, timing_rounds=3, **calibrate))
    run = NotebookRun("02_calibrate", params, tmp_path)
    run.artifacts.mkdir(parents=True)
    export.export_onnx(model, run.artifact("model.onnx"), params.model.input_size)
    return C.run(run)


@pytest.fixture(scope="module")
def fitted(tiny_params):
    """(params, a fitted ghostnet, the same with an outlier channel before the classifier)."""
    import copy

    from ghostlab import data, demo

    params = demo.prepare(tiny_params, show_progress=False)
    images, _ = data.calibration_set(params, data.preprocess_for(params), show_progress=False)
    model, channel = _fitted_ghostnet(params, images)
    outlier = copy.deepcopy(model)
    _outlier_channel(outlier, channel)
    return params, model, outlier


@pytest.fixture(scope="module")
def cal(tmp_path_factory, fitted):
    params, model, _ = fitted
    variants = [VariantParams(name="minmax", method="minmax"),
                VariantParams(name="percentile", method="percentile", percentile=99.99),
                VariantParams(name="entropy", method="entropy")]
    cal = _calibration(tmp_path_factory.mktemp("calibrate"), params, model, variants)
    cal.build_variants()
    return cal


@pytest.fixture(scope="module")
def outlier_cal(tmp_path_factory, fitted):
    params, _, model = fitted
    variants = [VariantParams(name="minmax", method="minmax"), VariantParams(name="auto", method="auto")]
    cal = _calibration(tmp_path_factory.mktemp("outlier"), params, model, variants, auto_target_agreement=0.85)
    cal.build_variants()
    return cal


@pytest.mark.slow
def test_fitted_fp32_model_predicts_more_than_one_class(cal):
    assert len(np.unique(cal.holdout_logits().argmax(1))) > 1


@pytest.mark.slow
@pytest.mark.parametrize("name", ["minmax", "percentile", "entropy"])
def test_each_method_gives_a_runnable_int8_model_that_tracks_fp32(cal, name):
    result = cal.results[name]
    path = cal.artifacts / f"int8_{name}.onnx"
    assert result.path == path and path.exists()
    sess = C.session(path)
    ops = {o.op_type for o in __import__("onnx").load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    logits = C.logits(sess, cal.images, cal.holdout_indices)
    scores = C.agreement(cal.holdout_logits(), logits)
    # KL-divergence calibration (entropy) clips on a symmetric window: on GhostNet's squeeze-excite
    # activations and the logits it loses more than minmax does (on the demo too, where 02 says so);
    # it must still be far above chance (1/4 here), and the others close to fp32.
    assert scores["top1_agreement"] >= (0.5 if name == "entropy" else 0.75)
    assert scores["top1_agreement"] == pytest.approx(result.top1_agreement)
    summary = result.summary
    assert summary["tensors_quantized"] > 50 and math.isfinite(summary["median_sqnr_db"])
    assert summary["worst_sqnr_db"] <= summary["median_sqnr_db"]


@pytest.mark.slow
def test_calibration_json_has_ranges_sqnr_and_exclusions(cal):
    doc = json.loads((cal.artifacts / "calibration_entropy.json").read_text())
    assert doc["method"] == "entropy" and doc["nodes_to_exclude"] == []
    assert doc["calibration"]["images"] == len(cal.calibration_indices)
    lo, hi = doc["ranges"]["logits"]
    assert lo <= hi
    roles = {r["role"] for r in doc["sqnr"]}
    assert {"stem", "primary conv", "cheap depthwise op", "squeeze-excite", "shortcut", "head"} <= roles
    assert all(r["sqnr_db"] is None or math.isfinite(r["sqnr_db"]) for r in doc["sqnr"])


@pytest.mark.slow
def test_02_records_the_calibration_images_once_for_04(cal):
    doc = calibrate_images.read(cal.artifacts / calibrate_images.FILE)
    assert doc["calibration_indices"] == cal.calibration_indices.tolist()
    assert doc["holdout_indices"] == cal.holdout_indices.tolist()
    assert len(doc["calibration_files"]) == len(cal.calibration_indices) and doc["source"] == cal.source
    both = np.union1d(cal.calibration_indices, cal.holdout_indices)
    np.testing.assert_array_equal(calibrate_images.dataset_indices(cal.artifacts / calibrate_images.FILE), both)


@pytest.mark.slow
def test_excluded_node_reports_infinite_sqnr_not_a_number(cal):
    base = cal.params_of("minmax")
    node = "/blocks/blocks.3/blocks.3.0/se/conv_expand/Conv"
    result = cal.build(base, nodes_to_exclude=[node], name="minmax_keep_se")
    weight = cal.graph.nodes[node][2][1]
    rows = {(r["tensor"], r["kind"]): r for r in result.tensors}
    assert (weight, "weight") not in rows  # its weight is never quantized
    out = rows[(cal.graph.nodes[node][3][0], "activation")]
    if not out["quantized"]:
        assert out["sqnr_db"] == math.inf and out["local_sqnr_db"] == math.inf
    doc = json.loads((cal.artifacts / "calibration_minmax_keep_se.json").read_text())
    assert doc["nodes_to_exclude"] == [node]
    fp32_rows = [r for r in doc["sqnr"] if not r["quantized"]]
    assert fp32_rows and all(r["sqnr_db"] is None and r["local_sqnr_db"] is None for r in fp32_rows)
    assert all(r["tensor"] != out["tensor"] for r in E.worst_tensors(result.tensors, 1000)
               if not out["quantized"])
    with pytest.raises(CalibrationError, match="no node named"):
        cal.build(base, nodes_to_exclude=["/no/such/Conv"], name="bad")


@pytest.mark.slow
def test_auto_meets_its_target_by_keeping_ranked_nodes_in_fp32(outlier_cal):
    """The outlier channel before the classifier ruins the plain variant; auto finds the classifier
    in the ranking and keeps it, and the path to the outlier, in fp32."""
    cal = outlier_cal
    assert cal.results["minmax"].top1_agreement < cal.params.auto_target_agreement
    (auto,) = cal.build_variants(derived=True)
    target = cal.params.auto_target_agreement
    assert auto.auto["reached"] and auto.top1_agreement >= target
    ranked = auto.auto["ranked_nodes"]
    order = [r["node"] for r in auto.auto["sensitivity"]]
    assert ranked == sorted(ranked, key=order.index)
    assert {"/classifier/Gemm", "/flatten/Flatten", "/conv_head/Conv"} <= set(auto.nodes_to_exclude)
    steps = auto.auto["steps"]
    assert steps[0]["top1_agreement"] < target <= steps[-1]["top1_agreement"]
    assert [t["tried"] for t in steps if t["accepted"]][1:] == ranked
    doc = json.loads((cal.artifacts / "calibration_auto.json").read_text())
    assert doc["method"] == "auto" and doc["nodes_to_exclude"] == auto.nodes_to_exclude
    assert doc["alias_of"] is None and (cal.artifacts / "int8_auto.onnx").exists()
    rows = cal.mixed.speed_rows()
    assert [r["model"] for r in rows] == ["fp32", auto.auto["base"], "auto"]
    assert all(r["median_ms"] > 0 for r in rows) and doc["auto"]["speed"] == rows


def test_island_follows_pass_through_ops():
    """Keeping the classifier's input fp32 takes Flatten, the ReLU folded before it and conv_head."""
    graph = E.GraphIndex(
        producer={"x": (0, "x", "input"), "a": (1, "conv", "Conv"), "b": (2, "relu", "Relu"),
                  "c": (3, "flat", "Flatten"), "y": (4, "gemm", "Gemm")},
        consumers={"x": [(1, "conv", "Conv")], "a": [(2, "relu", "Relu")], "b": [(3, "flat", "Flatten")],
                   "c": [(4, "gemm", "Gemm")], "w2": [(4, "gemm", "Gemm")], "b2": [(4, "gemm", "Gemm")]},
        nodes={"conv": (1, "Conv", ["x", "w"], ["a"]), "relu": (2, "Relu", ["a"], ["b"]),
               "flat": (3, "Flatten", ["b"], ["c"]), "gemm": (4, "Gemm", ["c", "w2", "b2"], ["y"])},
        initializers={"w", "w2", "b2"})
    assert graph.island("gemm") == ["conv", "relu", "flat", "gemm"]
    assert graph.island("conv") == ["conv", "relu", "flat", "gemm"]
    assert graph.weight_kind("b2") == "bias" and graph.weight_kind("w2") == "weight"
