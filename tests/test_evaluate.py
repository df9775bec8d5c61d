"""Evaluation: post-processing, paired statistics on hand-made cases, the one-pass loop,
predictions files, and (slow) agreement with an independent torch computation."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from ghostlab import evaluate as ev
from ghostlab import evaluate_report as evr

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- post-processing

def test_softmax_is_stable_and_normalised():
    p = ev.softmax(np.array([[1000.0, 1000.0, -1000.0], [0.0, 0.0, 0.0]]))
    assert np.allclose(p.sum(1), 1.0)
    assert np.allclose(p[0], [0.5, 0.5, 0.0]) and np.allclose(p[1], 1 / 3)


def test_topk_best_first_ties_to_lower_id():
    ids, probs = ev.topk(np.array([[0.3, 0.3, 0.4], [0.1, 0.6, 0.3]], dtype=np.float32), k=2)
    assert ids.tolist() == [[2, 0], [1, 2]]
    assert np.allclose(probs, [[0.4, 0.3], [0.6, 0.3]])
    ids, _ = ev.topk(np.ones((1, 3), np.float32), k=5)  # fewer classes than k
    assert ids.tolist() == [[0, 1, 2]]


def test_kl_known_value():
    # p = (1/2, 1/2), q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    kl = ev.kl_divergence(np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[math.log(3), 0.0], [1.0, 2.0]]))
    assert kl[0] == pytest.approx(0.5 * math.log(4 / 3), rel=1e-9)
    assert kl[1] == pytest.approx(0.0, abs=1e-12)


def test_accuracy_top1_top5():
    labels = np.array([0, 1, 2, 3])
    top = np.array([[0, 9, 9, 9, 9], [9, 1, 9, 9, 9], [9, 9, 9, 9, 2], [9, 9, 9, 9, 9]])
    assert ev.accuracy(top, labels) == {"top1": 25.0, "top5": 75.0, "n": 4}


# ---------------------------------------------------------------- paired statistics, exact cases

def test_paired_stats_hand_made_case():
    # 10 images. fp32 is right on 0-6; int8 is right on 0-3 and 7.
    #   0-3: both right, same prediction              -> agree
    #   4-6: fp32 right, int8 wrong (right -> wrong)  b = 3
    #   7:   fp32 wrong, int8 right (wrong -> right)  c = 1
    #   8:   both wrong, same wrong class             -> agree, no flip
    #   9:   both wrong, different wrong classes      -> disagree, no flip
    # agreement = 5/10 = 50 %; top-1 70 % -> 50 %, drop = (3 - 1)/10 = 20 pp.
    # McNemar exact: n = b + c = 4, X ~ Bin(4, 1/2),
    #   P(X <= min(b, c) = 1) = (C(4,0) + C(4,1)) / 2^4 = 5/16, two-sided p = 2 * 5/16 = 0.625.
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    fp32 = np.array([0, 1, 2, 3, 0, 1, 2, 0, 3, 2])
    int8 = np.array([0, 1, 2, 3, 1, 2, 3, 3, 3, 0])
    s = ev.paired_stats(labels, fp32, int8, kl=np.full(10, 0.25), draws=200, seed=0)
    assert s["agreement"] == 50.0
    assert (s["flips_right_to_wrong"], s["flips_wrong_to_right"]) == (3, 1)
    assert s["mcnemar_p"] == 0.625
    assert s["top1_drop"] == pytest.approx(20.0)
    assert s["kl_mean"] == pytest.approx(0.25)
    lo, hi = s["top1_drop_ci95"]
    assert lo <= 20.0 <= hi
    top1 = (ev.accuracy(fp32[:, None], labels)["top1"], ev.accuracy(int8[:, None], labels)["top1"])
    assert top1 == (70.0, 50.0)


def test_mcnemar_exact_values():
    # b = 10, c = 0: P(X <= 0) = 1/2^10, p = 2/1024 = 1/512
    assert ev.mcnemar_exact_p(10, 0) == 1 / 512
    assert ev.mcnemar_exact_p(0, 10) == 1 / 512
    # no discordant pairs: nothing to test against, p = 1; balanced flips: p capped at 1
    assert ev.mcnemar_exact_p(0, 0) == 1.0
    assert ev.mcnemar_exact_p(3, 3) == 1.0
    # b = 6, c = 1: P(X <= 1) = (1 + 7)/128, p = 16/128 = 0.125
    assert ev.mcnemar_exact_p(6, 1) == 0.125


@pytest.mark.parametrize("b,c", [(1, 0), (7, 2), (40, 25), (123, 87)])
def test_mcnemar_matches_fraction_sum(b, c):
    n = b + c
    tail = sum(Fraction(math.comb(n, i), 2**n) for i in range(min(b, c) + 1))
    assert ev.mcnemar_exact_p(b, c) == pytest.approx(float(min(Fraction(1), 2 * tail)), rel=1e-12)


def test_mcnemar_large_counts_near_normal_approximation():
    # ImageNet-sized flip counts stay exact and fast; close to the continuity-corrected normal tail
    b, c = 3000, 2800
    z = (abs(b - c) - 1) / math.sqrt(b + c)
    assert ev.mcnemar_exact_p(b, c) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=0.05)


def test_bootstrap_no_flips_is_zero_width():
    ok = np.array([True, False, True, True])
    assert ev.bootstrap_drop_ci(ok, ok, draws=100, seed=0) == (0.0, 0.0)


def test_bootstrap_matches_index_resampling_and_is_seeded():
    rng = np.random.default_rng(1)
    n = 400
    ref = rng.random(n) < 0.8
    other = ref.copy()
    flip = rng.choice(n, 40, replace=False)
    other[flip] = ~other[flip]
    a = ev.bootstrap_drop_ci(ref, other, draws=4000, seed=3)
    assert a == ev.bootstrap_drop_ci(ref, other, draws=4000, seed=3)
    # the textbook way: resample image indices in pairs
    idx = np.random.default_rng(7).integers(0, n, size=(4000, n))
    drops = 100.0 * (ref[idx].mean(1) - other[idx].mean(1))
    lo, hi = np.quantile(drops, [0.025, 0.975])
    assert a[0] == pytest.approx(lo, abs=0.6) and a[1] == pytest.approx(hi, abs=0.6)
    observed = 100.0 * (ref.mean() - other.mean())
    assert a[0] < observed < a[1]


def test_class_losses_ranks_by_drop_and_names_classes():
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    fp32 = np.array([0, 0, 1, 1, 1, 1, 2, 0])
    int8 = np.array([1, 0, 1, 0, 0, 1, 2, 2])  # class 0: -50 pp, class 1: -50 pp (2 images), class 2: +50 pp
    rows = ev.class_losses(labels, fp32, int8, ["cat", "dog", "eel"])
    assert [r["class"] for r in rows] == ["dog", "cat"]  # same drop: more images lost first
    assert rows[0]["images_lost"] == 2 and rows[0]["drop"] == 50.0 and rows[0]["int8_top1"] == 50.0


def test_evaluation_indices_excludes_calibration_then_caps():
    assert ev.evaluation_indices(6, np.array([1, 4]), True, None).tolist() == [0, 2, 3, 5]
    assert ev.evaluation_indices(6, np.array([1, 4]), False, 3).tolist() == [0, 1, 2]
    assert ev.evaluation_indices(6, np.array([1, 4]), True, 2).tolist() == [0, 2]


# ---------------------------------------------------------------- the one-pass loop

class FakeSession:
    """Looks like a runtimes.Session: logits = x[:, 0, 0, :C] @ mix, records batches."""

    def __init__(self, mix):
        self.mix, self.seen = np.asarray(mix, dtype=np.float32), []

    def __call__(self, x):
        self.seen.append(x.shape[0])
        return x[:, 0, 0, :self.mix.shape[0]] @ self.mix


def _batches(x, y, bs):
    for s in range(0, len(y), bs):
        yield x[s:s + bs], y[s:s + bs], np.arange(s, min(s + bs, len(y))) + 100


def test_predict_feeds_every_batch_to_every_model():
    rng = np.random.default_rng(0)
    n, c = 23, 7
    x = rng.normal(size=(n, 3, 1, c)).astype(np.float32)
    y = rng.integers(0, c, n)
    eye = np.eye(c)
    noisy = eye + 0.3 * rng.normal(size=(c, c))
    sessions = {"fp32": FakeSession(eye), "int8_a": FakeSession(noisy), "int8_same": FakeSession(eye)}
    preds = ev.predict(sessions, _batches(x, y, 5), n)
    assert [s.seen for s in sessions.values()] == [[5, 5, 5, 5, 3]] * 3
    assert preds.labels.tolist() == y.tolist() and preds.indices.tolist() == list(range(100, 100 + n))
    logits = x[:, 0, 0, :]
    assert preds.models["fp32"].top1.tolist() == logits.argmax(1).tolist()
    assert np.allclose(preds.models["fp32"].top_probs[:, 0], ev.softmax(logits).max(1))
    assert preds.models["fp32"].kl_to_reference is None
    assert np.allclose(preds.models["int8_same"].kl_to_reference, 0.0)
    assert np.allclose(preds.models["int8_a"].kl_to_reference, ev.kl_divergence(logits, logits @ noisy))
    assert preds.models["int8_a"].top_ids.shape == (n, 5)


# ---------------------------------------------------------------- predictions file

def test_predictions_csv_round_trip(tmp_path):
    files = ["val/a.JPEG", "val/b, with comma.JPEG"]
    path = ev.write_predictions_csv(tmp_path / "predictions_fp32.csv", files, np.array([3, 1]),
                                    np.array([[3, 1, 0, 2, 4], [0, 1, 2, 3, 4]]),
                                    np.array([[0.5, 0.2, 0.1, 0.1, 0.05], [0.4, 0.3, 0.1, 0.1, 0.05]], np.float32))
    lines = path.read_text().splitlines()
    assert lines[0] == "file,label,pred_1,pred_2,pred_3,pred_4,pred_5,prob_1,prob_2,prob_3,prob_4,prob_5"
    assert lines[1] == "val/a.JPEG,3,3,1,0,2,4,0.5,0.2,0.1,0.1,0.05"
    rows = ev.read_predictions_csv(path)
    assert rows[1]["file"] == "val/b, with comma.JPEG" and rows[1]["pred"] == [0, 1, 2, 3, 4]
    assert rows[1]["prob"][:2] == [0.4, 0.3]


# ---------------------------------------------------------------- reference rows

def _evaluation(model_name, num_classes, spec):
    acc = {"fp32": {"top1": 73.9, "top5": 91.5, "n": 50_000}}
    return ev.Evaluation(model_name, num_classes, [], "seed: ...", None, acc, {}, {}, {}, {}, preprocess_spec=spec)


def test_reference_rows_only_for_ghostnet_100_on_imagenet_and_say_which_preprocessing_matches():
    from ghostlab.config import IMAGENET_MEAN, IMAGENET_STD

    seed = {"name": "seed", "resize": 256, "crop": 224, "interpolation": "bilinear",
            "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    rows = evr.accuracy_rows(_evaluation("ghostnet_100", 1000, seed))
    refs = {r["model"]: r for r in rows[1:]}
    assert [(r["top-1 %"], r["top-5 %"]) for r in refs.values()] == [(73.9, 91.4), (73.958, 91.542), (73.974, 91.46)]
    matching = [m for m, r in refs.items() if r["preprocessing"].endswith("the same as ours")]
    assert matching == ["reference: timm, older figure (deployment recipe)"]  # bilinear 256 -> 224
    bicubic = {**seed, "interpolation": "bicubic"}
    assert [m for m, r in {r["model"]: r for r in evr.accuracy_rows(_evaluation("ghostnet_100", 1000, bicubic))[1:]}
            .items() if r["preprocessing"].endswith("the same as ours")] == ["reference: timm results table (today)"]
    assert len(evr.accuracy_rows(_evaluation("ghostnet_100", 10, seed))) == 1  # not ImageNet-1k
    assert len(evr.accuracy_rows(_evaluation("ghostnet_050", 1000, seed))) == 1  # no published row


# ---------------------------------------------------------------- accuracy vs latency

def _bench_doc():
    row = lambda m, b, t, p50: {"model": m, "batch": b, "threads": t, "sessions": 1, "p50_ms": p50, "img_s": 1.0}
    return {"input_shape": [3, 224, 224], "results": [
        row("fp32", 1, 1, 10.0), row("int8_a", 1, 1, 4.0), row("int8_b", 1, 1, 5.0), row("torch", 1, 1, 30.0),
        row("fp32", 8, 2, 50.0), row("int8_a", 8, 2, 20.0)]}


def test_latency_points_pick_one_setting_and_mark_the_pareto_front():
    acc = {"fp32": {"top1": 90.0}, "int8_a": {"top1": 88.0}, "int8_b": {"top1": 87.0}}
    pts = {p["model"]: p for p in evr.latency_points(acc, _bench_doc())}
    assert set(pts) == {"fp32", "int8_a", "int8_b"}  # torch has no accuracy here
    assert pts["fp32"]["latency_ms"] == 10.0 and pts["fp32"]["setting"].startswith("batch 1, 1 thread")
    # int8_b is slower and less accurate than int8_a: dominated
    assert (pts["fp32"]["pareto"], pts["int8_a"]["pareto"], pts["int8_b"]["pareto"]) == (True, True, False)


def test_latency_points_read_defensively():
    acc = {"fp32": {"top1": 90.0}}
    assert evr.latency_points(acc, {}) == []
    assert evr.latency_points(acc, {"results": [{"model": "fp32", "p50_ms": None}, "junk", 3]}) == []
    # one reader (bench.select): only the layout bench writes, not keys it never wrote
    assert evr.latency_points(acc, [{"model": "fp32", "p50": "7.5"}]) == []
    assert evr.latency_points(acc, {"results": [{"model": "fp32", "p50_ms": 7.5, "batch": 1}]})[0]["latency_ms"] == 7.5
    assert evr.pareto_front([(1, 1), (1, 1)]) == [True, True]  # ties dominate neither


# ---------------------------------------------------------------- against torch, on demo images

def _discriminative_tiny_ghostnet(params, images, num_classes=10):
    """The tiny demo checkpoint with a seeded classifier over standardised features: its outputs
    vary from image to image (the 1-epoch checkpoint alone predicts one class for every image)."""
    import torch

    from ghostlab import models

    model = models.load_model(params, images.dataset.num_classes)
    x = torch.from_numpy(images.normalized(np.arange(len(images))))
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
    mean, std = feats.mean(0), feats.std(0).clamp_min(1e-6)
    w = torch.randn(num_classes, feats.shape[1], generator=torch.Generator().manual_seed(0)) / feats.shape[1] ** 0.5
    head = torch.nn.Linear(feats.shape[1], num_classes)
    head.weight.data, head.bias.data = w / std, -(w / std) @ mean
    model.classifier = head
    return model.eval()


@pytest.mark.slow
def test_top1_top5_equal_torch_on_the_same_tensors(tmp_path):
    import torch

    from ghostlab import data, demo
    from ghostlab.config import load_params
    from ghostlab.export import export_onnx
    from ghostlab.runtimes import onnx_candidate

    params = demo.prepare(load_params(ROOT / "params" / "tiny.yaml"), show_progress=False)
    images = data.cached_images(data.load_dataset(params), data.preprocess_for(params), params, show_progress=False)
    model = _discriminative_tiny_ghostnet(params, images)
    onnx_path = export_onnx(model, tmp_path / "model.onnx", params.model.input_size)

    preds = ev.predict({"fp32": onnx_candidate("fp32", onnx_path).session()}, images.batches(8), len(images))
    ours = ev.accuracy(preds.models["fp32"].top_ids, preds.labels)

    # independent: torch logits on the same tensors, torch softmax and topk, counted by hand
    x = torch.from_numpy(images.normalized(np.arange(len(images))))
    with torch.no_grad():
        top5 = torch.softmax(model(x), dim=1).topk(5, dim=1).indices.numpy()
    labels = images.labels
    top1_hits = sum(int(top5[i, 0] == labels[i]) for i in range(len(labels)))
    top5_hits = sum(int(labels[i] in top5[i]) for i in range(len(labels)))
    assert len(set(top5[:, 0])) > 2  # a test with one predicted class could not fail on ordering
    assert ours == {"top1": 100.0 * top1_hits / len(labels), "top5": 100.0 * top5_hits / len(labels),
                    "n": len(labels)}
    assert preds.models["fp32"].top_ids.tolist() == top5.tolist()
    assert preds.labels.tolist() == labels.tolist()


# ---------------------------------------------------------------- the step on a run folder

def _seed_dataset(root, per_class=4, classes=4, size=40):
    from PIL import Image

    (root / "val").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(per_class * classes):
        name = f"img_{i:03d}.png"
        Image.fromarray((rng.random((size, size + 4, 3)) * 255).astype(np.uint8)).save(root / "val" / name)
        lines.append(f"{name} {i % classes}")
    (root / "val_label.txt").write_text("\n".join(lines) + "\n")
    (root / "label.txt").write_text("".join(f"class {c}, with comma\n" for c in range(classes)))


@pytest.mark.slow
def test_evaluate_run_writes_the_contract_and_leaves_calibration_images_out(tmp_path):
    import json
    import shutil

    from ghostlab import calibrate_images, data, export, models
    from ghostlab.config import load_params
    from ghostlab.runfolder import NotebookRun

    _seed_dataset(tmp_path / "data")
    (tmp_path / "p.yaml").write_text(
        "model: {name: ghostnet_050, weights: random, input_size: 32, num_classes: 4}\n"
        "data: {dataset: seed, root: data, preprocessing: custom, resize: 36, crop: 32, cache_dir: cache}\n"
        "calibrate: {num_images: 4, variants: [{name: copy, method: minmax}]}\n"
        "evaluate: {batch_size: 5, bootstrap: 50, exclude_calibration: true}\n")
    params = load_params(tmp_path / "p.yaml")
    run = NotebookRun("04_evaluate", params, tmp_path / "run")
    export.export_onnx(models.load_model(params, 4), run.artifact("model.onnx"), 32)
    shutil.copy(run.artifact("model.onnx"), run.artifact("int8_copy.onnx"))  # a stand-in: same outputs
    cached, drawn = data.calibration_set(params, data.preprocess_for(params), show_progress=False)
    calibrate_images.write(run.artifact(calibrate_images.FILE), cached, drawn[:3], drawn[3:], "eval", "eval", 0)

    result = ev.run(run, progress=False)

    doc = json.loads(run.artifact("evaluation.json").read_text())
    ort = {m for m, facts in doc["models"].items() if facts["runtime"] == "onnxruntime"}
    assert ort == {"fp32", "int8_copy"} and set(doc["paired"]) == set(doc["models"]) - {"fp32"}
    assert {"ov_fp32", "ov_int8_copy"} <= set(doc["models"])  # OpenVINO runs the same files
    assert doc["models"]["ov_int8_copy"]["precision"] == "fp32"  # read from the graph: a copy of fp32
    assert doc["recommendation"] is None  # no benchmark.json: nothing timed
    assert {"top1", "top5", "n"} <= set(doc["models"]["fp32"]) and doc["models"]["fp32"]["n"] == 12
    paired = doc["paired"]["int8_copy"]
    assert {"agreement", "flips_right_to_wrong", "flips_wrong_to_right", "mcnemar_p", "top1_drop_ci95"} <= set(paired)
    assert (paired["agreement"], paired["flips_right_to_wrong"], paired["mcnemar_p"]) == (100.0, 0, 1.0)
    assert doc["data"]["calibration_from_eval_set"] and doc["data"]["calibration_excluded"] == 4
    assert doc["reference"] == []  # ghostnet_050 on 4 classes: no published row applies

    # the CSV names the evaluated files: every image but the 4 calibration ones, in dataset order
    _, calib = data.calibration_set(params, data.preprocess_for(params), show_progress=False)
    rows = ev.read_predictions_csv(run.artifact("predictions_fp32.csv"))
    all_files = [f"val/img_{i:03d}.png" for i in range(16)]
    assert [r["file"] for r in rows] == [f for i, f in enumerate(all_files) if i not in set(calib.tolist())]
    assert [r["label"] for r in rows] == [int(f[8:11]) % 4 for f in (r["file"] for r in rows)]
    assert all(len(r["pred"]) == 4 and r["prob"] == sorted(r["prob"], reverse=True) for r in rows)
    assert rows == ev.read_predictions_csv(run.artifact("predictions_int8_copy.csv"))
    assert result.accuracy["fp32"]["top1"] == pytest.approx(
        100.0 * np.mean([r["pred"][0] == r["label"] for r in rows]))
    text = "\n".join(str(r) for r in evr.data_rows(result))
    assert "excluded" in text and "4 calibration images" in text
    # one speed answer only (03_benchmark's): the pass's wall time, labelled as such
    assert "speed" not in doc and all("images_per_s" not in m for m in doc["models"].values())
    assert doc["pass"]["images"] == 12 and doc["pass"]["wall_seconds"] > 0 and "not a speed" in doc["pass"]["what"]
    assert "not a speed comparison" in text
    assert doc["top_k"] == {"k": 4, "name": "top-4", "chance_percent": {"top1": 25.0, "top5": 100.0}}


@pytest.mark.slow
def test_cli_evaluate_prints_the_tables_and_says_what_to_run_first(tmp_path, capsys):
    import shutil

    from ghostlab import cli, export, models
    from ghostlab.config import load_params

    _seed_dataset(tmp_path / "data", per_class=2)
    (tmp_path / "p.yaml").write_text(
        "model: {name: ghostnet_050, weights: random, input_size: 32, num_classes: 4}\n"
        "data: {dataset: seed, root: data, preprocessing: custom, resize: 36, crop: 32, cache_dir: cache}\n"
        "calibrate: {num_images: 4, variants: [{name: copy, method: minmax}]}\n"
        "evaluate: {bootstrap: 20}\n")
    assert cli.main(["evaluate", str(tmp_path / "p.yaml"), "--out", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "holds no exported model" in err and "--only 01,02" in err and len(err.strip().splitlines()) == 1

    run_dir = tmp_path / "run"
    export.export_onnx(models.load_model(load_params(tmp_path / "p.yaml"), 4), run_dir / "artifacts" / "model.onnx", 32)
    shutil.copy(run_dir / "artifacts" / "model.onnx", run_dir / "artifacts" / "int8_copy.onnx")
    assert cli.main(["evaluate", str(tmp_path / "p.yaml"), "--out", str(run_dir), "-p", "evaluate.max_images=6"]) == 0
    out = capsys.readouterr().out
    assert "on 6 images" in out and "custom: Resize(36, bilinear)" in out
    assert "McNemar p" in out and "identical top-1 correctness" in out
    assert [line.split()[0] for line in out.splitlines() if line.startswith(("fp32", "int8_"))] == \
        ["fp32", "int8_copy", "int8_copy"]  # accuracy table, then the paired table
    assert (run_dir / "artifacts" / "evaluation.json").exists()


# ---------------------------------------------------------------- notebook 04 in the tiny pipeline

@pytest.mark.slow
def test_tiny_run_report_has_every_model_with_paired_stats_and_matches_torch(tiny_run):
    import json

    import torch

    from ghostlab import data, demo, models

    res = tiny_run.results.get("04_evaluate")
    assert res is not None and res.status == "ok", getattr(res, "error", "04_evaluate did not run")
    doc = json.loads(tiny_run.artifact("evaluation.json").read_text())
    int8 = sorted(p.stem for p in (tiny_run.run_dir / "artifacts").glob("int8_*.onnx"))
    ort = {m for m, facts in doc["models"].items() if facts["runtime"] == "onnxruntime"}
    assert ort == {"fp32", *int8} and set(doc["paired"]) == set(doc["models"]) - {"fp32"}
    assert all(facts["runtime"] == "openvino" for m, facts in doc["models"].items() if m not in ort)
    page = (tiny_run.run_dir / "04_evaluate.html").read_text()
    assert "McNemar p" in page and "top-1 drop" in page and page.count("data:image/png;base64,") >= 2
    assert all(m in page for m in int8)

    # fp32 top-1/top-5 equal the run's torch model on the same preprocessed tensors
    params = demo.prepare(tiny_run.params, show_progress=False)
    images = data.cached_images(data.load_dataset(params), data.preprocess_for(params), params, show_progress=False)
    rows = ev.read_predictions_csv(tiny_run.artifact("predictions_fp32.csv"))
    where = {str(f.relative_to(images.dataset.root)): i for i, f in enumerate(images.files)}
    idx = np.array([where[r["file"]] for r in rows])
    model = models.load_model(params, images.dataset.num_classes)
    with torch.no_grad():
        top5 = torch.softmax(model(torch.from_numpy(images.normalized(idx))), 1).topk(
            min(5, images.dataset.num_classes), 1).indices.numpy()
    labels = images.labels[idx]
    assert doc["models"]["fp32"]["n"] == len(rows) == len(labels)
    assert doc["models"]["fp32"]["top1"] == pytest.approx(100.0 * np.mean(top5[:, 0] == labels), abs=1e-9)
    assert doc["models"]["fp32"]["top5"] == pytest.approx(100.0 * np.mean((top5 == labels[:, None]).any(1)), abs=1e-9)
    assert [r["pred"][0] for r in rows] == top5[:, 0].tolist()


# ---------------------------------------------------------------- chance level, one speed answer

@pytest.mark.parametrize("classes, topk, chance1, chancek", [(1000, "top-5", 0.1, 0.5), (10, "top-5", 10.0, 50.0),
                                                             (4, "top-4", 25.0, 100.0)])
def test_top_k_shows_its_chance_level_and_is_top_c_for_few_classes(classes, topk, chance1, chancek):
    # top-5 of 10 classes is 50 % by chance; "top-5" of 4 classes is every class
    (row,) = evr.accuracy_rows(_evaluation("ghostnet_050", classes, {}))
    assert row["top-1 by chance %"] == pytest.approx(chance1)
    assert row[f"{topk} %"] == 91.5 and row[f"{topk} by chance %"] == pytest.approx(chancek)
    assert classes > 5 or "top-5 %" not in row
    values = evr.summary_values(_evaluation_with_data("ghostnet_050", classes))
    assert values["top1_by_chance"] == pytest.approx(chance1)
    assert values[f"{topk.replace('-', '')}_by_chance"] == pytest.approx(chancek)
    assert f"fp32_{topk.replace('-', '')}" in values


def _evaluation_with_data(model_name, num_classes):
    e = _evaluation(model_name, num_classes, {})
    e.data = {"evaluated": 50_000}
    return e


def test_the_evaluation_gives_no_speed_answer_of_its_own():
    # an unwarmed, non-interleaved pass said int8 was 2.3x faster while 03_benchmark said 0.76x
    e = _evaluation("ghostnet_050", 10, {})
    e.speed = ev.pass_facts(1000, 3, 12.5)
    doc = ev.evaluation_json(e)
    assert "speed" not in doc and doc["pass"]["wall_seconds"] == 12.5
    assert "not a speed comparison" in doc["pass"]["what"]
    assert all("images_per_s" not in m for m in doc["models"].values())
    values = evr.summary_values(_evaluation_with_data("ghostnet_050", 10))
    assert not [k for k in values if "per_s" in k or "projected" in k]
    assert not hasattr(ev, "speed_rows")


def test_index_says_what_top_1_is_by_chance(tmp_path):
    import json

    from ghostlab import index

    e = _evaluation("ghostnet_050", 10, {})
    e.data = {"evaluated": 50_000}
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / "evaluation.json").write_text(json.dumps(ev.evaluation_json(e)))
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "ok", "profile": "p", "params": {}, "notebooks": {}}))
    assert index.verdict(tmp_path)["top1_by_chance"] == pytest.approx(10.0)
    page = index.write_index(tmp_path).read_text()
    assert "Top-1 by chance: 10" in page and "1 of 10 classes" in page
