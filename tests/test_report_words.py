"""The pages' answers in words (index verdict, conclude.*): computed from the artifacts, numbers in fmt's forms."""

import json

from ghostlab import conclude, index


def _row(name, top1, drop=None, ci=None, img_s=None, ratio=None, size=None):
    return {"candidate": name, "top-1 %": top1, "top-1 drop (pp)": drop, "95% CI (pp)": ci, "McNemar p": None,
            "p50 ms": None, "img/s": img_s, "× faster than fp32": ratio, "size (MB)": size}


ROWS = [_row("fp32", 93.6, img_s=400.0, ratio=1.0, size=5.32),
        _row("int8_minmax", 93.4, 0.2, [-0.2, 0.6], 520.0, 1.3, 1.82),
        _row("int8_entropy", 92.0, 1.6, [1.0, 2.2], 600.0, 1.5, 1.82)]


def test_verdict_picks_the_fastest_candidate_within_the_allowed_drop():
    words = " ".join(index.verdict_sentences(ROWS, None, 1.0, "batch 8, 2 threads, 64 px input", 2.4))
    assert words.startswith("Ship int8_minmax:")  # int8_entropy is faster but loses up to 2.2 pp
    assert "1.30× faster than fp32 at batch 8, 2 threads, 64 px input" in words
    assert "drop +0.20 pp [−0.20, +0.60]" in words and "1.82 MB" in words and "5.32 MB" in words
    assert "2.40× faster than torch eager" in words


def test_verdict_follows_the_recorded_recommendation():
    rec = {"candidate": "int8_entropy", "label": "ORT int8 entropy", "reason": "the team accepts 2.5 pp"}
    words = " ".join(index.verdict_sentences(ROWS, rec, 1.0, None, None))
    assert words.startswith("Ship int8_entropy (ORT int8 entropy): the team accepts 2.5 pp.")


def test_verdict_says_why_when_fp32_is_the_answer():
    slow = [_row("fp32", 93.6, img_s=400.0, ratio=1.0), _row("int8_minmax", 93.6, 0.0, [0.0, 0.0], 300.0, 0.75)]
    words = " ".join(index.verdict_sentences(slow, None, 1.0, None, None))
    assert words.startswith("Ship fp32") and "no int8 candidate is faster than fp32" in words
    assert "slower than fp32 (0.75×)" in words


def test_answers_come_from_the_artifacts(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps({"parity": {"top1_agreement": 1.0, "max_abs_diff": 2e-6, "n": 8}}))
    assert conclude.export(tmp_path).startswith("Yes: the ONNX file computes the same model. On 8 evaluation images")
    bench = {"input_shape": [3, 64, 64], "headline": {"batch": 8, "threads": 2},
             "results": [{"model": "fp32", "batch": 8, "threads": 2, "sessions": 1, "img_s": 800.0,
                          "precision": "fp32", "ratio_vs_fp32": 1.0, "ratio_vs_torch": 2.5},
                         {"model": "int8_minmax", "batch": 8, "threads": 2, "sessions": 1, "img_s": 600.0,
                          "precision": "int8", "ratio_vs_fp32": 0.75}],
             "profile": {"models": {"fp32": {"cheap depthwise op": 0.7, "primary conv": 1.0},
                                    "int8_minmax": {"cheap depthwise op": 2.4, "primary conv": 0.6}}}}
    (tmp_path / "benchmark.json").write_text(json.dumps(bench))
    words = conclude.benchmark(tmp_path)
    assert "the fastest candidate is fp32 at 800 img/s" in words and "2.50× faster than torch eager" in words
    assert "slower than fp32 (0.75×); most of it on cheap depthwise op (2.40 ms against fp32's 0.700 ms" in words
    assert conclude.evaluate(tmp_path) == "No evaluation in this run."  # a missing artifact is a sentence


def test_an_alias_variant_is_not_named_as_a_second_model(tmp_path):
    """auto that keeps no node in fp32 is minmax's file: 02's answer names minmax, as the index does."""
    def doc(variant, agreement, kl, **extra):
        return {"variant": variant, "method": variant, "holdout": {"top1_agreement": agreement, "mean_kl": kl},
                **extra}

    for d in (doc("minmax", 1.0, 0.002), doc("auto", 1.0, 0.002, alias_of="minmax"), doc("entropy", 0.9, 0.5)):
        (tmp_path / f"calibration_{d['variant']}.json").write_text(json.dumps(d))
    words = conclude.calibrate(tmp_path)
    assert words.startswith("int8_minmax stays closest to fp32") and "int8_auto" not in words
