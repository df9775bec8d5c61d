"""Top-1/top-5 for the fp32 ONNX model and every int8 variant, paired fp32 ↔ int8 statistics,
predictions files.

One pass over the data: each batch of preprocessed images goes through every ONNX Runtime
session before the next batch is read, so all models see exactly the same tensors and the
cache is read once. Post-processing is the reference one: softmax, then top-k (ties go to
the lower class id, as ``argmax`` does).

Units: accuracies, agreement and drops are percent / percentage points; KL is in nats.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from . import calibrate_images
from .bench import read_result
from .errors import DataError, RunError
from .ghostnet import REFERENCE_ROWS

TOPK = 5
REFERENCE_MODEL = "fp32"
UNITS = {"top1": "percent", "top5": "percent", "agreement": "percent", "top1_drop": "percentage points",
         "top1_drop_ci95": "percentage points", "kl_mean": "nats"}

# ---------------------------------------------------------------- post-processing

def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (max-subtracted, so large logits do not overflow)."""
    z = np.asarray(logits, dtype=np.float32)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax in float64 (finite even where softmax underflows)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def topk(probs: np.ndarray, k: int = TOPK) -> tuple[np.ndarray, np.ndarray]:
    """(ids, probs) of the ``k`` most probable classes per row, best first; ties to the lower id."""
    k = min(k, probs.shape[1])
    ids = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return ids.astype(np.int64), np.take_along_axis(probs, ids, axis=1)


def kl_divergence(ref_logits: np.ndarray, other_logits: np.ndarray) -> np.ndarray:
    """Per-row KL(softmax(ref) || softmax(other)) in nats."""
    lp, lq = log_softmax(ref_logits), log_softmax(other_logits)
    return np.maximum((np.exp(lp) * (lp - lq)).sum(axis=1), 0.0)


# ---------------------------------------------------------------- the pass over the data

@dataclass
class ModelPredictions:
    """One model's outputs over the evaluated images (row i = ``Predictions.indices[i]``)."""

    name: str
    top_ids: np.ndarray
    """(n, k) int64 class ids, most probable first."""
    top_probs: np.ndarray
    """(n, k) float32 softmax probabilities of ``top_ids``."""
    kl_to_reference: np.ndarray | None = None
    """(n,) KL(reference || this model) in nats; None for the reference itself."""
    seconds: float = 0.0
    """Time spent in this model's session and post-processing."""

    @property
    def top1(self) -> np.ndarray:
        return self.top_ids[:, 0]


@dataclass
class Predictions:
    labels: np.ndarray
    """(n,) int64 ground truth."""
    indices: np.ndarray
    """(n,) dataset index of each row."""
    models: dict[str, ModelPredictions]
    seconds: float = 0.0
    """Wall time of the whole pass (reading the cache + every model)."""

    def __len__(self) -> int:
        return len(self.labels)


def predict(sessions: dict[str, Any], batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
            n: int, k: int = TOPK, progress: bool = False) -> Predictions:
    """Feed every batch ``(x, y, idx)`` to every session (first = the reference for KL).

    ``sessions`` maps a candidate name to its ``runtimes.Session`` (anything ``session(x) -> logits``);
    ``n`` is the number of images the batches hold. Only top-k and per-image KL are kept,
    so memory stays O(n·k) however many classes there are.
    """
    if not sessions:
        raise RunError("no ONNX models to evaluate: run 01_export (and 02_calibrate) first")
    names = list(sessions)
    labels = np.empty(n, dtype=np.int64)
    indices = np.empty(n, dtype=np.int64)
    out: dict[str, dict[str, Any]] = {m: {"ids": None, "probs": None, "kl": None, "s": 0.0} for m in names}
    pos = 0
    t_start = time.perf_counter()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=f"evaluating {len(names)} models", unit="img", leave=False)
    for x, y, idx in batches:
        b = len(y)
        if pos + b > n:
            raise RunError(f"the batches hold more than the {n} images announced")
        labels[pos:pos + b], indices[pos:pos + b] = y, idx
        ref_logits = None
        for m in names:
            t0 = time.perf_counter()
            logits = sessions[m](x)
            ids, probs = topk(softmax(logits), k)
            slot = out[m]
            if slot["ids"] is None:
                kk = ids.shape[1]
                slot["ids"] = np.empty((n, kk), dtype=np.int64)
                slot["probs"] = np.empty((n, kk), dtype=np.float32)
                if m != names[0]:
                    slot["kl"] = np.empty(n, dtype=np.float64)
            slot["ids"][pos:pos + b], slot["probs"][pos:pos + b] = ids, probs
            if m == names[0]:
                ref_logits = logits
            else:
                slot["kl"][pos:pos + b] = kl_divergence(ref_logits, logits)
            slot["s"] += time.perf_counter() - t0
        pos += b
        if bar is not None:
            bar.update(b)
    if bar is not None:
        bar.close()
    if pos != n:
        raise RunError(f"the batches held {pos} images, {n} were announced")
    models = {}
    for m, o in out.items():
        if o["ids"] is None:  # no images at all
            o.update(ids=np.empty((0, k), np.int64), probs=np.empty((0, k), np.float32),
                     kl=None if m == names[0] else np.empty(0))
        models[m] = ModelPredictions(m, o["ids"], o["probs"], o["kl"], o["s"])
    return Predictions(labels, indices, models, time.perf_counter() - t_start)


# ---------------------------------------------------------------- statistics

def accuracy(top_ids: np.ndarray, labels: np.ndarray) -> dict:
    """Top-1 and top-5 (percent) and the image count."""
    n = len(labels)
    if n == 0:
        return {"top1": float("nan"), "top5": float("nan"), "n": 0}
    hit = top_ids == labels[:, None]
    return {"top1": 100.0 * float(hit[:, 0].mean()), "top5": 100.0 * float(hit[:, :TOPK].any(axis=1).mean()), "n": n}


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for ``b`` and ``c`` discordant pairs.

    Under the null each discordant pair is a fair coin: p = min(1, 2·P(X ≤ min(b, c))) with
    X ~ Binomial(b + c, 1/2). Summed in exact integers (Python ints do not overflow), so it
    is exact for any count; the division rounds once.
    """
    n, low = b + c, min(b, c)
    if n == 0:
        return 1.0
    term, tail = 1, 1  # C(n, 0)
    for i in range(low):
        term = term * (n - i) // (i + 1)  # C(n, i + 1), exact
        tail += term
    return min(1.0, 2 * tail / 2**n)


def bootstrap_drop_ci(ref_correct: np.ndarray, other_correct: np.ndarray, draws: int = 1000,
                      seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the top-1 drop (percentage points), images resampled in pairs.

    Resampling n image pairs with replacement only changes how many right→wrong and
    wrong→right flips the sample holds, so each draw is one multinomial draw over
    (right→wrong, wrong→right, unchanged): the same distribution as resampling indices,
    in O(draws) instead of O(draws·n).
    """
    n = len(ref_correct)
    if n == 0 or draws <= 0:
        return (float("nan"), float("nan"))
    r2w = int(np.sum(ref_correct & ~other_correct))
    w2r = int(np.sum(~ref_correct & other_correct))
    probs = np.array([r2w, w2r, n - r2w - w2r], dtype=np.float64) / n
    counts = np.random.default_rng(seed).multinomial(n, probs, size=draws)
    drops = 100.0 * (counts[:, 0] - counts[:, 1]) / n
    alpha = (1 - level) / 2
    lo, hi = np.quantile(drops, [alpha, 1 - alpha])
    return (float(lo), float(hi))


def paired_stats(labels: np.ndarray, ref_top1: np.ndarray, other_top1: np.ndarray,
                 kl: np.ndarray | None = None, draws: int = 1000, seed: int = 0) -> dict:
    """fp32 ↔ int8 on the same images: agreement, flips, exact McNemar p, bootstrap drop CI, KL."""
    ref_ok, other_ok = ref_top1 == labels, other_top1 == labels
    n = len(labels)
    r2w = int(np.sum(ref_ok & ~other_ok))
    w2r = int(np.sum(~ref_ok & other_ok))
    lo, hi = bootstrap_drop_ci(ref_ok, other_ok, draws, seed)
    return {
        "n": n,
        "agreement": 100.0 * float(np.mean(ref_top1 == other_top1)) if n else float("nan"),
        "flips_right_to_wrong": r2w,
        "flips_wrong_to_right": w2r,
        "top1_drop": 100.0 * (r2w - w2r) / n if n else float("nan"),
        "mcnemar_p": mcnemar_exact_p(r2w, w2r),
        "top1_drop_ci95": [lo, hi],
        "bootstrap_draws": draws,
        "kl_mean": float(np.mean(kl)) if kl is not None and len(kl) else float("nan"),
    }


def class_losses(labels: np.ndarray, ref_top1: np.ndarray, other_top1: np.ndarray,
                 class_names: list[str], top: int = 10) -> list[dict]:
    """The ``top`` classes whose top-1 drops most from reference to other (only classes that lose)."""
    num = max(len(class_names), int(labels.max()) + 1 if len(labels) else 0)
    n = np.bincount(labels, minlength=num)
    ref_hits = np.bincount(labels, weights=(ref_top1 == labels), minlength=num)
    other_hits = np.bincount(labels, weights=(other_top1 == labels), minlength=num)
    lost = ref_hits - other_hits
    order = sorted((c for c in range(num) if n[c] and lost[c] > 0),
                   key=lambda c: (-lost[c] / n[c], -lost[c], c))[:top]
    return [{"class_id": c, "class": class_names[c] if c < len(class_names) else str(c),
             "images": int(n[c]), "fp32_top1": 100.0 * ref_hits[c] / n[c],
             "int8_top1": 100.0 * other_hits[c] / n[c], "drop": 100.0 * lost[c] / n[c],
             "images_lost": int(lost[c])} for c in order]


# ---------------------------------------------------------------- files

def write_predictions_csv(path: str | Path, files: list[str], labels: np.ndarray,
                          top_ids: np.ndarray, top_probs: np.ndarray) -> Path:
    """``file,label,pred_1..pred_k,prob_1..prob_k``: one row per image, best class first."""
    path = Path(path)
    k = top_ids.shape[1]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file", "label"] + [f"pred_{i + 1}" for i in range(k)] + [f"prob_{i + 1}" for i in range(k)])
        for fname, y, ids, ps in zip(files, labels, top_ids, top_probs):
            w.writerow([fname, int(y)] + [int(i) for i in ids] + [f"{float(p):.6g}" for p in ps])
    tmp.replace(path)
    return path


def read_predictions_csv(path: str | Path) -> list[dict]:
    """The rows of a predictions file, ids and probabilities parsed."""
    with Path(path).open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["label"] = int(r["label"])
        r["pred"] = [int(r.pop(k)) for k in sorted((k for k in list(r) if k.startswith("pred_")),
                                                  key=lambda s: int(s[5:]))]
        r["prob"] = [float(r.pop(k)) for k in sorted((k for k in list(r) if k.startswith("prob_")),
                                                    key=lambda s: int(s[5:]))]
    return rows


# ---------------------------------------------------------------- the notebook's step

@dataclass
class Evaluation:
    """Everything notebook 04 shows; ``evaluation.json`` holds the same numbers."""

    model_name: str
    num_classes: int
    class_names: list[str]
    preprocess: str
    """``data.Preprocess.describe()``: the preprocessing that produced these numbers."""
    predictions: Predictions
    accuracy: dict[str, dict]
    """model -> {top1, top5, n}."""
    paired: dict[str, dict]
    """candidate -> paired_stats(...) against ORT fp32 (every candidate but the reference)."""
    class_losses: dict[str, list[dict]]
    data: dict
    """Dataset facts: images, evaluated, calibration source and overlap."""
    speed: dict
    """``pass_facts``: the evaluation pass's wall time only; how fast each model runs is 03_benchmark's."""
    preprocess_spec: dict = field(default_factory=dict)
    """``Preprocess.to_dict()``: resize, crop, interpolation, mean, std."""
    written: list[Path] = field(default_factory=list)
    candidates: dict[str, dict] = field(default_factory=dict)
    """candidate -> ``runtimes.Candidate.facts()``: runtime, precision, label, artifact, size."""
    recommendation: dict | None = None
    """``recommend.recommend(...)``: what to ship, and why (evaluation.json's ``recommendation``)."""


def evaluation_indices(num_images: int, calibration: np.ndarray | None, exclude: bool,
                       max_images: int | None) -> np.ndarray:
    """Which dataset rows to evaluate: all, minus calibration rows when asked, then the first ``max_images``."""
    idx = np.arange(num_images)
    if exclude and calibration is not None and len(calibration):
        idx = np.setdiff1d(idx, calibration)
    if max_images is not None:
        idx = idx[:max_images]
    return idx


def pass_facts(n: int, num_models: int, seconds: float) -> dict:
    """The evaluation pass's wall time (reading the cache included). Not a speed comparison: one
    unwarmed pass, models not interleaved; how fast each model runs is 03_benchmark's answer."""
    return {"images": n, "models": num_models, "wall_seconds": seconds}


def topk_name(num_classes: int, k: int = TOPK) -> str:
    """What top-k is called for this many classes: top-C when C <= k (no "top-5" of 4 classes)."""
    return f"top-{min(k, num_classes)}" if num_classes else f"top-{k}"


def chance_percent(k: int, num_classes: int) -> float:
    """Top-k accuracy a uniform random guess reaches: k/C (top-5 of 10 classes is 50 % by chance)."""
    return 100.0 * min(k, num_classes) / num_classes if num_classes else float("nan")


def _relative_name(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return Path(path).name


def run(run: Any, progress: bool = True) -> Evaluation:
    """Notebook 04: every ONNX model of the run on the evaluation set, in one pass.

    Writes ``artifacts/evaluation.json`` and ``artifacts/predictions_<model>.csv``; returns
    the :class:`Evaluation` the notebook's tables and figures are drawn from.
    """
    from . import data
    from .jsonio import write_json
    from .recommend import recommend
    from .runtimes import run_candidates

    p = run.params
    run.require("model.onnx", "01_export")
    candidates = run_candidates(run)
    preprocess = data.preprocess_for(p)
    images = data.cached_images(data.load_dataset(p, "eval"), preprocess, p, show_progress=progress)
    info = _data_facts(run, images, preprocess)
    calibration = None
    recorded = run.artifact(calibrate_images.FILE)
    if info["calibration_from_eval_set"] and (recorded.exists() or p.evaluate.exclude_calibration):
        # the images 02 drew from these (range set and hold-out), as it recorded them
        calibration = calibrate_images.dataset_indices(run.require(calibrate_images.FILE, "02_calibrate"))
    indices = evaluation_indices(len(images), calibration, p.evaluate.exclude_calibration, p.evaluate.max_images)
    if calibration is not None:
        info["calibration_images"] = int(len(np.unique(calibration)))
    info.update(evaluated=len(indices),
                calibration_excluded=info["calibration_images"] if calibration is not None
                and p.evaluate.exclude_calibration else 0)
    if len(indices) == 0:
        raise DataError("no images left to evaluate (all were calibration images or evaluate.max_images is 0); "
                        "set evaluate.exclude_calibration: false or use a separate data.calibration_root")

    sessions = {c.name: c.session() for c in candidates}  # ORT fp32 first: the reference
    preds = predict(sessions, images.batches(p.evaluate.batch_size, indices), len(indices), progress=progress)

    labels = preds.labels
    names = images.class_names
    acc = {m: accuracy(mp.top_ids, labels) for m, mp in preds.models.items()}
    ref = preds.models[REFERENCE_MODEL]
    paired, losses = {}, {}
    for m, mp in preds.models.items():
        if m == REFERENCE_MODEL:
            continue
        paired[m] = paired_stats(labels, ref.top1, mp.top1, mp.kl_to_reference, p.evaluate.bootstrap, p.evaluate.seed)
        losses[m] = class_losses(labels, ref.top1, mp.top1, names)
    speed = pass_facts(len(preds), len(candidates), preds.seconds)
    result = Evaluation(p.model.name, len(names), names, preprocess.describe(), preds, acc, paired, losses,
                        info, speed, preprocess_spec=preprocess.to_dict(),
                        candidates={c.name: c.facts() for c in candidates})
    result.recommendation = recommend(read_result(run.artifact("benchmark.json")), acc, paired, result.candidates,
                                      p.evaluate.max_drop_pts, REFERENCE_MODEL)

    files = [_relative_name(images.files[i], images.dataset.root) for i in preds.indices]
    for m, mp in preds.models.items():
        result.written.append(write_predictions_csv(run.artifact(f"predictions_{m}.csv"), files, labels,
                                                    mp.top_ids, mp.top_probs))
    result.written.append(write_json(run.artifact("evaluation.json"), evaluation_json(result)))
    return result


def _data_facts(run: Any, images: Any, preprocess: Any) -> dict:
    """What was evaluated, with which preprocessing, and where calibration images came from."""
    from .jsonio import read_json

    p = run.params
    from_eval = p.data.calibration_root is None
    export_pre = None
    if run.artifact("export.json").exists():
        export_pre = read_json(run.artifact("export.json")).get("preprocess")
    return {
        "root": str(images.dataset.root),
        "layout": images.dataset.layout,
        "images": len(images),
        "skipped": len(images.skipped),
        "num_classes": len(images.class_names),
        "preprocess": preprocess.describe(),
        "export_preprocess": export_pre,
        "calibration_root": None if from_eval else p.data.calibration_root,
        "calibration_from_eval_set": bool(from_eval),
        "calibration_images": p.calibrate.num_images,
        "exclude_calibration": p.evaluate.exclude_calibration,
        "max_images": p.evaluate.max_images,
    }


def evaluation_json(ev: Evaluation, models: dict[str, Path] | None = None) -> dict:
    """The ``evaluation.json`` document (see the module docstring for units). ``models`` (name ->
    file) only for an evaluation without candidate facts."""
    out_models = {}
    for m, a in ev.accuracy.items():
        facts = ev.candidates.get(m, {})
        out_models[m] = {**a, "runtime": facts.get("runtime"), "precision": facts.get("precision"),
                         "label": facts.get("label", m),
                         "artifact": facts.get("artifact")
                         or (Path(models[m]).name if models and m in models else None),
                         "size_bytes": facts.get("size_bytes"),
                         "inference_precision": facts.get("inference_precision"),
                         "predictions": f"predictions_{m}.csv"}
    return {
        "model": ev.model_name,
        "num_classes": ev.num_classes,
        "preprocess": ev.preprocess,
        "units": UNITS,
        "data": ev.data,
        "models": out_models,
        "paired": {m: {**s, "worst_classes": ev.class_losses.get(m, [])} for m, s in ev.paired.items()},
        "reference": [{**r, "same_preprocessing": same_recipe(r, ev.preprocess_spec)}
                      for r in reference_rows(ev.model_name, ev.num_classes)],
        "top_k": {"k": min(TOPK, ev.num_classes), "name": topk_name(ev.num_classes),
                  "chance_percent": {"top1": chance_percent(1, ev.num_classes),
                                     "top5": chance_percent(TOPK, ev.num_classes)}},
        "pass": {**{k: v for k, v in ev.speed.items() if k in ("images", "models", "wall_seconds")},
                 "what": "wall time of the evaluation pass (reading included), not a speed comparison: "
                         "see 03_benchmark"},
        "recommendation": ev.recommendation,
    }


def reference_rows(model_name: str, num_classes: int) -> list[dict]:
    """Published figures for this model on 1000-class ImageNet ([] for anything else)."""
    if num_classes != 1000:
        return []
    return [dict(r) for r in REFERENCE_ROWS.get(model_name, [])]


# ---------------------------------------------------------------- rows for the tables


# ---------------------------------------------------------------- accuracy vs latency


def same_recipe(reference: dict, spec: dict) -> bool:
    """Whether a reference row's resize/crop/interpolation (and ImageNet mean/std) are ours."""
    from .config import IMAGENET_MEAN, IMAGENET_STD

    recipe = reference.get("recipe")
    if not recipe or not spec:
        return False
    return (all(spec.get(k) == v for k, v in recipe.items())
            and np.allclose(spec.get("mean", ()), IMAGENET_MEAN) and np.allclose(spec.get("std", ()), IMAGENET_STD))
