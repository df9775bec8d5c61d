"""Builds notebooks/05_ghost_maps.ipynb (run it after editing the cells below)."""

from pathlib import Path

from make_notebook import start_cells, write_notebook

CELLS = [
    ("md", """
# 05 · Ghost feature maps

GhostNet starts from an observation about ordinary CNNs: many feature maps of a layer come in
near-identical pairs ("ghosts"), so some maps can be made cheaply from others. Each Ghost module
therefore computes a few *intrinsic* maps with a normal convolution and makes *ghost* maps from
them with a cheap depthwise one. This report shows both for this run's model on one photo, measures
how alike they are, and compares how redundant each layer is, across depth, with ResNet-50.
"""),
    *start_cells("05_ghost_maps", "ghosts, plots, widgets"),
    ("md", """
## The input

Forward hooks capture every Ghost module's intrinsic maps (`primary_conv`), ghost maps
(`cheap_operation`) and output for the image(s) below, preprocessed as in the rest of this run
(`ghost_maps.image`, default: the photo matplotlib ships; `ghost_maps.dataset_indices` adds
evaluation images). Everything is also written to `artifacts/ghost_maps.json`.
"""),
    ("code", """
maps = ghosts.run_ghost_maps(run)
plots.ghost_inputs(maps.pictures, maps.image_labels, maps.preprocess)
"""),
    ("md", """
## Intrinsic maps and the ghosts made from them

For a few modules spread over depth (`ghost_maps.modules` to choose): the strongest intrinsic maps
(top row) above the ghost map the cheap operation makes from each (bottom row), labelled
`intrinsic → ghost` with their cosine similarity. Each map is scaled to its own range: compare
shapes, not brightness.
"""),
    ("code", """
plots.intrinsic_vs_ghost(ghosts.source_pair_panels(maps))
"""),
    ("md", """
## How alike is each ghost map to its source?

Per Ghost module, the distribution of the cosine similarity between each ghost map and the intrinsic
map it is made from (maps average-pooled to at most `ghost_maps.similarity_size` pixels per side).
Near 1: the ghost is mostly a copy; near 0 or negative: the cheap operation adds something new
(edges, shifts, sign flips). Expansion modules (`g1`) end in a ReLU, so their maps are non-negative;
projection modules (`g2`) are linear.
"""),
    ("code", """
plots.ghost_similarity_distribution(ghosts.ghost_similarity_by_module(maps))
"""),
    ("md", """
## Channel by channel

Cosine similarity of every pair of channels in each detailed module's output. The output is
`[intrinsic | ghost]` (dashed lines): a ghost resembling its source shows as a band offset from the
diagonal by the number of intrinsic channels. Grey rows are inactive (all-zero) channels.
"""),
    ("code", """
plots.channel_similarity_heatmaps(ghosts.heatmap_panels(maps))
"""),
    ("md", """
## Ghost pairs: the most similar channels

The most similar pairs of channels (each channel used once) in the first detailed module's output
and, as in the GhostNet paper's first figure, in the output of ResNet-50's first residual group
(`layer1`, at ResNet's own 224-pixel input). A red note means ResNet-50 runs with random weights
(`ghost_maps.resnet_weights`), so its maps are those of an untrained network.
"""),
    ("code", """
plots.ghost_pair_gallery(ghosts.gallery_panels(maps))
"""),
    ("md", """
## Redundancy across depth: GhostNet vs ResNet-50

One point per layer (GhostNet: every Ghost module's output; ResNet-50: every residual block's output),
at its relative depth. Left: the mean over channels of each channel's highest cosine similarity to
another channel (1 = every map has an exact twin). Right: the effective rank of the layer's maps
(exp of the entropy of their normalised singular values, each map scaled to unit norm) as a fraction
of the most it could be. Deep layers of a small input have very few pixels, where any two maps look
alike: those points are faded.
"""),
    ("code", """
fig = plots.redundancy_vs_depth(ghosts.depth_series(maps), ghosts.resnet_banner(maps))
run.publish_figure("redundancy_vs_depth", fig)
run.publish(**ghosts.headline(maps))
fig
"""),
    ("md", """
## Per module

The numbers behind the figures, as written to `artifacts/ghost_maps.json` (means over the images).
`rank / max` is the effective rank over min(channels, pixels compared); `inactive` counts all-zero channels.
"""),
    ("code", """
plots.table(ghosts.module_rows(maps), digits=3)
"""),
    ("md", """
## Explorer

In JupyterLab with `ghost_maps.interactive: true`: pick any Ghost module, image and intrinsic channel
to see its ghost map(s) and its nearest twin. The static figures above carry the same maps.
"""),
    ("code", """
widgets.maybe_ghost_explorer(maps, run.params)
"""),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parent.parent / "notebooks" / "05_ghost_maps.ipynb", CELLS)
