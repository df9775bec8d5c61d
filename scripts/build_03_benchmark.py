"""Builds notebooks/03_benchmark.ipynb (run it after editing the cells below)."""

from pathlib import Path

from make_notebook import start_cells, write_notebook

CELLS = [
    ("md", """
# 03 · Benchmark: latency and throughput on this CPU

Every model of this run (the fp32 ONNX export, each int8 variant, and PyTorch eager as the
baseline you would otherwise deploy) timed side by side with ONNX Runtime on this machine's
CPU, at the canonical 3×224×224 input whatever size the profile trains at. It answers the
questions a vendor benchmark tool answers with its batch (`-b`), thread and instance (`-i`)
options, and says how much of the machine each model uses.
"""),
    *start_cells("03_benchmark", "bench, plots"),
    ("md", """
## The machine and the measurement

The grid is every batch size × every intra-op thread count of one session, plus K sessions of
one thread each running in parallel (`benchmark.sessions`). Every model is warmed up, then timed
in rounds; within a round the models run one after another in an order that rotates round by
round, so a slow spell on a shared machine hits all of them alike. A load average well above the
core count means other work shared the CPU: absolute numbers are then pessimistic and noisy.
"""),
    ("code", """
result = bench.benchmark_run(run)
run.publish(**bench.headline_values(result))
plots.table(bench.machine_rows(result), caption="This CPU and how it was measured")
"""),
    ("md", """
## Warnings

What in this CPU or these models is likely to make int8 slow: no VNNI instructions, or int8
activations with int8 weights (S8S8), which ONNX Runtime runs far slower than uint8 activations
on x86. A busy machine is flagged here too.
"""),
    ("code", """
plots.table(bench.warning_rows(result))
"""),
    ("md", """
## The models

Precision as read from each graph (the zero-point types of its quantize/dequantize nodes),
multiply-accumulates per image at the measured input size, and file size.
"""),
    ("code", """
plots.table(bench.model_rows(result), digits=2)
"""),
    ("md", """
## At a glance

Each model at `benchmark.headline_batch` images per inference (8 by default, or the closest batch
size measured) on one session with the most threads measured: all cores by default. `× fp32` and
`× torch` are paired ratios: the median over rounds of the throughput ratio within each round, so
they hold up when the machine's speed drifts. `% of peak` is the roofline fraction explained
further down. The best int8 variant is the one fastest against fp32 over the whole grid. When
other work shares the CPU, torch's OpenMP threads stall each time one of them is descheduled, so
its all-cores number drops sharply: the 1-thread comparison is then the fair one.
"""),
    ("code", """
rows = bench.headline_rows(result)
run.publish_table(bench.headline_title(result), rows)
plots.table(rows, digits=2, caption=bench.headline_title(result))
"""),
    ("code", """
plots.table(bench.headline_value_rows(result), digits=2)
"""),
    ("md", """
## Throughput against batch size

Images per second (median round) per model, one panel per threads/sessions setting. Larger
batches amortize per-inference overhead, but their activations can outgrow the CPU caches, so
throughput need not rise with batch size. K sessions of one thread show what running K instances
side by side gives, without any synchronization between threads inside one inference.
"""),
    ("code", """
fig = plots.bench_throughput(result["results"])
run.publish_figure("throughput", fig)
fig
"""),
    ("md", """
## Latency at batch 1

The spread of single-image latency over every timed inference (box: quartiles; whiskers: 5th
to 95th percentile; dots: the rest). A long upper tail is the machine being shared or a thread
being descheduled, not the model.
"""),
    ("code", """
plots.bench_latency(result["results"], batch=1)
"""),
    ("md", """
## Int8 speed-up over fp32

Each int8 variant's throughput divided by fp32's in the same round, median over rounds, per
grid cell; the whiskers are the inter-quartile range of the per-round ratios. Above the dashed
line the int8 model is faster.
"""),
    ("code", """
fig = plots.bench_speedup(result["results"])
run.publish_figure("int8_speedup", fig)
fig
"""),
    ("md", """
## Where the time goes

Each ONNX model's time per image split by GhostNet part, from ONNX Runtime's profiler on one
thread at the headline batch size: fp32 beside the best int8 variant (all models in the table).
Int8 pays off on the convolutions with many channels; GhostNet's cheap depthwise operations
work on few channels, where ONNX Runtime's int8 depthwise kernel can be slower than fp32, and
quantize/dequantize and layout changes are extra work that fp32 does not do.
"""),
    ("code", """
plots.bench_parts(result["profile"], ["fp32", result["headline"].get("best_int8")])
"""),
    ("code", """
plots.table(bench.profile_rows(result), digits=2)
"""),
    ("md", """
## Roofline: how much of the machine each model uses

MACs per image × measured images per second, against a peak MAC rate estimated from the ISA and
the clock (formula under the table) for the cores the setting used. The peak is an optimistic
upper bound: GhostNet's depthwise and 1×1 convolutions on small maps are limited by memory
traffic, so a few percent is typical and int8's fraction of its (4× higher) peak is lower still.
"""),
    ("code", """
plots.table(bench.roofline_rows(result), digits=2, caption=result["peak"]["formula"])
"""),
    ("md", """
## Every cell

All models on every grid cell. `b8 · 2t` is batch 8 on one session of 2 threads; `b8 · 2×1t`
is 2 sessions of one thread each. p99 from fewer than about 100 samples is close to the maximum.
"""),
    ("code", """
plots.table(bench.result_rows(result), digits=2)
"""),
    ("md", """
`artifacts/benchmark.json` holds every number above plus the raw latencies; its layout is
documented in `ghostlab/bench.py`.
"""),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parent.parent / "notebooks" / "03_benchmark.ipynb", CELLS)
