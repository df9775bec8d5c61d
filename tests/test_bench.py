"""bench.py: the grid, the summaries on fake timings, the roofline arithmetic, quantization types,
and one quick-mode benchmark of a tiny model (no assertion on speed)."""

import dataclasses
import json

import numpy as np
import pytest

from ghostlab import bench, bench_profile, bench_report, bench_roofs, bench_setup, runtimes
from ghostlab.config import BenchmarkParams
from ghostlab.errors import RunError
from ghostlab.jsonio import read_json, write_json

AVX512_VNNI = {"model": "test", "machine": "x86_64", "cores": 2, "mhz": 2000.0,
               "flags": {"avx2": True, "fma": True, "avx512f": True, "avx512_vnni": True, "amx_int8": False},
               "vnni": True}
AVX2_ONLY = {**AVX512_VNNI, "flags": {"avx2": True, "fma": True}, "vnni": False}


# ---------------------------------------------------------------- grid

def _settings(**kw):
    return bench_setup.effective_settings(dataclasses.replace(BenchmarkParams(), **kw))


def test_grid_is_batch_by_threads_plus_sessions():
    cells = bench_setup.grid(_settings(batch_sizes=[1, 8, 32], threads=[1, 0], sessions=[1, 0]), cores=4)
    assert cells == [
        bench_setup.Cell(1, 1), bench_setup.Cell(1, 4), bench_setup.Cell(1, 1, 4),
        bench_setup.Cell(8, 1), bench_setup.Cell(8, 4), bench_setup.Cell(8, 1, 4),
        bench_setup.Cell(32, 1), bench_setup.Cell(32, 4), bench_setup.Cell(32, 1, 4),
    ]


def test_grid_drops_cells_that_resolve_to_the_same_setting():
    # one core: threads 0 is threads 1, and one session per core adds nothing
    cells = bench_setup.grid(_settings(batch_sizes=[1, 8], threads=[1, 0], sessions=[1, 0]), cores=1)
    assert cells == [bench_setup.Cell(1, 1), bench_setup.Cell(8, 1)]
    cells = bench_setup.grid(_settings(batch_sizes=[2], threads=[2], sessions=[3, 3]), cores=8)
    assert cells == [bench_setup.Cell(2, 2), bench_setup.Cell(2, 1, 3)]


def test_quick_mode_shrinks_rounds_and_batch_sizes():
    s = _settings(batch_sizes=[1, 8, 32], quick=True)
    assert s["batch_sizes"] == [1, 8]
    assert (s["warmup"], s["rounds"], s["images_per_round"]) == (1, 2, 1)
    full = _settings(batch_sizes=[1, 8, 32])
    assert full["batch_sizes"] == [1, 8, 32] and full["rounds"] == BenchmarkParams().rounds


@pytest.mark.parametrize("batch, images, runs", [(1, 8, 8), (8, 8, 1), (32, 8, 1), (3, 8, 3), (1, 1, 1)])
def test_runs_per_round_covers_the_images(batch, images, runs):
    assert bench_setup.runs_per_round(batch, images) == runs


def test_rotation_changes_who_goes_first():
    assert [bench._rotated("abc", r) for r in range(4)] == [list("abc"), list("bca"), list("cab"), list("abc")]


# ---------------------------------------------------------------- summaries on fake timings

def test_percentiles_on_known_latencies():
    lat = np.arange(1, 101) / 1e3  # 1..100 ms
    p = bench.percentiles_ms(lat)
    assert p["p50_ms"] == pytest.approx(50.5)
    assert p["p90_ms"] == pytest.approx(90.1)
    assert p["p99_ms"] == pytest.approx(99.01) and p["tail"] == "p99"
    assert p["mean_ms"] == pytest.approx(50.5) and p["max_ms"] == pytest.approx(100.0)


def test_p99_only_from_100_samples_else_the_max_says_so():
    # from 20 samples the "p99" was the maximum under another name
    p = bench.percentiles_ms(np.arange(1, 21) / 1e3)
    assert p["p99_ms"] is None and p["tail"] == "max of 20" and p["max_ms"] == pytest.approx(20.0)
    row = {**p, "batch": 8, "threads": 2, "sessions": 1, "model": "fp32", "img_s": 1.0, "ratio_vs_fp32": 1.0,
           "ratio_vs_torch": None, "samples": 20}
    (shown,) = bench_report.result_rows({"results": [row]})
    assert shown["tail"] == "max of 20" and shown["tail ms"] == pytest.approx(20.0) and "p99 ms" not in shown
    assert bench.tail_ms(bench.percentiles_ms(np.arange(1, 101) / 1e3)) == pytest.approx(99.01)


def _rounds(img_s, batch=8):
    return [bench.Round([batch / v], batch / v, batch) for v in img_s]


def test_paired_ratio_cancels_drift_between_rounds():
    # the machine slows to half speed in round 2: both models drop, the ratio does not move
    fp32, int8 = _rounds([100, 50, 100, 100]), _rounds([150, 75, 150, 150])
    ratio, iqr = bench.paired_ratio(int8, fp32)
    assert ratio == pytest.approx(1.5)
    assert iqr == pytest.approx([1.5, 1.5])
    # unpaired medians would mix rounds; the paired one is the per-round ratio
    ratio, _ = bench.paired_ratio(_rounds([100, 200, 300]), _rounds([100, 100, 100]))
    assert ratio == pytest.approx(2.0)


def _fake_model(name, precision, macs=100_000_000, kind="onnx"):
    return bench_setup.BenchModel(name, kind, precision, macs, make_runner=lambda threads: None)


def test_summarize_cell_rows_ratios_and_roofline():
    models = [_fake_model("fp32", "fp32"), _fake_model("int8_a", "int8"), _fake_model("torch", "fp32", kind="torch")]
    timings = {"fp32": _rounds([100, 80, 120]), "int8_a": _rounds([140, 112, 168]), "torch": _rounds([25, 20, 30])}
    rows = bench.summarize_cell(bench_setup.Cell(8, 2), timings, models, AVX512_VNNI)
    by = {r["model"]: r for r in rows}
    assert [r["model"] for r in rows] == ["fp32", "int8_a", "torch"]
    assert set(rows[0]) == set(bench.RESULT_KEYS)
    assert by["fp32"]["img_s"] == pytest.approx(100)  # median of rounds
    assert by["fp32"]["ratio_vs_fp32"] == pytest.approx(1.0)
    assert by["int8_a"]["ratio_vs_fp32"] == pytest.approx(1.4)
    assert by["fp32"]["ratio_vs_torch"] == pytest.approx(4.0)
    assert by["torch"]["ratio_vs_fp32"] == pytest.approx(0.25)
    assert by["fp32"]["p50_ms"] == pytest.approx(80.0)  # 8 images at 100 img/s
    assert by["fp32"]["samples"] == 3 and by["fp32"]["all_cores"]
    # roofline: 100 MMAC x 100 img/s = 10 GMAC/s; fp32 peak 16 lanes x 2 FMA x 2 GHz x 2 cores = 128 GMAC/s
    assert by["fp32"]["gmac_s"] == pytest.approx(10.0)
    assert by["fp32"]["peak_gmac_s"] == pytest.approx(128.0)
    assert by["fp32"]["peak_fraction"] == pytest.approx(10 / 128)
    assert by["int8_a"]["peak_gmac_s"] == pytest.approx(512.0)  # VNNI: 4x the fp32 lanes


def test_summarize_without_fp32_or_torch_leaves_ratios_empty():
    rows = bench.summarize_cell(bench_setup.Cell(1, 1), {"int8_a": _rounds([10, 10])}, [_fake_model("int8_a", "int8")],
                                AVX512_VNNI)
    assert rows[0]["ratio_vs_fp32"] is None and rows[0]["ratio_vs_torch"] is None
    assert not rows[0]["all_cores"]


@pytest.mark.parametrize("cpu, fp32, int8", [
    (AVX512_VNNI, 32, 128),
    (AVX2_ONLY, 16, 32),
    ({**AVX512_VNNI, "flags": {"avx512f": True, "amx_int8": True}}, 32, 1024),
    ({"flags": {}, "vnni": False}, 8, 16),
])
def test_peak_macs_per_cycle_from_isa(cpu, fp32, int8):
    assert bench_roofs.peak_macs_per_cycle(cpu, "fp32") == fp32
    assert bench_roofs.peak_macs_per_cycle(cpu, "int8") == int8


ZEN4 = {"model": "AMD EPYC 9R14", "machine": "x86_64", "cores": 2, "mhz": 2600.0, "vendor": "AuthenticAMD",
        "family": 25, "model_number": 17, "vnni": True,
        "flags": {"avx2": True, "fma": True, "avx512f": True, "avx512_vnni": True, "amx_int8": False}}


def test_zen4_peak_comes_from_the_microarchitecture_table_not_the_flags():
    # AVX-512 on 256-bit units: 16 fp32 and 64 int8 MACs per cycle per core, not 32 / 128
    assert (bench_roofs.peak_macs_per_cycle(ZEN4, "fp32"), bench_roofs.peak_macs_per_cycle(ZEN4, "int8")) == (16, 64)
    assert bench_roofs.microarchitecture(ZEN4)[0] == "Zen 4"
    assert bench_roofs.peak_macs_per_s(ZEN4, "fp32", 2) == pytest.approx(16 * 2.6e9 * 2)
    genoa_x = {**ZEN4, "model_number": 0x11}
    assert bench_roofs.peak_macs_per_cycle(genoa_x, "int8") == 64
    milan = {**ZEN4, "model_number": 1, "flags": {"avx2": True, "fma": True}, "vnni": False}
    assert (bench_roofs.peak_macs_per_cycle(milan, "fp32"), bench_roofs.peak_macs_per_cycle(milan, "int8")) == (16, 32)
    intel = {**ZEN4, "vendor": "GenuineIntel", "family": 6, "model_number": 143}
    assert bench_roofs.microarchitecture(intel) is None and bench_roofs.peak_macs_per_cycle(intel, "fp32") == 32  # ISA rule


def test_clock_says_where_it_comes_from():
    assert bench_roofs.clock({**ZEN4, "max_mhz": 3700.0}) == (3.7, "cpuinfo_max_freq (the highest clock cpufreq reports)")
    ghz, source = bench_roofs.clock(ZEN4)
    assert ghz == pytest.approx(2.6) and "current reading" in source and "cpu MHz" in source
    assert bench_roofs.clock({**ZEN4, "mhz": None}) == (0.0, "unknown")


def test_measured_gemm_roof_is_shown_beside_the_isa_peak():
    result = {"cpu": ZEN4, "results": [
        {"model": "fp32", "kind": "onnx", "runtime": "onnxruntime", "precision": "fp32", "batch": 8, "threads": 2,
         "sessions": 1, "gmac_s": 10.0, "peak_gmac_s": 83.2, "peak_fraction": 10 / 83.2},
        {"model": "int8_a", "kind": "onnx", "runtime": "onnxruntime", "precision": "int8", "batch": 8, "threads": 2,
         "sessions": 1, "gmac_s": 12.0, "peak_gmac_s": 332.8, "peak_fraction": 12 / 332.8},
        {"model": "torch", "kind": "torch", "runtime": "torch", "precision": "fp32", "batch": 8, "threads": 2,
         "sessions": 1, "gmac_s": 4.0, "peak_gmac_s": 83.2, "peak_fraction": 4 / 83.2},
        {"model": "fp32", "kind": "onnx", "runtime": "onnxruntime", "precision": "fp32", "batch": 8, "threads": 1,
         "sessions": 2, "gmac_s": 9.0, "peak_gmac_s": 83.2, "peak_fraction": 9 / 83.2}],
        "peak": {"ghz": 2.6, "clock_source": "x", "microarchitecture": "Zen 4", "fp32_macs_per_cycle_per_core": 16,
                 "int8_macs_per_cycle_per_core": 64,
                 "measured": {"runtime": "onnxruntime", "fp32": {"1": 40.0, "2": 80.0}, "int8": {"1": 100.0, "2": 200.0}}}}
    rows = {r["model"]: r for r in bench_report.roofline_rows(result)}
    assert rows["fp32"]["GEMM roof GMAC/s"] == 80.0 and rows["fp32"]["% of GEMM roof"] == pytest.approx(12.5)
    assert rows["int8_a"]["% of GEMM roof"] == pytest.approx(6.0)
    assert rows["fp32"]["% of ISA peak"] == pytest.approx(100 * 10 / 83.2)
    assert rows["torch"]["GEMM roof GMAC/s"] is None  # torch's GEMM was not measured
    assert bench_roofs.measured_roof_gmac_s(result, result["results"][3]) == 80.0  # 2 sessions x the 1-thread roof
    facts = {r["fact"]: r["value"] for r in bench_report.peak_rows(result)}
    assert "16 / 64 (Zen 4" in facts["MACs per cycle per core (fp32 / int8)"]
    assert facts["measured GEMM roof (GMAC/s, ONNX Runtime)"].startswith("fp32 1 thread 40, 2 threads 80; int8")


def test_peak_rate_scales_with_clock_and_cores():
    assert bench_roofs.peak_macs_per_s(AVX2_ONLY, "fp32", 1) == pytest.approx(16 * 2.0e9)
    assert bench_roofs.peak_macs_per_s(AVX2_ONLY, "fp32", 4) == pytest.approx(4 * 16 * 2.0e9)
    assert bench_roofs.peak_macs_per_s({**AVX2_ONLY, "mhz": None}, "fp32", 4) == 0


def _row(model, precision, batch, threads, img_s, ratio, vs_torch=None, sessions=1):
    return {"model": model, "precision": precision, "batch": batch, "threads": threads, "sessions": sessions,
            "img_s": img_s, "ratio_vs_fp32": ratio, "ratio_vs_torch": vs_torch}


def test_headline_picks_batch_8_all_cores_and_the_best_int8():
    rows = [
        _row("fp32", "fp32", 8, 2, 300, 1.0, 4.0), _row("int8_a", "int8", 8, 2, 390, 1.3),
        _row("int8_b", "int8", 8, 2, 420, 1.4), _row("torch", "fp32", 8, 2, 75, 0.25, 1.0),
        _row("fp32", "fp32", 8, 1, 200, 1.0, 3.5), _row("int8_b", "int8", 8, 1, 200, 2.0),
        _row("fp32", "fp32", 32, 2, 350, 1.0, 4.0), _row("int8_b", "int8", 8, 1, 999, 9.0, sessions=2),
    ]
    h = bench.headline(rows, cores=2, batch=8)
    assert (h["batch"], h["threads"], h["all_cores"]) == (8, 2, True)
    assert h["best_int8"] == "int8_b" and h["best_int8_vs_fp32"] == pytest.approx(1.4)
    assert h["fp32_vs_torch"] == pytest.approx(4.0) and h["fp32_vs_torch_1_thread"] == pytest.approx(3.5)
    assert bench.headline(rows, cores=2, batch=30)["batch"] == 32  # the closest measured batch


def test_best_int8_is_ranked_over_the_whole_grid_not_by_the_headline_cell():
    # int8_b is lucky at the headline cell only; int8_a is faster everywhere else
    rows = [_row("fp32", "fp32", 8, 2, 300, 1.0), _row("int8_a", "int8", 8, 2, 380, 1.25),
            _row("int8_b", "int8", 8, 2, 400, 1.35), _row("int8_a", "int8", 1, 2, 200, 1.5),
            _row("int8_b", "int8", 1, 2, 150, 1.0), _row("int8_a", "int8", 8, 1, 200, 1.4),
            _row("int8_b", "int8", 8, 1, 150, 1.1)]
    h = bench.headline(rows, cores=2, batch=8)
    assert h["best_int8"] == "int8_a" and h["best_int8_vs_fp32"] == pytest.approx(1.25)


# ---------------------------------------------------------------- models on disk

@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """A tiny conv net as fp32 ONNX (dynamic batch and size), U8S8 and S8S8 QDQ int8, and torch."""
    import torch
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from ghostlab.export import export_onnx

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=1, groups=16), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 1), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 4),
    ).eval()
    folder = tmp_path_factory.mktemp("bench_models")
    fp32 = export_onnx(net, folder / "model.onnx", 32)
    fixed = folder / "fixed.onnx"
    export_onnx(net, fixed, 32, dynamic_batch=True, dynamic_spatial=False)

    class Reader(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.batches = iter([{"input": rng.standard_normal((2, 3, 32, 32), dtype=np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.batches, None)

    paths = {"fp32": fp32, "fixed": fixed}
    for name, act in (("u8s8", QuantType.QUInt8), ("s8s8", QuantType.QInt8)):
        paths[name] = folder / f"int8_{name}.onnx"
        quantize_static(str(fp32), str(paths[name]), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=act, weight_type=QuantType.QInt8)
    return net, paths


@pytest.mark.slow  # the tiny_models fixture exports and quantizes (seconds)
def test_quant_types_read_from_the_qdq_graph(tiny_models):
    _, paths = tiny_models
    assert runtimes.quant_types(paths["fp32"]) == {"activation_type": None, "weight_type": None}
    assert runtimes.quant_types(paths["u8s8"]) == {"activation_type": "uint8", "weight_type": "int8"}
    assert runtimes.quant_types(paths["s8s8"]) == {"activation_type": "int8", "weight_type": "int8"}


@pytest.mark.slow  # the tiny_models fixture exports and quantizes (seconds)
def test_warnings_for_s8s8_on_x86_and_missing_vnni(tiny_models):
    _, paths = tiny_models
    models = [bench_setup.onnx_model(n, paths[n], 1) for n in ("fp32", "u8s8", "s8s8")]
    assert [m.precision for m in models] == ["fp32", "int8", "int8"]
    with_vnni = bench.isa_warnings(AVX512_VNNI, models)
    assert len(with_vnni) == 1 and "s8s8" in with_vnni[0] and "S8S8" in with_vnni[0]
    no_vnni = bench.isa_warnings(AVX2_ONLY, models)
    assert any("no VNNI" in w for w in no_vnni) and len(no_vnni) == 2
    assert bench.isa_warnings({**AVX2_ONLY, "machine": "aarch64"}, models[:2]) == [no_vnni[0]]
    assert bench.isa_warnings(AVX512_VNNI, models[:1]) == []  # fp32 only: nothing about int8


def test_scaling_warning_names_models_slower_on_more_threads():
    rows = [_row("torch", "fp32", 8, 1, 100, None), _row("torch", "fp32", 8, 2, 20, None),
            _row("fp32", "fp32", 8, 1, 300, 1.0), _row("fp32", "fp32", 8, 2, 290, 1.0),
            _row("torch", "fp32", 8, 1, 500, None, sessions=2)]
    (warning,) = bench.scaling_warnings(rows)
    assert warning.startswith("torch ran slower") and "batch 8: 20 vs 100 img/s" in warning
    assert bench.scaling_warnings([r for r in rows if r["model"] == "fp32"]) == []


def test_load_warning_only_when_busy():
    assert bench.load_warning([0.4, 0, 0], cores=2) is None
    assert "busy" in bench.load_warning([3.0, 0, 0], cores=2)


@pytest.mark.slow  # the tiny_models fixture exports and quantizes (seconds)
def test_fixed_spatial_export_is_refused_with_the_fix(tiny_models):
    _, paths = tiny_models
    bench_setup.check_input(paths["fp32"], [1, 8], 224)
    bench_setup.check_input(paths["fixed"], [1, 8], 32)
    with pytest.raises(RunError, match="height is fixed at 32.*dynamic_spatial"):
        bench_setup.check_input(paths["fixed"], [1, 8], 224)


@pytest.mark.slow
def test_quick_benchmark_of_a_tiny_model_writes_the_documented_layout(tiny_models, tmp_path):
    net, paths = tiny_models
    models = [bench_setup.onnx_model("fp32", paths["fp32"], 1000), bench_setup.onnx_model("int8_u8s8", paths["u8s8"], 1000),
              bench_setup.torch_model(net, 1000)]
    params = BenchmarkParams(batch_sizes=[1, 4, 16], threads=[1, 0], sessions=[1, 2], input_size=48, quick=True)
    seen = []
    result = bench.run_benchmark(models, params, progress=seen.append)
    cells = bench_setup.grid(bench_setup.effective_settings(params), result["cpu"]["cores"])
    assert len(seen) == len(cells) + 2 and {c.batch for c in cells} == {1, 4}  # quick: first two batch sizes
    assert seen[-2:] == ["measuring the GEMM roof", "profiling by GhostNet part"]
    assert len(result["results"]) == len(cells) * len(models)

    path = write_json(tmp_path / "benchmark.json", result)
    back = read_json(path)
    doc = bench.__doc__
    for key in ("version", "input_shape", "cpu", "settings", "models", "peak", "results", "headline",
                "warnings", "load_average", "seconds"):
        assert key in back and f'"{key}"' in doc
    assert back["input_shape"] == [3, 48, 48]
    for row in back["results"]:
        assert set(row) == set(bench.RESULT_KEYS)
        assert row["p50_ms"] <= row["p90_ms"] <= row["max_ms"] and row["img_s"] > 0
        assert row["p99_ms"] is None and row["tail"] == f"max of {row['samples']}"  # a handful of samples
        assert row["samples"] == len(row["latencies_ms"]) == 2 * row["sessions"]  # 2 rounds x 1 run
    assert all(f'"{k}"' in doc for k in bench.RESULT_KEYS)
    assert back["models"]["int8_u8s8"]["activation_type"] == "uint8"
    assert back["models"]["torch"]["kind"] == "torch"
    assert any("quick mode" in w for w in back["warnings"])
    fp32 = bench.select(back, model="fp32")
    assert fp32 and all(r["ratio_vs_fp32"] == pytest.approx(1.0) for r in fp32)
    assert back["headline"]["batch"] == 4 and back["headline"]["best_int8"] == "int8_u8s8"
    json.dumps(back, allow_nan=False)  # plain JSON: no NaN sneaks in

    roofs = back["peak"]["measured"]
    assert set(roofs["fp32"]) == set(roofs["int8"]) == {str(t) for t in {c.threads for c in cells} | {1}}
    assert all(v > 0 for p in ("fp32", "int8") for v in roofs[p].values())
    assert any(r["GEMM roof GMAC/s"] for r in bench_report.roofline_rows(back))
    for rows in (bench_report.result_rows(back), bench_report.headline_rows(back), bench_report.roofline_rows(back),
                 bench_report.machine_rows(back), bench_report.model_rows(back), bench_report.warning_rows(back),
                 bench_report.headline_value_rows(back)):
        assert rows
    from ghostlab import plots

    settings = {(c.threads, c.sessions) for c in cells}  # 1 thread, all cores, 2 sessions (on 2+ cores)
    assert len(plots.bench_throughput(back["results"]).axes) == len(settings)
    assert len(plots.bench_latency(back["results"], batch=1).axes) == len(settings)
    assert len(plots.bench_speedup(back["results"]).axes[0].patches) == len(cells)
    prof = back["profile"]
    assert prof["batch"] == 4 and set(prof["models"]) == {"fp32", "int8_u8s8"}
    assert all(v >= 0 for m in prof["models"].values() for v in m.values())
    assert "quantize / dequantize" in prof["models"]["int8_u8s8"]  # the input QuantizeLinear at least
    assert bench_profile.profile_rows(back)[-1]["part"] == "total"
    assert len(plots.bench_parts(prof, ["fp32", None]).axes[0].patches) == len(prof["models"]["fp32"])


def test_profile_events_are_split_by_run_and_part():
    run = lambda ts: {"name": "model_run", "cat": "Session", "ts": ts, "dur": 100}  # noqa: E731
    node = lambda name, op, ts, dur: {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur,  # noqa: E731
                                      "args": {"op_name": op}}
    events = [run(0), node("/blocks/blocks.0/blocks.0.0/ghost1/cheap_operation/cheap_operation.0/Conv", "Conv", 5, 9000),
              run(1000), node("/blocks/blocks.0/blocks.0.0/ghost1/cheap_operation/cheap_operation.0/Conv", "Conv",
                              1005, 2000),
              node("ReorderOutput_token_3", "ReorderOutput", 1010, 500), node("input_QuantizeLinear",
                                                                              "QuantizeLinear", 1020, 250)]
    parts = bench_profile._parse_profile(events, runs=1)  # the first run is the warm-up
    assert parts == {"cheap depthwise op": [2.0], "layout reorder": [0.5], "quantize / dequantize": [0.25]}
