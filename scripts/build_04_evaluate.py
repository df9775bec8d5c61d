"""Builds notebooks/04_evaluate.ipynb (run it after editing the cells below)."""

from pathlib import Path

from make_notebook import start_cells, write_notebook

CELLS = [
    ("md", """
# 04 · Evaluate: top-1 / top-5, fp32 vs int8

Accuracy of the fp32 ONNX model and of every int8 variant on the same images, with the
reference post-processing (softmax, then top-k), and the paired statistics that say whether
an int8 model's drop is real or noise. Every model sees each batch in one pass over the data;
per-image predictions are written to `artifacts/predictions_<model>.csv`.
"""),
    *start_cells("04_evaluate", "evaluate, plots"),
    ("md", """
## What was evaluated

The images, the preprocessing that produced every number below, and whether the images that
calibrated the int8 models are among them (calibrating on test images flatters int8 a little).
"""),
    ("code", """
result = evaluate.evaluate_run(run)
run.publish(**evaluate.summary_values(result))
plots.table(evaluate.data_rows(result))
"""),
    ("md", """
## Accuracy

Top-1 and top-5 in percent. When the model is `ghostnet_100` on 1000-class ImageNet, the
published figures follow, each with the preprocessing that produced it: compare our fp32 row
with the reference row whose preprocessing matches ours.
"""),
    ("code", """
rows = evaluate.accuracy_rows(result)
run.publish_table("accuracy", rows)
plots.table(rows, digits=3, caption=f"preprocessing: {result.preprocess}")
"""),
    ("md", """
## fp32 → int8 on the same images: is the drop real?

Per int8 model: top-1 drop in percentage points with a 95% paired-bootstrap interval;
top-1 agreement with fp32; images that flip right→wrong and wrong→right; the exact McNemar
p-value on those flips (small p: the drop is real, not noise); the mean KL divergence of
the int8 softmax from the fp32 softmax.
"""),
    ("code", """
rows = evaluate.paired_rows(result)
run.publish_table("fp32 vs int8 (paired)", rows)
plots.table(rows, digits=3)
"""),
    ("md", """
Each line is one int8 model's top-1 drop and its 95% interval; an interval that crosses the
dashed zero line is compatible with no change.
"""),
    ("code", """
fig = plots.top1_drop_intervals(evaluate.drop_interval_rows(result))
run.publish_figure("top1_drop", fig)
fig
"""),
    ("md", """
## The classes that lose most

Per int8 model, the ten classes whose top-1 falls most from fp32 (only classes that lose).
"""),
    ("code", """
plots.table(evaluate.class_loss_rows(result), digits=1)
"""),
    ("md", """
## Accuracy against latency

Top-1 against median latency from `03_benchmark` (one setting for every model). Models on
the Pareto front (no other model is both faster and more accurate) are outlined.
"""),
    ("code", """
points = evaluate.run_latency_points(run, result)
fig = plots.accuracy_vs_latency(points)
if points:
    run.publish_figure("accuracy_vs_latency", fig)
fig
"""),
    ("md", """
## Evaluation speed

How fast this pass ran on this machine, and what 50,000 images (ImageNet's validation set)
would take with this model set: the time to budget for a full evaluation.
"""),
    ("code", """
plots.table(evaluate.speed_rows(result), digits=1)
"""),
    ("md", """
## Files written

`evaluation.json` holds every number above; each `predictions_<model>.csv` has one row per
image: file, label, the top-5 class ids and their probabilities.
"""),
    ("code", """
plots.table(evaluate.file_rows(result))
"""),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parent.parent / "notebooks" / "04_evaluate.ipynb", CELLS)
