"""The demo: class design, the procedural dataset in the seed layout, cached training."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ghostlab import data, demo
from ghostlab.cli import main
from ghostlab.config import load_params
from ghostlab.errors import ConfigError

TINY = Path(__file__).resolve().parent.parent / "params" / "tiny.yaml"


def _tiny(tmp_path: Path, *overrides: str):
    return load_params(TINY, [f"demo.root={tmp_path / 'demo'}", f"data.cache_dir={tmp_path / 'cache'}", *overrides])


@pytest.mark.parametrize("n", [10, 12, 20])
def test_classes_need_shape_colour_and_texture_together(n):
    attrs = demo.class_attributes(n)
    assert len(set(attrs)) == n and len(set(demo.class_names(n))) == n
    for position in range(3):  # every attribute value is shared by at least two classes
        counts = Counter(a[position] for a in attrs)
        assert len(counts) >= 2 and min(counts.values()) >= 2, (position, counts)
    for i, a in enumerate(attrs):  # no class is told apart by one attribute alone
        for position in range(3):
            assert any(b[position] == a[position] for j, b in enumerate(attrs) if j != i)


def test_class_count_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match=r"demo.num_classes must be 2..36, got 40"):
        demo.class_attributes(40)


def test_render_is_seeded_and_varied():
    a = np.asarray(demo.render(3, 10, 64, np.random.default_rng([0, 1, 2])))
    b = np.asarray(demo.render(3, 10, 64, np.random.default_rng([0, 1, 2])))
    c = np.asarray(demo.render(3, 10, 64, np.random.default_rng([0, 1, 3])))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.slow
def test_prepare_builds_seed_layout_and_a_checkpoint_then_reuses_them(tmp_path, monkeypatch):
    params = _tiny(tmp_path)
    prepared = demo.prepare(params, show_progress=False)
    d = prepared.data
    assert d.dataset == "seed" and Path(d.root).name == "val" and Path(d.calibration_root).name == "calibration"
    assert (Path(d.root) / "val_label.txt").exists() and Path(d.label_file).read_text().splitlines() == \
        demo.class_names(4)
    assert prepared.model.num_classes == 4 and Path(prepared.model.weights).exists()
    val = data.load_dataset(prepared)
    cal = data.load_dataset(prepared, "calibration")
    assert len(val) == 4 * 8 and len(cal) == 4 * 8
    assert np.bincount(val.labels).tolist() == [8] * 4
    metrics = json.loads((Path(prepared.model.weights).parent / "training.json").read_text())
    assert metrics["epochs"] == 1 and 0 <= metrics["val_top1"] <= 1 and metrics["val_images"] == 32

    from ghostlab.models import load_model

    model = load_model(prepared, val.num_classes)
    assert model.num_classes == 4

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt although nothing changed")

    monkeypatch.setattr(demo, "train", no_rebuild)
    monkeypatch.setattr(demo, "build_dataset", no_rebuild)
    assert demo.prepare(params, show_progress=False) == prepared
    assert demo.prepare(prepared, show_progress=False) == prepared  # already resolved: unchanged

    # a training param change retrains on the same data; a data param change rebuilds the data
    monkeypatch.undo()
    retrained = demo.prepare(_tiny(tmp_path, "demo.learning_rate=0.02"), show_progress=False)
    assert retrained.model.weights != prepared.model.weights and retrained.data.root == prepared.data.root
    monkeypatch.setattr(demo, "train", no_rebuild)
    with pytest.raises(AssertionError, match="rebuilt"):
        demo.prepare(_tiny(tmp_path, "demo.val_per_class=4"), show_progress=False)


@pytest.mark.slow
def test_demo_data_only_when_weights_are_not_the_demos(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    prepared = demo.prepare(_tiny(tmp_path, "model.weights=random"), show_progress=False)
    assert prepared.model.weights == "random" and prepared.data.dataset == "seed"


@pytest.mark.slow
def test_ghostlab_demo_command_prints_where_and_how_well(tmp_path, capsys):
    profile = tmp_path / "tiny.yaml"
    profile.write_text(TINY.read_text())
    args = ["demo", str(profile), "-p", f"demo.root={tmp_path / 'demo'}", "-p", f"data.cache_dir={tmp_path / 'c'}"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "demo dataset:" in out and "demo checkpoint:" in out and "val top-1" in out


@pytest.mark.slow
def test_prepare_trains_the_comparison_resnet_once_beside_the_ghostnet(tmp_path, monkeypatch):
    """Notebook 05's conventional network: trained on the same images at the same input size, cached."""
    params = _tiny(tmp_path)
    prepared = demo.prepare(params, show_progress=False)
    weights = prepared.ghost_maps.resnet_weights
    assert Path(weights).name == "model.safetensors" and Path(weights).parent.name.startswith("resnet-")
    metrics = demo.comparison_metrics(weights)
    ghostnet = demo.training_metrics(prepared)
    assert metrics["model"] == demo.COMPARISON_NAME and metrics["epochs"] == 1 and 0 <= metrics["val_top1"] <= 1
    assert metrics["architecture"] == {"block": "basic", "layers": [2, 2, 2, 2], "channels": [8, 16, 32, 64],
                                       "stem_width": 8}
    assert metrics["spec"]["preprocess"] == ghostnet["spec"]["preprocess"] and metrics["input_size"] == 32
    assert metrics["spec"]["data"] == ghostnet["spec"]["data"] and metrics["params"] > 0 and metrics["macs"] > 0
    model, loaded = demo.load_comparison(weights)
    assert loaded == metrics and not any("Ghost" in type(m).__name__ for m in model.modules())
    val = data.cached_images(data.load_dataset(prepared), data.preprocess_for(prepared), prepared, False)
    assert demo.evaluate_top1(model, val) == pytest.approx(metrics["val_top1"])  # the checkpoint is the trained model

    def no_rebuild(*args, **kwargs):
        raise AssertionError("retrained although nothing changed")

    monkeypatch.setattr(demo, "train", no_rebuild)
    assert demo.prepare(params, show_progress=False) == prepared
    monkeypatch.undo()
    calls, real = [], demo.train
    monkeypatch.setattr(demo, "train", lambda *a, **k: calls.append(k.get("comparison", False)) or real(*a, **k))
    wider = demo.prepare(_tiny(tmp_path, "demo.resnet_width=4"), show_progress=False)
    assert calls == [True], "a ResNet param retrains the ResNet only"
    assert wider.model.weights == prepared.model.weights and wider.ghost_maps.resnet_weights != weights
    off = demo.prepare(_tiny(tmp_path, "ghost_maps.compare_resnet=false"), show_progress=False)
    assert off.ghost_maps.resnet_weights == "auto" and calls == [True]
    with pytest.raises(ConfigError, match="not a demo ResNet checkpoint"):
        demo.load_comparison(prepared.model.weights)
