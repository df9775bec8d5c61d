"""Activation ranges (ghostlab.calibrate_ranges) that do not depend on the chunk size and equal ORT's
own threshold searches on the same histograms; the auto alias; the fp32-node guard. All fast: a
random ghostnet_050 at 32 px on 50 synthetic images (the last chunk of 8 or 32 is a short one)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ghostlab import calibrate as C
from ghostlab import calibrate_ranges as R
from ghostlab.config import CalibrateParams, VariantParams

SIZE, IMAGES = 32, 50


def _smooth_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour fields, ImageNet-normalised: activations with real-looking tails."""
    rng = np.random.default_rng(seed)
    low = rng.random((n, 3, 4, 4), dtype=np.float32)
    x = np.kron(low, np.ones((1, 1, size // 4, size // 4), np.float32))
    x += 0.1 * rng.standard_normal(x.shape, dtype=np.float32)
    return (x - 0.45) / 0.225


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(preprocessed model, images, work dir, minmax per tensor)."""
    import torch

    from ghostlab import export
    from ghostlab.models import create_model

    folder = tmp_path_factory.mktemp("ranges")
    torch.manual_seed(0)
    fp32 = export.export_onnx(create_model("ghostnet_050", "random", num_classes=10), folder / "m.onnx", SIZE)
    prep = C.preprocess_model(fp32, folder / "prep.onnx")
    images = C.ArrayImages(_smooth_images(IMAGES, SIZE))
    idx = np.arange(IMAGES)
    return prep, images, folder, R.minmax_pass(prep, images, idx, 8, folder)


@pytest.fixture(scope="module")
def histograms(tiny):
    """{(method, chunk size): {tensor: Histogram}} at 2048 bins; chunk 50: all images at once."""
    prep, images, folder, minmax = tiny
    return {(method, chunk): R.histogram_pass(prep, images, np.arange(IMAGES), chunk, folder, minmax,
                                              R.DEFAULT_BINS, absolute=method == "percentile")
            for method in ("percentile", "entropy") for chunk in (8, 32, IMAGES)}


def test_minmax_is_exact_over_every_image_whatever_the_chunk(tiny):
    prep, images, folder, minmax = tiny
    assert len(minmax) > 50
    for chunk in (32, IMAGES):
        assert R.minmax_pass(prep, images, np.arange(IMAGES), chunk, folder) == minmax


def test_histograms_are_the_same_for_any_chunk_size(histograms):
    for method in ("percentile", "entropy"):
        whole = histograms[(method, IMAGES)]
        for chunk in (8, 32):
            for t, h in histograms[(method, chunk)].items():
                assert np.abs(h.counts - whole[t].counts).sum() <= 1e-4 * h.counts.sum(), (method, chunk, t)
                np.testing.assert_array_equal(h.edges, whole[t].edges)


@pytest.fixture(scope="module")
def ranges(histograms):
    """{(method, chunk size): {tensor: (low, high)}}: one threshold search per merged histogram."""
    return {key: {t: R.search(h, key[0], 99.99) for t, h in hists.items()} for key, hists in histograms.items()}


@pytest.mark.parametrize("method", ["percentile", "entropy"])
def test_ranges_agree_across_chunk_sizes_within_half_a_percent(tiny, ranges, method):
    """Issue 13: chunks of 8, 32 and all at once give the same ranges on every tensor (ORT's chunked
    calibrator did not: each chunk past the first made merge_histogram add bins)."""
    _, _, _, minmax = tiny
    whole = ranges[(method, IMAGES)]
    assert whole.keys() == minmax.keys()
    for chunk in (8, 32):
        for t, (lo, hi) in whole.items():
            width = max(float(minmax[t][1] - minmax[t][0]), 1e-12)
            got = ranges[(method, chunk)][t]
            assert abs(got[0] - lo) <= 0.005 * width and abs(got[1] - hi) <= 0.005 * width, (method, chunk, t)


def test_collect_ranges_is_the_search_on_the_merged_histograms(tiny, ranges):
    """The ORT TensorsData quantize_static reads carries exactly these ranges (a short last chunk too)."""
    prep, images, folder, minmax = tiny
    data = R.collect_ranges(prep, images, np.arange(IMAGES), "percentile", 99.99, 32, folder, minmax=minmax)
    assert C.ranges_table(data) == {t: [float(lo), float(hi)] for t, (lo, hi) in
                                     sorted(ranges[("percentile", 32)].items())}


def test_entropy_is_kl_calibration_not_minmax(tiny, ranges):
    """With 2048 bins the KL search clips most tensors inside their observed range (ORT's default
    128 bins for 128 levels returned the minmax range on every tensor)."""
    _, _, _, minmax = tiny
    found = ranges[("entropy", IMAGES)]
    clipped = sum(found[t][1] < 0.999 * minmax[t][1] for t in found if minmax[t][1] > 0)
    assert clipped >= 0.5 * len(found)


def _ort_collector(method: str, bins: int, percentile: float = 99.99):
    from onnxruntime.quantization.calibrate import HistogramCollector

    return HistogramCollector(method=method, symmetric=method == "percentile", num_bins=bins,
                              num_quantized_bins=R.QUANTIZED_BINS, percentile=percentile, scenario="same")


def _rebinned(h: R.Histogram, factor: int) -> R.Histogram:
    """The same tensor at ``bins / factor`` bins (adjacent bins summed): ORT's pure-Python KL search
    costs ~1 s per tensor at 2048 bins, so every tensor is also checked on coarser histograms."""
    return R.Histogram(h.counts.reshape(-1, factor).sum(1), h.edges[::factor], h.low, h.high, h.absolute)


def test_entropy_search_equals_orts_on_the_same_histograms(histograms):
    hists = histograms[("entropy", 8)]
    ort = _ort_collector("entropy", R.DEFAULT_BINS)
    names = sorted(hists)
    for t in names[::max(1, len(names) // 3)]:  # a few at 2048 bins
        assert R.entropy_threshold(hists[t]) == ort.get_entropy_threshold(hists[t].ort_tuple(), R.QUANTIZED_BINS), t
    for t in names:  # every tensor at 256 bins
        h = _rebinned(hists[t], 8)
        assert R.entropy_threshold(h) == ort.get_entropy_threshold(h.ort_tuple(), R.QUANTIZED_BINS), t


def test_percentile_search_equals_orts_on_the_same_histograms(histograms):
    hists = histograms[("percentile", 8)]
    ort = _ort_collector("percentile", R.DEFAULT_BINS)
    ort.histogram_dict = {t: (h.counts, h.edges, h.low, h.high) for t, h in hists.items()}
    with R.quiet():
        reference = ort.compute_percentile()
    for t, h in hists.items():
        assert R.percentile_threshold(h, 99.99) == tuple(reference[t][:2]), t


def test_entropy_kl_handles_edge_cases_like_ort():
    """All mass in one bin, outliers on both sides, an empty histogram: same threshold as ORT."""
    ort = _ort_collector("entropy", 256)
    rng = np.random.default_rng(1)
    cases = [np.eye(1, 256, 128, dtype=np.int64)[0] * 1000,
             np.r_[[5], np.zeros(120, np.int64), rng.integers(0, 50, 14), np.zeros(120, np.int64), [7]],
             rng.integers(0, 3, 256) * (rng.random(256) < 0.1)]
    for counts in cases:
        counts = np.asarray(counts, np.int64)
        edges = np.linspace(-1, 1, 257, dtype=np.float32)
        h = R.Histogram(counts, edges, np.float32(-1), np.float32(1), False)
        assert R.entropy_threshold(h) == ort.get_entropy_threshold(h.ort_tuple(), R.QUANTIZED_BINS)


def test_unknown_range_method_and_no_images_say_what_to_do(tiny):
    from ghostlab.errors import CalibrationError

    prep, images, folder, _ = tiny
    with pytest.raises(CalibrationError, match="minmax, percentile or entropy"):
        R.collect_ranges(prep, images, np.arange(4), "kl", work_dir=folder)
    with pytest.raises(CalibrationError, match="calibrate.num_images"):
        R.collect_ranges(prep, images, np.arange(0), "entropy", work_dir=folder)


# ---------------------------------------------------------------- auto as an alias of its base

def test_auto_that_keeps_no_node_is_the_base_not_a_second_model(tiny, tmp_path):
    from ghostlab.config import Params
    from ghostlab.runfolder import NotebookRun

    prep, images, _, _ = tiny
    variants = [VariantParams(name="minmax", method="minmax"), VariantParams(name="auto", method="auto")]
    params = CalibrateParams(num_images=IMAGES, chunk_size=16, variants=variants, sqnr_images=4,
                             sensitivity_candidates=2, auto_target_agreement=0.0, timing_rounds=2)
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    (artifacts / "int8_auto.onnx").write_bytes(b"stale")  # from an earlier run: removed
    cal = C.Calibration(params, prep, prep, artifacts, images, np.arange(0, 40), np.arange(40, IMAGES), 10,
                        input_size=SIZE)
    cal.build_variants()
    (auto,) = cal.build_variants(derived=True)
    assert auto.alias_of == "minmax" and auto.path == cal.results["minmax"].path
    assert not (artifacts / "int8_auto.onnx").exists()
    doc = json.loads((artifacts / "calibration_auto.json").read_text())
    assert doc["alias_of"] == "minmax" and doc["model"] == "int8_minmax.onnx"
    assert doc["note"] == "auto = minmax (0 nodes kept in fp32)"
    assert cal.mixed.rows()[0]["model"] == "auto = minmax (0 nodes kept in fp32)"
    assert [r["model"] for r in cal.mixed.speed_rows()] == ["fp32", "minmax"]  # the same file timed once
    assert "auto" not in C.tensor_tables(cal)
    run = NotebookRun("03_benchmark", Params().replace(calibrate=params), tmp_path)
    (artifacts / "model.onnx").write_bytes(b"")
    assert list(run.onnx_models()) == ["fp32", "int8_minmax"]


# ---------------------------------------------------------------- nodes kept in fp32 stay fp32

def _three_convs(path) -> list[str]:
    """input -> Conv -> Relu -> Conv ("keep") -> Relu -> Conv -> output, 8x8, 4 channels."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes, x = [], [], "input"
    for i, cin in enumerate((3, 4, 4)):
        name = "keep" if i == 1 else f"conv{i}"
        inits.append(numpy_helper.from_array(rng.standard_normal((4, cin, 3, 3)).astype(np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], name=name, pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        x = f"r{i}"
    graph = helper.make_graph(nodes, "three", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["N", 4, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return ["keep"]


def _kernels(session, x) -> dict[str, str]:
    session(x)
    events = json.loads(open(session.end_profiling()).read())
    return {e["name"].removesuffix("_kernel_time"): e["args"].get("op_name") for e in events
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")}


def test_nodes_kept_in_fp32_stay_fp32_in_our_sessions(tmp_path):
    """ORT's WeightBiasQuantization would turn an fp32 Conv between DequantizeLinear and QuantizeLinear
    back into int8 at load time; runtimes disables it (KEEP_FP32_NODES). ORT accepts an unknown
    optimizer name silently, so this checks the guard still bites: without it, the node runs int8."""
    import onnxruntime as ort

    from ghostlab import runtimes

    fp32 = tmp_path / "three.onnx"
    keep = _three_convs(fp32)
    ranges = R.collect_ranges(fp32, C.ArrayImages(_smooth_images(4, 8)), np.arange(4), "minmax", work_dir=tmp_path)
    cache = C.save_ranges(ranges, tmp_path / "ranges.json")
    int8 = C.quantize(fp32, tmp_path / "q.onnx", cache, "minmax", VariantParams(name="q"), nodes_to_exclude=keep)
    x = np.zeros((1, 3, 8, 8), np.float32)

    ours = _kernels(runtimes.onnx_candidate("q", int8).session(1, profile_prefix=str(tmp_path / "ours")), x)
    ops = list(ours.values())  # ORT renames what it rewrites (keep -> c1_nchwc): count kernels instead
    assert ops.count("Conv") == 1 and ops.count("QLinearConv") == 2  # "keep" fp32, the rest int8

    opts = ort.SessionOptions()
    opts.enable_profiling, opts.profile_file_prefix = True, str(tmp_path / "plain")
    plain = ort.InferenceSession(str(int8), opts, providers=["CPUExecutionProvider"])
    name = plain.get_inputs()[0].name
    unguarded = _kernels(runtimes.Session(lambda a: plain.run(None, {name: a}), "onnxruntime", raw=plain), x)
    assert list(unguarded.values()).count("QLinearConv") == 3, "ORT no longer re-quantizes kept nodes"
