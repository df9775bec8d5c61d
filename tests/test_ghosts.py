"""Ghost feature maps: hooks, the ghost->intrinsic mapping, similarity and rank, the explorer."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ghostlab import ghosts, models, plots
from ghostlab.config import load_params
from ghostlab.errors import ConfigError, DataError, ModelError

TINY = Path(__file__).resolve().parent.parent / "params" / "tiny.yaml"
SIZE = 64


def _x(n=1, size=SIZE, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=g)


# ---------------------------------------------------------------- hooks

@pytest.mark.parametrize("name", ["ghostnet_050", "ghostnet_100", "ghostnetv2_100"])
def test_hooks_capture_every_ghost_module_with_the_right_shapes(name):
    model = models.create_model(name, "random", 10)
    modules = dict(ghosts.ghost_modules(model))
    layers = ghosts.capture_ghost_maps(model, _x(2))
    assert [layer.name for layer in layers] == list(modules) and len(layers) == 32
    for layer in layers:
        m = modules[layer.name]
        init = math.ceil(m.out_chs / 2)
        n, c, h, w = layer.output.shape
        assert (n, c) == (2, m.out_chs)
        assert layer.intrinsic.shape == (2, init, h, w)
        assert layer.ghost.shape == (2, m.out_chs - init, h, w)
        assert layer.ghosts_per_intrinsic == 1 and layer.kind == type(m).__name__
        if layer.kind == "GhostModule":
            # V1's output is exactly [intrinsic | ghost]: the copies were taken before timm's in-place residual add
            np.testing.assert_array_equal(layer.output, np.concatenate([layer.intrinsic, layer.ghost], 1)[:, :c])
        # the ghost maps are the cheap operation applied to the captured intrinsic maps
        with torch.no_grad():
            remade = m.cheap_operation(torch.from_numpy(layer.intrinsic.copy())).numpy()[:, :layer.ghost.shape[1]]
        np.testing.assert_allclose(layer.ghost, remade, atol=1e-5)
    assert {layer.kind for layer in layers} == ({"GhostModuleV2", "GhostModule"} if "v2" in name else {"GhostModule"})
    assert not any(m._forward_hooks for m in model.modules()), "hooks must be removed after capture"


@pytest.mark.slow
def test_v3_maps_are_the_same_before_and_after_reparameterization():
    model = models.create_model("ghostnetv3_050", "random", 10)
    x = _x(1, 64)  # V3's attention shortcut pools by 2 after the stem's /32: 64 px is its smallest input
    train_form = ghosts.capture_ghost_maps(model, x)
    deploy_form = ghosts.capture_ghost_maps(models.deploy_copy(model), x)
    assert len(train_form) == len(deploy_form) == 32
    for a, b in zip(train_form, deploy_form):
        assert a.intrinsic.shape == b.intrinsic.shape and a.ghost.shape == b.ghost.shape
        np.testing.assert_allclose(a.intrinsic, b.intrinsic, atol=1e-3, rtol=1e-3)
        np.testing.assert_allclose(a.ghost, b.ghost, atol=1e-3, rtol=1e-3)


def test_ghost_channel_j_comes_from_intrinsic_channel_j_div_ratio_minus_one():
    from timm.models.ghostnet import GhostModule

    module = GhostModule(3, 9, ratio=3).eval()  # 3 intrinsic, 6 ghosts made, 6 kept
    layer = ghosts.capture_ghost_maps(torch.nn.Sequential(module), _x(1, 8))[0]
    assert layer.ghosts_per_intrinsic == 2 and layer.ghost.shape[1] == 6
    conv = module.cheap_operation[0]  # the depthwise conv itself: a ReLU after it could hide a change
    base = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.1
    with torch.no_grad():
        before = conv(base)
        for i in range(3):
            bumped = base.clone()
            bumped[:, i] += 1.0
            changed = (conv(bumped) - before).abs().amax(dim=(0, 2, 3)) > 0
            assert [j for j in range(6) if changed[j]] == layer.ghosts_of(i) == [2 * i, 2 * i + 1]
            assert all(layer.source_channel(j) == i for j in layer.ghosts_of(i))


def test_resnet_blocks_are_captured_in_order():
    import timm

    model = timm.create_model("resnet18", pretrained=False).eval()  # same block naming as resnet50, faster
    names = ghosts.resnet_blocks(model)
    assert names == [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    layers = ghosts.capture_outputs(model, _x(1), names)
    assert [layer.output.shape[1:] for layer in layers[::2]] == [(64, 16, 16), (128, 8, 8), (256, 4, 4), (512, 2, 2)]
    assert [layer.stage for layer in layers[::2]] == [1, 2, 3, 4]


# ---------------------------------------------------------------- similarity and rank

def test_cosine_similarity_of_a_map_with_itself_is_one_and_with_its_negation_minus_one():
    m = np.random.default_rng(0).normal(size=(7, 5))
    assert ghosts.cosine_similarity(m, m) == pytest.approx(1.0)
    assert ghosts.cosine_similarity(m, -m) == pytest.approx(-1.0)
    assert ghosts.cosine_similarity(m, 3 * m) == pytest.approx(1.0)
    assert math.isnan(ghosts.cosine_similarity(m, np.zeros_like(m)))
    sim = ghosts.channel_similarity(np.stack([m, -m, 2 * m, np.zeros_like(m)]))
    np.testing.assert_allclose(sim[:3, :3], [[1, -1, 1], [-1, 1, -1], [1, -1, 1]], atol=1e-12)
    assert np.isnan(sim[3]).all() and np.isnan(sim[:, 3]).all()


def test_ghost_similarity_compares_each_ghost_with_its_source():
    rng = np.random.default_rng(1)
    intrinsic = rng.random((1, 3, 6, 6))
    ghost = np.concatenate([intrinsic[:, :1], -intrinsic[:, 1:2], np.zeros((1, 1, 6, 6))], axis=1)
    layer = ghosts.LayerMaps("m", 0, "GhostModule", np.concatenate([intrinsic, ghost], 1), intrinsic, ghost, 1)
    sim = ghosts.ghost_similarity(layer, size=28)
    assert sim[0, 0] == pytest.approx(1.0) and sim[0, 1] == pytest.approx(-1.0) and np.isnan(sim[0, 2])


def test_effective_rank_of_rank_one_stack_is_one_and_of_orthogonal_maps_their_count():
    rng = np.random.default_rng(0)
    one = rng.normal(size=(1, 8, 8))
    assert ghosts.effective_rank(rng.uniform(0.5, 3, size=(6, 1, 1)) * one) == pytest.approx(1.0, abs=1e-5)
    q, _ = np.linalg.qr(rng.normal(size=(64, 5)))
    orthogonal = (q.T * np.array([1, 2, 3, 4, 50])[:, None]).reshape(5, 8, 8)  # norms differ: shapes count
    assert ghosts.effective_rank(orthogonal) == pytest.approx(5.0)
    with_dead = np.concatenate([orthogonal, np.zeros((3, 8, 8))])
    assert ghosts.effective_rank(with_dead) == pytest.approx(5.0)
    assert ghosts.effective_rank(np.zeros((4, 8, 8))) == 0.0


def test_max_similarity_and_most_similar_pairs():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(6, 10, 10))
    maps[4] = maps[1] * 2 + 0.01 * rng.normal(size=(10, 10))  # near-twin
    maps[5] = -maps[0]
    sim = ghosts.channel_similarity(maps)
    best = ghosts.max_similarity(sim)
    assert best[1] == pytest.approx(best[4]) and best[1] > 0.99 and best[1] == pytest.approx(sim[1, 4])
    pairs = ghosts.similar_pairs(maps, count=3, size=28)
    assert pairs[0][:2] == (1, 4)
    assert len({c for a, b, _ in pairs for c in (a, b)}) == 2 * len(pairs), "each channel used once"
    assert [p[2] for p in pairs] == sorted((p[2] for p in pairs), reverse=True)


def test_subsample_bounds_the_map_size():
    maps = np.ones((2, 3, 56, 40), dtype=np.float32)
    assert ghosts.subsample(maps, 28).shape == (2, 3, 28, 28)
    assert ghosts.subsample(maps[..., :20, :20], 28).shape == (2, 3, 20, 20)


# ---------------------------------------------------------------- params, images, ResNet

def test_detail_modules_default_spread_and_unknown_names_are_refused():
    layers = ghosts.capture_ghost_maps(models.create_model("ghostnet_050", "random", 10), _x())
    picked = ghosts.detail_modules(layers, [])
    assert len(picked) == 3 and all(n.endswith("ghost1") for n in picked) and picked[0] == "blocks.0.0.ghost1"
    assert ghosts.detail_modules(layers, ["blocks.3.0.ghost2"]) == ["blocks.3.0.ghost2"]
    with pytest.raises(ConfigError, match="did you mean blocks.3.0.ghost1"):
        ghosts.detail_modules(layers, ["blocks.3.0.gost1"])


def test_images_default_to_the_bundled_photo_and_bad_paths_say_what_to_do(tmp_path):
    params = load_params(TINY)
    [(label, path)] = ghosts.image_inputs(params)
    assert label == "grace_hopper.jpg" and path.exists()
    with pytest.raises(DataError, match="ghost_maps.image"):
        ghosts.image_inputs(load_params(TINY, [f"ghost_maps.image={tmp_path / 'nope.jpg'}"]))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot read image"):
        ghosts.load_pictures([("bad", bad)], __import__("ghostlab.data").data.preprocess_for(params))


def test_resnet_weights_follow_the_model_weights_rules(tmp_path):
    with pytest.raises(ConfigError, match="resnet_weights"):
        ghosts.load_resnet("demo")
    with pytest.raises(ModelError, match="does not exist"):
        ghosts.load_resnet(str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ModelError, match="does not fit resnet50"):
        ghosts.load_resnet(str(wrong))


def test_validation_of_the_ghost_maps_section():
    with pytest.raises(ConfigError, match="similarity_size"):
        load_params(TINY, ["ghost_maps.similarity_size=1"])
    with pytest.raises(ConfigError, match="dataset_indices"):
        load_params(TINY, ["ghost_maps.dataset_indices=[-1]"])


# ---------------------------------------------------------------- the notebook's computation

@pytest.fixture(scope="module")
def tiny_maps():
    params = load_params(TINY, ["model.weights=random", "ghost_maps.max_channels=4"])
    return params, ghosts.compute(params)


def test_compute_and_summary(tiny_maps):
    params, result = tiny_maps
    summary = ghosts.summary(result)
    assert summary["resnet"] is None and len(summary["modules"]) == 32
    first = summary["modules"][0]
    assert {"name", "stage", "channels", "ghost_similarity", "mean_max_similarity", "effective_rank"} <= set(first)
    assert first["intrinsic_channels"] + first["ghost_channels"] == first["channels"]
    assert -1 <= first["ghost_similarity"]["mean"] <= 1 and 1 <= first["effective_rank"] <= first["max_rank"]
    assert [m["depth"] for m in summary["modules"]][::31] == [0.0, 1.0]
    again = ghosts.compute(params)  # random weights are seeded by run.seed: the same report twice
    np.testing.assert_array_equal(again.layers[5].output, result.layers[5].output)


def test_figures_carry_the_random_resnet_banner(tiny_maps):
    _, result = tiny_maps
    result.resnet_weights = "random"  # as if compared: the banner text is what matters here
    text = ghosts.resnet_banner(result)
    assert "random weights" in text and "resnet_weights" in text
    fig = plots.redundancy_vs_depth(ghosts.depth_series(result), text)
    assert any(text == t.get_text() for t in fig.texts)
    result.resnet_weights = None
    assert ghosts.resnet_banner(result) is None
    gallery = plots.ghost_pair_gallery(ghosts.gallery_panels(result))
    assert len(gallery.axes) == 1 and len(ghosts.gallery_panels(result)[0]["pairs"]) <= 4


def test_explorer_updates_in_process(tiny_maps):
    from ghostlab import widgets

    params, result = tiny_maps
    explorer = widgets.maybe_ghost_explorer(result, params)
    assert not isinstance(explorer, widgets.GhostExplorer)  # interactive is off in the tiny profile
    explorer = widgets.ghost_explorer(result)
    first = explorer.view.value
    assert first[:4] == b"\x89PNG"
    explorer.module.value = "blocks.6.0.ghost1"
    assert explorer.channel.max == result.layer("blocks.6.0.ghost1").intrinsic.shape[1] - 1
    explorer.channel.value = 5
    state = explorer.state()
    assert state["module"] == "blocks.6.0.ghost1" and state["intrinsic"] == 5 and state["ghosts"] == [5]
    assert explorer.view.value != first
    assert "Ghost-map explorer" in repr(explorer)


@pytest.mark.slow
def test_explorer_runs_in_a_kernel_and_the_report_keeps_static_figures(tmp_path):
    """The explorer executed in a real kernel (papermill, as the runner does it), then the HTML report."""
    import re

    import nbformat

    from ghostlab import runner

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell('params_file = ""\nrun_dir = ""', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from ghostlab import ghosts, plots, widgets\nfrom ghostlab.config import load_params\n"
            "params = load_params(params_file, ['model.weights=random', 'ghost_maps.interactive=true'])\n"
            "maps = ghosts.compute(params)\n"
            "plots.intrinsic_vs_ghost(ghosts.source_pair_panels(maps))"),
        nbformat.v4.new_code_cell(
            "explorer = widgets.maybe_ghost_explorer(maps, params)\n"
            "explorer.module.value = maps.layers[-1].name\nexplorer.channel.value = 2\nexplorer"),
        nbformat.v4.new_code_cell("assert explorer.state()['intrinsic'] == 2\nprint('explorer ok')"),
    ]
    src, out = tmp_path / "explorer.ipynb", tmp_path / "explorer.out.ipynb"
    nbformat.write(nb, str(src))
    runner.execute(src, out, TINY, tmp_path, timeout=120)
    executed = nbformat.read(str(out), as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any("explorer ok" in o.get("text", "") for o in outputs)
    page = runner.render_html(out).read_text()
    assert len(re.findall(r"data:image/png;base64,", page)) >= 1
    assert "Ghost-map explorer" in page and "Traceback" not in page


@pytest.mark.slow
def test_notebook_05_in_the_tiny_run(tiny_run):
    """The report: ghost_maps.json per module, every static figure, the index's redundancy figure."""
    import json
    import re

    result = tiny_run.results["05_ghost_maps"]
    assert result.status == "ok", result.error
    summary = json.loads(tiny_run.artifact("ghost_maps.json").read_text())
    assert summary["model"] == tiny_run.params.model.name and summary["images"] == ["grace_hopper.jpg"]
    assert len(summary["modules"]) == 32 and all("effective_rank" in m for m in summary["modules"])
    page = (tiny_run.run_dir / "05_ghost_maps.html").read_text()
    assert len(re.findall(r"data:image/png;base64,", page)) >= 5  # input, pairs, distribution, heatmaps, gallery, depth
    assert tiny_run.artifact("figures/05_ghost_maps_redundancy_vs_depth.png").exists()
    assert "05_ghost_maps_redundancy_vs_depth" in (tiny_run.run_dir / "index.html").read_text()
