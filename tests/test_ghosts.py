"""Ghost feature maps: hooks, the ghost->intrinsic mapping, similarity and rank, the explorer."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from ghostlab import demo, ghost_report, ghosts, models, plots, redundancy
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
    assert redundancy.cosine_similarity(m, m) == pytest.approx(1.0)
    assert redundancy.cosine_similarity(m, -m) == pytest.approx(-1.0)
    assert redundancy.cosine_similarity(m, 3 * m) == pytest.approx(1.0)
    assert math.isnan(redundancy.cosine_similarity(m, np.zeros_like(m)))
    sim = redundancy.channel_similarity(np.stack([m, -m, 2 * m, np.zeros_like(m)]))
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
    assert redundancy.effective_rank(rng.uniform(0.5, 3, size=(6, 1, 1)) * one) == pytest.approx(1.0, abs=1e-5)
    q, _ = np.linalg.qr(rng.normal(size=(64, 5)))
    orthogonal = (q.T * np.array([1, 2, 3, 4, 50])[:, None]).reshape(5, 8, 8)  # norms differ: shapes count
    assert redundancy.effective_rank(orthogonal) == pytest.approx(5.0)
    with_dead = np.concatenate([orthogonal, np.zeros((3, 8, 8))])
    assert redundancy.effective_rank(with_dead) == pytest.approx(5.0)
    assert redundancy.effective_rank(np.zeros((4, 8, 8))) == 0.0


def test_max_similarity_and_most_similar_pairs():
    rng = np.random.default_rng(2)
    maps = rng.normal(size=(6, 10, 10))
    maps[4] = maps[1] * 2 + 0.01 * rng.normal(size=(10, 10))  # near-twin
    maps[5] = -maps[0]
    sim = redundancy.channel_similarity(maps)
    best = redundancy.max_similarity(sim)
    assert best[1] == pytest.approx(best[4]) and best[1] > 0.99 and best[1] == pytest.approx(sim[1, 4])
    pairs = ghost_report.similar_pairs(maps, count=3, size=28)
    assert pairs[0][:2] == (1, 4)
    assert len({c for a, b, _ in pairs for c in (a, b)}) == 2 * len(pairs), "each channel used once"
    assert [p[2] for p in pairs] == sorted((p[2] for p in pairs), reverse=True)


def test_subsample_bounds_the_map_size():
    maps = np.ones((2, 3, 56, 40), dtype=np.float32)
    assert redundancy.subsample(maps, 28).shape == (2, 3, 28, 28)
    assert redundancy.subsample(maps[..., :20, :20], 28).shape == (2, 3, 20, 20)


# ---------------------------------------------------------------- params, images, ResNet

def test_detail_modules_default_spread_and_unknown_names_are_refused():
    layers = ghosts.capture_ghost_maps(models.create_model("ghostnet_050", "random", 10), _x())
    picked = ghosts.detail_modules(layers, [])
    assert len(picked) == 3 and all(n.endswith("ghost1") for n in picked) and picked[0] == "blocks.0.0.ghost1"
    assert ghosts.detail_modules(layers, ["blocks.3.0.ghost2"]) == ["blocks.3.0.ghost2"]
    with pytest.raises(ConfigError, match="did you mean blocks.3.0.ghost1"):
        ghosts.detail_modules(layers, ["blocks.3.0.gost1"])


def test_images_default_to_an_evaluation_image_with_its_class_and_bad_paths_say_what_to_do(tmp_path, prepared):
    [(label, path)] = ghosts.image_inputs(prepared)
    assert label == "#0 " + demo.class_names(4)[0] and path.exists()  # in distribution, class shown
    photo = ghosts.image_inputs(prepared.replace(ghost_maps=dataclasses.replace(
        prepared.ghost_maps, image="grace_hopper")))
    assert [lb for lb, _ in photo][0] == "grace_hopper.jpg" and len(photo) == 2
    with pytest.raises(DataError, match="ghost_maps.image"):
        ghosts.image_inputs(load_params(TINY, [f"ghost_maps.image={tmp_path / 'nope.jpg'}"]))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="cannot read image"):
        ghosts.load_pictures([("bad", bad)], __import__("ghostlab.data").data.preprocess_for(prepared))
    measured = ghosts.metric_inputs(prepared)  # class-balanced: 8 images over 4 classes
    assert len(measured) == 8 and sorted(lb.split(" ", 1)[1] for lb, _ in measured) == \
        sorted(demo.class_names(4) * 2)


def test_resnet_weights_follow_the_model_weights_rules(tmp_path):
    with pytest.raises(ConfigError, match="resnet_weights"):
        ghosts.load_resnet("demo")
    off_demo = load_params(TINY, ["model.weights=random", "ghost_maps.resnet_weights=demo"])
    with pytest.raises(ConfigError, match="resnet_weights=demo trains the demo ResNet"):
        ghosts.load_comparison(off_demo.replace(data=dataclasses.replace(off_demo.data, dataset="seed")))
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
    with pytest.raises(ConfigError, match="twin_threshold"):
        load_params(TINY, ["ghost_maps.twin_threshold=1.5"])
    with pytest.raises(ConfigError, match="set image or dataset_indices"):
        load_params(TINY, ["ghost_maps.dataset_indices=[]"])


# ---------------------------------------------------------------- the notebook's computation

def test_effective_rank_in_both_definitions():
    """The shape rank (unit-norm maps, zero maps dropped) and plain Roy & Vetterli on the raw maps."""
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(64, 4)))
    maps = np.concatenate([(q.T * np.array([1.0, 2.0, 4.0, 8.0])[:, None]), np.zeros((2, 64))])  # + 2 dead maps
    s = np.linalg.svd(maps, compute_uv=False)
    p = s[s > 0] / s.sum()
    plain = float(np.exp(-(p * np.log(p)).sum()))
    assert redundancy.effective_rank(maps, unit_norm=False) == pytest.approx(plain)
    assert redundancy.effective_rank(maps) == pytest.approx(4.0)  # unit norms: 4 independent shapes
    assert plain < 4.0
    m = redundancy.map_metrics(maps.reshape(6, 8, 8), threshold=0.9)
    assert m["effective_rank"] == pytest.approx(4.0) and m["effective_rank_raw"] == pytest.approx(plain)
    assert m["effective_rank_fraction"] == pytest.approx(4 / 6) and m["effective_rank_raw_fraction"] == \
        pytest.approx(plain / 6)
    assert m["inactive_channels"] == 2 and m["twin_share"] == 0.0


def test_twin_share_counts_channels_with_a_near_twin_above_the_threshold():
    rng = np.random.default_rng(4)
    base = rng.normal(size=(4, 10, 10))
    twin = base[0] + 0.05 * rng.normal(size=(10, 10))  # cos ~0.999 with channel 0
    half = base[1] + 1.0 * rng.normal(size=(10, 10))  # cos ~0.7 with channel 1
    maps = np.concatenate([base, twin[None], half[None]])
    m = redundancy.map_metrics(maps, threshold=0.9)
    assert m["twin_share"] == pytest.approx(2 / 6)  # channel 0 and its twin
    assert redundancy.map_metrics(maps, threshold=0.5)["twin_share"] == pytest.approx(4 / 6)
    spread = redundancy.summarize([m, redundancy.map_metrics(base, threshold=0.9)])
    assert spread["twin_share"] == pytest.approx(1 / 6) and spread["twin_share_sd"] == pytest.approx(1 / 6)


def test_measure_averages_over_images_with_their_spread():
    model = models.create_model("ghostnet_050", "random", 10)
    x = _x(5, 64)  # more than one METRIC_CHUNK
    rows, sims = ghosts.measure(lambda b: ghosts.capture_ghost_maps(model, b), x, 28, 0.9)
    assert len(rows) == 32 and [r["depth"] for r in rows][::31] == [0.0, 1.0]
    first = rows[0]
    assert first["images"] == 5 and first["twin_share_sd"] >= 0 and first["ghost_similarity"]["count"] > 0
    by_hand = [redundancy.map_metrics(img, 0.9)["mean_max_similarity"]
               for img in redundancy.subsample(ghosts.capture_ghost_maps(model, x)[0].output, 28)]
    assert first["mean_max_similarity"] == pytest.approx(np.mean(by_hand), abs=1e-5)
    assert first["mean_max_similarity_sd"] == pytest.approx(np.std(by_hand), abs=1e-5)
    assert sims[first["name"]].size == 5 * first["ghost_channels"]


# ---------------------------------------------------------------- the notebook's computation

@pytest.fixture(scope="module")
def prepared():
    """The tiny profile with its demo assets: GhostNet and the comparison ResNet, both trained (cached)."""
    return demo.prepare(load_params(TINY, ["ghost_maps.max_channels=4"]), show_progress=False)


@pytest.fixture(scope="module")
def tiny_maps(prepared):
    return prepared, ghosts.compute(prepared)


def test_both_networks_trained_on_the_same_images_at_the_same_size(tiny_maps):
    params, result = tiny_maps
    c = result.comparison
    assert c.name == demo.COMPARISON_NAME and c.weights == "demo" and c.trained and 0 <= c.accuracy <= 1
    assert not any(is_ghost for is_ghost in map(lambda m: type(m).__name__.startswith("Ghost"), c.model.modules()))
    assert result.accuracy is not None and result.input_size == 32
    summary = ghost_report.summary(result)
    assert summary["comparison"]["model"] == "demo_resnet" and summary["comparison"]["weights"] == "demo"
    assert summary["comparison"]["accuracy"] == c.accuracy and summary["comparison"]["random_weights"] is False
    assert len(summary["modules"]) == 32 and len(summary["comparison"]["blocks"]) == 8
    for row in summary["modules"][:1] + summary["comparison"]["blocks"][:1]:
        assert {"mean_max_similarity", "twin_share", "twin_share_sd", "effective_rank", "effective_rank_raw",
                "effective_rank_fraction", "effective_rank_raw_fraction", "max_rank"} <= set(row)
        assert row["images"] == 8 and row["effective_rank_raw"] <= row["effective_rank"] + 1e-9
    assert summary["images"] == [f"#0 {demo.class_names(4)[0]}"] and len(summary["metric_images"]) == 8
    json.dumps(summary)  # plain JSON
    # the same input for both: the shown maps come from the same pictures at the same (view) size
    assert result.view_scale == 2 and result.pictures.shape[1] == 64  # deepest shown module 4x4 at 32 px
    assert result.layer(result.detail[-1]).output.shape[-1] >= ghosts.MIN_VIEW_SIDE
    assert result.first_group().output.shape[-1] == 64 // 4
    assert "2x the 32px training size" in ghost_report.view_note(result)


def test_the_finding_is_computed_from_the_numbers(tiny_maps):
    _, result = tiny_maps
    f = ghost_report.finding(result)
    group = next(m for m in result.comparison_metrics if m["name"] == result.first_group().name)
    assert f["comparison_first_group_twin_share"] == group["twin_share"]
    assert f"{100 * group['twin_share']:.0f} % of channels have a near twin (cos > 0.9" in f["text"]
    assert f"median cos {f['ghost_to_source_median']:.2f}" in f["text"] and "trained demo_resnet" in f["text"]
    published = ghost_report.headline(result)
    assert published["conclusion"] == f["text"] and "warning" not in published
    assert ghost_report.comparison_banner(result) is None


def test_a_random_comparison_is_asked_for_and_warned_about_above_the_figures(prepared):
    params = prepared.replace(ghost_maps=dataclasses.replace(prepared.ghost_maps, resnet_weights="random",
                                                             metric_images=0))
    comparison, _ = ghosts.load_comparison(params)
    assert comparison.name == "resnet50" and not comparison.trained and comparison.accuracy is None
    result = ghosts.compute(params)
    banner = ghost_report.comparison_banner(result)
    assert "random weights" in banner and "resnet_weights" in banner
    published = ghost_report.headline(result)
    assert published["warning"] == banner and "untrained (random-weight) resnet50" in published["conclusion"]
    from ghostlab.runfolder import honesty_banner

    assert "Untrained comparison" in honesty_banner(params.to_dict())  # top of every page and of the index
    assert "Untrained comparison" not in honesty_banner(prepared.to_dict())
    fig = plots.redundancy_vs_depth(ghost_report.depth_series(result))
    assert not fig.texts, "the warning is at the top of the page, not inside a figure"
    assert all(p["banner"] is None for p in ghost_report.gallery_panels(result))


def test_no_comparison_says_why(prepared):
    params = prepared.replace(ghost_maps=dataclasses.replace(prepared.ghost_maps, compare_resnet=False,
                                                             metric_images=0))
    result = ghosts.compute(params)
    assert result.comparison is None and ghost_report.summary(result)["comparison"] is None
    assert "compare_resnet is off" in ghost_report.finding(result)["text"]
    assert len(plots.ghost_pair_gallery(ghost_report.gallery_panels(result)).axes) == 1


def test_figures_and_tables_of_both_networks(tiny_maps):
    _, result = tiny_maps
    assert len(plots.ghost_pair_gallery(ghost_report.gallery_panels(result)).axes) == 2
    fig = plots.redundancy_vs_depth(ghost_report.depth_series(result), twin_threshold=0.9)
    assert len(fig.axes) == 4 and len(fig.axes[0].lines) > 40
    rows = ghost_report.network_rows(result)
    assert [r["network"] for r in rows] == ["ghostnet_050", "demo_resnet"] and rows[1]["val top-1 %"] is not None
    assert {r["network"] for r in ghost_report.module_rows(result)} == {"ghostnet_050", "demo_resnet"}


def test_explorer_offers_both_networks_and_the_images(tiny_maps):
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
    explorer.network.value = "comparison"
    assert explorer.module.value == "layer1.0" and explorer.channel.max == result.comparison_layers[0].channels - 1
    state = explorer.state()
    assert state["network"] == "comparison" and state["ghosts"] == [] and state["nearest_twin"] is not None
    explorer.image.value = ("metric", 3)  # captured for both networks on first choice
    assert explorer.state()["image"] == ("metric", 3) and ("metric", 3) in explorer._views
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
            "import dataclasses, ghostlab\nfrom ghostlab import ghost_report, ghosts, plots, widgets\n"
            "run = ghostlab.start('05_ghost_maps', params_file, run_dir)\n"
            "params = run.params.replace(ghost_maps=dataclasses.replace(run.params.ghost_maps, interactive=True))\n"
            "maps = ghosts.compute(params)\n"
            "plots.intrinsic_vs_ghost(ghost_report.source_pair_panels(maps))"),
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
    import html
    import re

    result = tiny_run.results["05_ghost_maps"]
    assert result.status == "ok", result.error
    summary = json.loads(tiny_run.artifact("ghost_maps.json").read_text())
    assert summary["model"] == tiny_run.params.model.name and summary["images"][0].startswith("#0 ")
    assert len(summary["modules"]) == 32 and all("effective_rank_raw" in m for m in summary["modules"])
    comparison = summary["comparison"]
    assert comparison["model"] == "demo_resnet" and comparison["weights"] == "demo" and comparison["accuracy"] >= 0
    page = (tiny_run.run_dir / "05_ghost_maps.html").read_text()
    assert len(re.findall(r"data:image/png;base64,", page)) >= 5  # input, pairs, distribution, heatmaps, gallery, depth
    assert tiny_run.artifact("figures/05_ghost_maps_redundancy_vs_depth.png").exists()
    finding = summary["finding"]["text"]
    assert "trained demo_resnet" in finding and html.escape(finding, quote=False) in page
    assert page.index(html.escape(finding, quote=False)) < page.index("data:image/png;base64,"), "finding first"
    assert html.escape(finding) in (tiny_run.run_dir / "index.html").read_text()
    assert "05_ghost_maps_redundancy_vs_depth" in (tiny_run.run_dir / "index.html").read_text()
