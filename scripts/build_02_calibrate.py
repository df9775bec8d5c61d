"""Builds notebooks/02_calibrate.ipynb (run it after editing the cells below)."""

from pathlib import Path

from make_notebook import start_cells, write_notebook

CELLS = [
    ("md", """
# 02 · Calibrate: int8 variants

Static int8 quantization with ONNX Runtime (QDQ format) of the `model.onnx` from 01, one model per
variant in `calibrate.variants`. For each: how far it drifts from fp32 on hold-out images, which
tensors lose the most signal (SQNR, per tensor, tagged by GhostNet part), which nodes hurt most when
quantized alone, and an `auto` variant that keeps the fewest of those in fp32 to reach a target.
"""),
    *start_cells("02_calibrate", "calibrate, plots"),
    ("md", """
## Calibration images

Drawn class-balanced from the calibration set and split into the images whose activations set the
ranges and a hold-out slice that none of the ranges saw: top-1 agreement, KL and the sensitivity
ranking below are measured on the hold-out. The model is first run through ONNX Runtime's
`quant_pre_process`. Range calibration feeds ORT's calibrator one chunk at a time, so histogram
methods hold one chunk's activations in memory, not the whole set's.
"""),
    ("code", """
cal = calibrate.prepare(run)
plots.table(cal.setup_rows())
"""),
    ("md", """
## Warnings

Settings that are slow or lossy on this CPU, and a calibration set too small for the classes.
"""),
    ("code", """
plots.notes(cal.warnings())
"""),
    ("md", """
## Variants

`minmax` uses each tensor's observed range; `percentile` clips it to the given percentile of a
histogram; `entropy` picks the range that minimises the KL divergence between the fp32 and
quantized histograms. *Agreement*: share of hold-out images whose int8 top-1 class equals fp32's;
*mean KL*: divergence of the int8 softmax from fp32's. *Median / worst SQNR*: over every quantized
tensor, the noise its own quantization adds (higher is better; each 6 dB is about one bit).
*Output SQNR*: the logits against fp32's.
"""),
    ("code", """
cal.build_variants()
plots.table(cal.summary_rows(), digits=4)
"""),
    ("md", """
## Sensitivity: nodes that hurt when quantized alone

Candidates come from the base variant's SQNR (up to `calibrate.sensitivity_candidates`): nodes
touching the lowest-SQNR tensors, and nodes whose output lost the most SQNR against fp32 compared
with their inputs (*SQNR drop*: what an outlier channel does, while the tensor's own SQNR looks
fine). Each is quantized on its own with the rest of the model in fp32 and ranked by the mean KL
that causes on the hold-out. `auto` tries nodes in this order.
"""),
    ("code", """
base, _ = cal.rank_nodes()
plots.table(cal.sensitivity_rows(top=15), digits=5, caption=f"base variant: {base}")
"""),
    ("md", """
## Mixed precision: the `auto` variant

The base variant (`base`, or the variant with the best hold-out agreement) with nodes kept in fp32:
down the ranking, each node is tried on top of those already kept and stays only if hold-out
agreement (then KL) improves, until agreement reaches `calibrate.auto_target_agreement`. A node is
kept in fp32 together with the neighbours that would otherwise quantize its inputs and outputs.
The second table lists every node tried.
"""),
    ("code", """
cal.build_autos()
plots.table(cal.auto_rows(), digits=4)
"""),
    ("code", """
plots.table(cal.auto_steps(), digits=5)
"""),
    ("md", """
## What fp32 nodes cost in speed

A quick check, not the benchmark (that is notebook 03): batch 1 at the model's input size, one
thread, rounds interleaved across the models so machine noise hits them alike.
"""),
    ("code", """
plots.table(cal.speed(), digits=3)
"""),
    ("md", """
## SQNR along the network

Each dot is one quantized tensor at its depth in the graph, coloured by the GhostNet part it belongs
to; its height is the noise its own quantization adds. The black line is the activation's SQNR
against the fp32 model: the error accumulated up to that point. Grey bands mark tensors left in fp32.
"""),
    ("code", """
fig = plots.sqnr_by_depth(cal.tensor_tables())
fig
"""),
    ("md", """
## The 10 worst tensors per variant

Lowest local SQNR first. Unquantized tensors are not listed (their SQNR is infinite);
`calibration_<variant>.json` holds every tensor with its range.
"""),
    ("code", """
for name, rows in cal.worst_tables(10).items():
    display(plots.table(rows, digits=2, caption=name))
"""),
    ("md", """
## For the index page
"""),
    ("code", """
run.publish(**cal.headline())
run.publish_table("int8 variants", cal.summary_rows())
run.publish_figure("sqnr_by_depth", fig)
plots.table(cal.summary_rows(), digits=4)
"""),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parent.parent / "notebooks" / "02_calibrate.ipynb", CELLS)
