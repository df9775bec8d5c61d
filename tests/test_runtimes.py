"""Candidates and sessions (ghostlab.runtimes): OpenVINO beside ONNX Runtime, precision labels,
parity, NNCF int8 IR, and the one list of a run's candidates."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from ghostlab import bench, bench_profile, bench_report, bench_roofs, bench_setup, runtimes
from ghostlab.runtimes import has_bf16, openvino_candidate, openvino_candidates

BF16_CPU = {"avx512f": True, "avx512_bf16": True}
AMX_CPU = {"avx512f": True, "amx_tile": True, "amx_bf16": True}
NO_BF16_CPU = {"avx2": True, "fma": True, "avx512f": True, "avx512_vnni": True}
ORT = [runtimes.Candidate("fp32", "onnxruntime", "fp32", Path("model.onnx")),
       runtimes.Candidate("int8_minmax", "onnxruntime", "int8", Path("int8_minmax.onnx")),
       runtimes.Candidate("int8_auto", "onnxruntime", "int8", Path("int8_auto.onnx"))]


# ---------------------------------------------------------------- labels (no files read)

@pytest.mark.parametrize("flags, expected", [(BF16_CPU, True), (AMX_CPU, True), (NO_BF16_CPU, False), ({}, False)])
def test_bf16_only_where_the_cpu_has_it(flags, expected):
    assert has_bf16(flags) is expected
    names = [c.name for c in openvino_candidates(ORT, cpu_flags=flags)]
    assert ("ov_bf16" in names) is expected
    assert names[0] == "ov_fp32" and {"ov_int8_minmax", "ov_int8_auto"} <= set(names)


def test_every_openvino_candidate_records_an_explicit_precision_hint():
    cands = openvino_candidates(ORT, {"ov_nncf": Path("ov_nncf.xml"), "ov_nncf_nodw": Path("ov_nncf_nodw.xml")},
                                cpu_flags=BF16_CPU)
    by = {c.name: c for c in cands}
    assert [c.name for c in cands] == ["ov_fp32", "ov_bf16", "ov_int8_minmax", "ov_int8_auto", "ov_nncf",
                                       "ov_nncf_nodw"]
    hints = {c.name: dict(c.options)["inference_precision"] for c in cands}
    assert hints == {"ov_fp32": "f32", "ov_bf16": "bf16", "ov_int8_minmax": "f32", "ov_int8_auto": "f32",
                     "ov_nncf": "f32", "ov_nncf_nodw": "f32"}
    assert {c.name: c.precision for c in cands} == {"ov_fp32": "fp32", "ov_bf16": "bf16", "ov_int8_minmax": "int8",
                                                   "ov_int8_auto": "int8", "ov_nncf": "int8", "ov_nncf_nodw": "int8"}
    # bf16 is labelled bf16 everywhere, never fp32 (the file it runs is the fp32 export)
    bf16 = by["ov_bf16"]
    assert bf16.label == "OpenVINO bf16" and "fp32" not in bf16.label and bf16.facts()["precision"] == "bf16"
    assert runtimes.ov_config(bf16, 2)["INFERENCE_PRECISION_HINT"] == "bf16"
    assert runtimes.ov_config(by["ov_fp32"], 0)["INFERENCE_PRECISION_HINT"] == "f32"
    cfg = runtimes.ov_config(by["ov_int8_minmax"], 1, profile=True)
    assert cfg["INFERENCE_NUM_THREADS"] == 1 and cfg["NUM_STREAMS"] == 1 and cfg["PERF_COUNT"] is True
    assert by["ov_nncf_nodw"].label == "OpenVINO int8 (NNCF, depthwise in f32)"
    assert by["ov_int8_minmax"].label == "OpenVINO int8 (minmax, ORT's QDQ file)"


def test_an_ir_candidate_needs_its_precision_and_unknown_ones_are_refused():
    with pytest.raises(ValueError, match="precision"):
        openvino_candidate("x", "model.xml")
    with pytest.raises(ValueError, match="unknown precision"):
        openvino_candidate("x", "model.onnx", "fp16")
    with pytest.raises(ValueError, match="unknown runtime"):
        runtimes.Candidate("x", "tensorrt", "fp32", None).session()


# ---------------------------------------------------------------- real sessions on a tiny model

class _Tiny(nn.Module):
    """A stem, a Ghost-like pair (1x1 primary + depthwise cheap op, concatenated) and a head."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 8, 3, 2, 1)
        self.primary_conv = nn.Conv2d(8, 8, 1)
        self.cheap_operation = nn.Conv2d(8, 8, 3, 1, 1, groups=8)
        self.classifier = nn.Linear(16, classes)

    def forward(self, x):
        x = torch.relu(self.conv_stem(x))
        p = torch.relu(self.primary_conv(x))
        x = torch.cat([p, torch.relu(self.cheap_operation(p))], 1)
        return self.classifier(x.mean((2, 3)))


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    from ghostlab.export import export_onnx

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ov")
    return export_onnx(_Tiny().eval(), folder / "model.onnx", 32), folder


def _x(n=6, size=40):
    return np.random.default_rng(1).standard_normal((n, 3, size, size), dtype=np.float32)


class _Run(SimpleNamespace):
    def onnx_models(self):
        return dict(self.models)


def test_run_candidates_is_one_ordered_list_with_a_runtime_filter(tiny_onnx, tmp_path):
    (tmp_path / "ov_nncf_nodw.xml").write_text("<net/>")
    run = _Run(models={"fp32": tiny_onnx[0]}, artifacts=tmp_path)
    net = nn.Identity()
    names = [c.name for c in runtimes.run_candidates(run, net, cpu_flags=BF16_CPU)]
    assert names == ["fp32", "ov_fp32", "ov_bf16", "ov_nncf_nodw", "torch"]
    only_ort = runtimes.run_candidates(run, net, runtimes=["onnxruntime", "torch"], cpu_flags=BF16_CPU)
    assert [c.name for c in only_ort] == ["fp32", "torch"]
    assert [c.name for c in runtimes.run_candidates(run, runtimes=["openvino"], cpu_flags={})] == [
        "fp32", "ov_fp32", "ov_nncf_nodw"]  # ORT fp32, the reference, always stays


def test_openvino_f32_matches_ort_and_bf16_stays_close(tiny_onnx):
    path, _ = tiny_onnx
    x = _x()  # not the export size: dynamic shapes, no reshape()
    ref = runtimes.onnx_candidate("fp32", path).session()(x)
    f32 = openvino_candidate("ov_fp32", path, "fp32").session(1)
    assert f32.reported == {"inference_precision": "f32", "threads": 1, "streams": 1}
    got = f32(x)
    assert got.shape == ref.shape and got.dtype == np.float32
    assert np.abs(got - ref).max() < 1e-4 and (got.argmax(1) == ref.argmax(1)).all()
    if has_bf16():
        bf16 = openvino_candidate("ov_bf16", path, "bf16").session(1)
        assert bf16.reported["inference_precision"] == "bf16"  # asked, and compiled so
        assert 0 < np.abs(bf16(x) - ref).max() < 0.1  # bfloat16 really computes: logits move a little


def test_candidate_parity_reports_each_candidate_against_ort(tiny_onnx):
    from ghostlab.export import candidate_parity, candidate_parity_rows

    path, _ = tiny_onnx
    x = _x(4, 32)
    ref = runtimes.onnx_candidate("fp32", path).session()(x).astype(np.float64)
    out = candidate_parity(openvino_candidates([runtimes.onnx_candidate("fp32", path)], cpu_flags={}), ref, x)
    assert set(out) == {"ov_fp32"}
    assert out["ov_fp32"]["max_abs_diff"] < 1e-4 and out["ov_fp32"]["top1_agreement"] == 1.0
    assert out["ov_fp32"]["inference_precision"] == "f32"
    (row,) = candidate_parity_rows({"candidates": out})
    assert row["candidate"] == "ov_fp32" and row["images"] == 4


def test_openvino_performance_counters_map_to_ghostnet_parts(tiny_onnx):
    path, _ = tiny_onnx
    s = openvino_candidate("ov_fp32", path, "fp32").session(1, profile_prefix="x")
    s(_x(2, 32))
    counts = s.perf_counts()
    assert counts and all(ms >= 0 for _, _, ms in counts)
    parts = {bench_profile.ov_part_of(name, kind) for name, kind, _ in counts}
    assert {"stem", "primary conv", "cheap depthwise op"} <= parts
    assert bench_profile.ov_part_of("input_abcd_acdb_/conv_stem/Conv/WithoutBiases", "Reorder") == "layout reorder"
    assert bench_profile.ov_part_of("/x/Conv_output_0_QuantizeLinear", "FakeQuantize") == "quantize / dequantize"


def test_an_openvino_candidate_is_timed_like_any_other(tiny_onnx):
    path, _ = tiny_onnx
    from ghostlab.config import BenchmarkParams

    models = [bench_setup.candidate_model(runtimes.onnx_candidate("fp32", path), 1000),
              bench_setup.candidate_model(openvino_candidate("ov_fp32", path, "fp32"), 1000)]
    params = BenchmarkParams(batch_sizes=[2], threads=[1], sessions=[1, 2], input_size=32, quick=True,
                             include_torch=False)
    result = bench.run_benchmark(models, params)
    assert {r["runtime"] for r in result["results"]} == {"onnxruntime", "openvino"}
    assert result["models"]["ov_fp32"]["inference_precision"] == "f32"
    assert result["models"]["ov_fp32"]["label"] == "OpenVINO fp32"
    assert result["profile"]["runtimes"] == {"fp32": "onnxruntime", "ov_fp32": "openvino"}
    assert "primary conv" in result["profile"]["models"]["ov_fp32"]
    assert result["headline"]["best"] in ("fp32", "ov_fp32") and result["headline"]["best_vs_fp32"] > 0


@pytest.mark.slow  # NNCF quantizes twice (seconds)
def test_nncf_variants_are_ir_files_calibrated_on_the_given_images(tiny_onnx):
    from ghostlab import calibrate_nncf

    path, folder = tiny_onnx
    data = _x(8, 32)
    seen = []

    class Images:
        def normalized(self, idx):
            seen.extend(int(i) for i in idx)
            return data[idx]

    out = calibrate_nncf.quantize(path, Images(), np.array([1, 3, 5]), folder)
    assert set(out) == {"ov_nncf", "ov_nncf_nodw"} and set(seen) == {1, 3, 5}
    assert out["ov_nncf_nodw"]["ignored_types"] == ["GroupConvolution"]
    assert out["ov_nncf_nodw"]["fake_quantize"] < out["ov_nncf"]["fake_quantize"]
    irs = runtimes.nncf_models(folder)
    assert list(irs) == ["ov_nncf", "ov_nncf_nodw"] and all(p.with_suffix(".bin").exists() for p in irs.values())
    ref = runtimes.onnx_candidate("fp32", path).session()(data)
    for name, xml in irs.items():
        c = openvino_candidate(name, xml, "int8")
        assert c.size_bytes() == out[name]["size_bytes"]
        got = c.session(1)(data)
        assert got.shape == ref.shape and np.abs(got - ref).max() < 0.5 * np.abs(ref).max() + 1e-3


def test_nncf_calibrates_on_the_range_set_of_02s_image_list(tmp_path):
    from ghostlab import calibrate_images, calibrate_nncf
    from ghostlab.errors import RunError

    run = SimpleNamespace(artifact=lambda name: tmp_path / name,
                          require=lambda name, by: (tmp_path / name) if (tmp_path / name).exists()
                          else (_ for _ in ()).throw(RunError(f"{name} missing: run {by}")))
    with pytest.raises(RunError, match="02_calibrate"):
        calibrate_nncf.calibration_image_indices(run)
    calibrate_images.write(tmp_path / calibrate_images.FILE, SimpleNamespace(), np.array([7, 8, 9]),
                           np.array([1, 2]), "demo", "eval", 0)
    assert list(calibrate_nncf.calibration_image_indices(run)) == [7, 8, 9]  # the hold-out stays out
