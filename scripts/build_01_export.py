"""Builds notebooks/01_export.ipynb (run it after editing the cells below)."""

from pathlib import Path

from make_notebook import start_cells, write_notebook

CELLS = [
    ("md", """
# 01 · Export to ONNX

The model as timm builds it, exported to ONNX with the settings below and checked
against PyTorch on real images from the evaluation set. Everything later in the run
(calibration, benchmark, evaluation) reads the `model.onnx` written here.
"""),
    *start_cells("01_export", "export, plots"),
    ("md", """
## Export

Builds the model from `model.name` and `model.weights`, re-parameterizes GhostNetV3 if needed,
exports with the TorchScript exporter and runs `onnx.checker` with full checks.
"""),
    ("code", """
result = export.run_export(run)
run.publish(params=result["params"], macs=result["macs"], onnx_mb=round(result["onnx_mb"], 2),
            parity_max_abs_diff=result["parity"]["max_abs_diff"],
            parity_top1_agreement=result["parity"]["top1_agreement"])
"""),
    ("md", """
## Model card

Parameters and multiply-accumulates (MACs, counted by torch's `FlopCounterMode` at the input size
of this profile) beside the figures the GhostNet paper reports, when it reports this model.
"""),
    ("code", """
plots.table(export.model_card_rows(result), digits=2)
"""),
    ("md", "## Export settings"),
    ("code", """
plots.table(export.settings_rows(result))
"""),
    ("md", """
## Parity: PyTorch vs ONNX Runtime

The same batch of preprocessed evaluation images through both. A faithful export has top-1
agreement 1.0 and a maximum absolute logit difference around 1e-5 or less.
"""),
    ("code", """
run.publish_table("parity", [result["parity"]])
plots.table([result["parity"]], digits=4)
"""),
    ("md", """
## What the graph is made of

Node counts by op type: GhostNet's cheap operations show up as depthwise `Conv` nodes and
the `Concat`/`Slice` pairs that join intrinsic and ghost maps.
"""),
    ("code", """
fig = plots.op_histogram(result["ops"])
run.publish_figure("ops", fig)
fig
"""),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parent.parent / "notebooks" / "01_export.ipynb", CELLS)
