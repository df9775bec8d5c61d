import numpy as np
import onnx
import pytest

from ghostlab import export, models, runtimes


@pytest.mark.parametrize("name,size", [("ghostnet_100", 224), ("ghostnet_050", 64), ("ghostnetv2_100", 64),
                                       ("ghostnetv3_050", 64)])
def test_export_matches_torch(tmp_path, name, size):
    model = models.create_model(name, "random", num_classes=5)
    path = export.export_onnx(model, tmp_path / "m.onnx", input_size=size)
    x = np.random.default_rng(0).standard_normal((3, 3, size, size)).astype(np.float32)
    result = export.parity(model, path, x)  # V3 compares the train-form model with its re-parameterized export
    assert result["top1_agreement"] == 1.0
    assert result["max_abs_diff"] < 1e-4
    assert result["cosine_min"] > 0.9999


def test_names_and_dynamic_axes(tmp_path):
    model = models.create_model("ghostnet_050", "random", num_classes=5)
    path = export.export_onnx(model, tmp_path / "m.onnx", input_size=64)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == ["input"] and [o.name for o in graph.output] == ["logits"]
    dims = [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    # the canonical 224 input runs on a model exported at 64
    out = runtimes.onnx_candidate("fp32", path).session()(np.zeros((2, 3, 224, 224), np.float32))
    assert out.shape == (2, 5)
    assert not list(tmp_path.glob(".*tmp"))


def test_static_export_has_fixed_shape(tmp_path):
    model = models.create_model("ghostnet_050", "random", num_classes=5)
    path = export.export_onnx(model, tmp_path / "m.onnx", 64, dynamic_batch=False, dynamic_spatial=False)
    dims = [d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 64]


def test_op_histogram_counts_nodes(tmp_path):
    model = models.create_model("ghostnet_050", "random", num_classes=5)
    path = export.export_onnx(model, tmp_path / "m.onnx", input_size=64)
    ops = export.op_histogram(path)
    assert sum(ops.values()) == len(onnx.load(str(path)).graph.node)
    assert ops["Conv"] > 50 and ops["Gemm"] == 1
    assert list(ops.values()) == sorted(ops.values(), reverse=True)


def test_unsupported_opset_is_one_line(tmp_path):
    from ghostlab.errors import ExportError

    model = models.create_model("ghostnet_050", "random", num_classes=5)
    with pytest.raises(ExportError, match="export.opset"):
        export.export_onnx(model, tmp_path / "m.onnx", input_size=64, opset=3)
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.slow
def test_nodes_kept_in_fp32_stay_fp32_in_our_sessions(tmp_path):
    """ORT's WeightBiasQuantization would turn an fp32 Conv between DQ and Q back into int8 at
    load time; ghostlab's sessions disable it, so `nodes_to_exclude` means what it says."""
    import json

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = models.create_model("ghostnet_050", "random", num_classes=5)
    fp32 = tmp_path / "prep.onnx"
    quant_pre_process(str(export.export_onnx(model, tmp_path / "m.onnx", input_size=32)), str(fp32))
    # the stride-2 depthwise convs: DequantizeLinear -> Conv -> QuantizeLinear once excluded
    depthwise = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Conv" and "conv_dw" in n.name]
    rng = np.random.default_rng(0)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": rng.standard_normal((2, 3, 32, 32)).astype(np.float32)}])

        def get_next(self):
            return next(self.batches, None)

    int8 = tmp_path / "q.onnx"
    quantize_static(str(fp32), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=depthwise)
    session = runtimes.onnx_candidate("int8", int8).session(1, profile_prefix=str(tmp_path / "prof"))
    session(np.zeros((1, 3, 32, 32), np.float32))
    events = json.loads(open(session.end_profiling()).read())
    ran = [(e["name"], e["args"].get("op_name")) for e in events
           if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    for node in depthwise:  # ORT renames what it rewrites (…_nchwc, …_token_N): match the node's scope
        scope = node.rsplit("/", 1)[0] + "/"
        convs = {op for name, op in ran if name.startswith(scope) and "Conv" in op}
        assert convs == {"Conv"}, f"{node} ran as {convs}"
    assert "QLinearConv" in {op for _, op in ran}  # the rest of the model does run int8


def test_model_card_reconciles_the_seed_card_with_our_counts():
    # the card's 3.9 M is the parameters without the classifier; its 0.342 "GFLOPs" is not 2 x MACs
    from ghostlab.ghostnet import CARD_FACTS

    facts = models.model_facts(models.create_model("ghostnet_100", "random"), "ghostnet_100", 224)
    assert facts["params"] == 5_182_508 and facts["params_without_classifier"] == 3_901_508
    assert facts["flops_224"]["two_x_macs"] == 2 * facts["macs"] == 282_301_024
    assert 0.28e9 < facts["flops_224"]["every_op"] < 0.30e9  # counting every op does not reach 0.342 G either
    rows = {r["fact"]: r for r in export.model_card_rows({**facts, "onnx_mb": 20.0})}
    assert rows["parameters without the classifier"]["seed card"] == CARD_FACTS["ghostnet_100"]["params"] == 3.9e6
    assert round(rows["parameters without the classifier"]["this model"] / 1e6, 1) == 3.9
    flops = rows["FLOPs at 224px = 2 × MACs"]
    assert flops["this model"] == 282_301_024 and flops["seed card"] == pytest.approx(0.342e9)
    assert rows["parameters"]["paper"] == 5.2e6 and rows["parameters"]["seed card"] is None
    assert "not reproducible" in rows["the card's 0.342 GFLOPs"]["this model"]


def test_model_card_without_a_seed_card_has_no_card_column():
    facts = models.model_facts(models.create_model("ghostnet_050", "random", num_classes=5), "ghostnet_050", 64)
    assert facts["params_without_classifier"] == facts["params"] - (1280 * 5 + 5)
    rows = export.model_card_rows({**facts, "onnx_mb": 1.0})
    assert all("seed card" not in r for r in rows) and "flops_224" not in facts
