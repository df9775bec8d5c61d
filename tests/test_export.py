import numpy as np
import onnx
import pytest

from ghostlab import export, models


@pytest.mark.parametrize("name", ["ghostnet_050", "ghostnetv2_100", "ghostnetv3_050"])
def test_export_matches_torch(tmp_path, name):
    model = models.create_model(name, "random", num_classes=5)
    path = export.export_onnx(model, tmp_path / "m.onnx", input_size=64)
    x = np.random.default_rng(0).standard_normal((3, 3, 64, 64)).astype(np.float32)
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
    out = export.run_onnx(export.ort_session(path), np.zeros((2, 3, 224, 224), np.float32))
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
