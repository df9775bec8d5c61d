"""Speed targets of the benchmark step, measured side by side in one run.

    .venv/bin/python scripts/bench_targets.py RUN_DIR [--rounds 20] [--size 224] [--candidate NAME]
        [--recommended 1.8] [--recommended-torch 3.0] [--int8 1.3] [--torch 3.0]

Times the run's candidates (runtimes.run_candidates: ORT fp32 and int8, OpenVINO f32/bf16/int8 and
NNCF IR, torch eager) at batch 8 on all cores and on one thread, in interleaved rounds
(ghostlab.bench), and prints the paired ratios side by side: the recommended candidate over ORT fp32
and over torch eager, ORT's best int8 over ORT fp32, ORT fp32 over torch eager. The recommended
candidate is the run's evaluation.json recommendation when 04 ran, else ``--candidate``, else the
fastest candidate at batch 8 (say so when accuracy was not checked). Prints the load average: on a
shared machine the ratios hold up better than the absolute numbers. Exits 1 when a ratio misses its
target. Nothing is written to the run folder. Needs a run where 01 and 02 completed, e.g. the
reference model with random weights (speed does not depend on them):

    .venv/bin/ghostlab run params/demo.yaml --only export,calibrate --out /tmp/gn100 \\
        -p model.name=ghostnet_100 -p model.weights=random -p model.num_classes=1000 \\
        -p model.input_size=224 -p data.resize=256 -p data.crop=224 -p calibrate.sqnr=false
    .venv/bin/python scripts/bench_targets.py /tmp/gn100
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", help="a run folder with artifacts/model.onnx and int8_*.onnx")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224, help="input side the targets are stated at")
    ap.add_argument("--candidate", default=None, help="the candidate to hold to the recommended targets")
    ap.add_argument("--recommended", type=float, default=1.8, help="target: recommended / ORT fp32")
    ap.add_argument("--recommended-torch", type=float, default=3.0, help="target: recommended / torch eager")
    ap.add_argument("--int8", type=float, default=1.3, help="target: ORT's best int8 throughput / ORT fp32")
    ap.add_argument("--torch", type=float, default=None,
                    help="target: ORT fp32 throughput / torch eager (default: none, printed only)")
    args = ap.parse_args(argv)

    import json

    import ghostlab
    from ghostlab import bench, bench_report

    run_dir = Path(args.run_dir).resolve()
    run = ghostlab.start("bench_targets", run_dir / "params.yaml", run_dir, show=False)
    # the targets are stated at --size, whatever the profile measures at
    run.params = dataclasses.replace(run.params, benchmark=dataclasses.replace(run.params.benchmark,
                                                                               input_size=args.size))
    models, facts = bench.run_models(run)
    params = dataclasses.replace(run.params.benchmark, batch_sizes=[args.batch], threads=[0, 1], sessions=[1],
                                 rounds=args.rounds, quick=False, include_torch=True, headline_batch=args.batch,
                                 grid_candidates=None, profile=False)
    result = bench.run_benchmark(models, params, progress=lambda m: print(m, file=sys.stderr))
    h = result["headline"]
    cell = bench.headline_cell(result)
    source = "--candidate"
    name = args.candidate
    if name is None:
        try:
            rec = json.loads((run_dir / "artifacts" / "evaluation.json").read_text()).get("recommendation") or {}
        except (OSError, ValueError):
            rec = {}
        name, source = (rec.get("candidate"), "evaluation.json's recommendation") if rec.get("candidate") else (
            h["best"], "the fastest at batch 8 (no evaluation.json: accuracy not checked here)")
    print(f"{run.params.model.name} at {result['input_shape']}, {facts['macs'] / 1e6:.0f} MMACs/image; "
          f"{result['cpu']['model']}, {result['cpu']['cores']} cores; load {result['load_average']['before'][0]:.1f}"
          f" -> {result['load_average']['after'][0]:.1f}; {args.rounds} rounds in {result['seconds']:.0f} s")
    for r in bench_report.result_rows(result):
        print(f"  {r['setting']:10s} {r['model']:20s} p50 {r['p50 ms']:8.2f} ms  {r['img/s']:8.1f} img/s  "
              f"x fp32 {r['× fp32']:.2f}  x torch {r['× torch'] or float('nan'):.2f}")
    chosen = cell.get(name) or {}
    label = result["models"].get(name, {}).get("label", name)
    print(f"recommended candidate: {name} ({label}), from {source}")
    ok = True
    for what, value, target in ((f"{name} / ORT fp32", chosen.get("ratio_vs_fp32"), args.recommended),
                                (f"{name} / torch eager", chosen.get("ratio_vs_torch"), args.recommended_torch),
                                (f"ORT best int8 ({h['best_int8']}) / ORT fp32", h["best_int8_vs_fp32"], args.int8),
                                ("ORT fp32 / torch eager", h["fp32_vs_torch"], args.torch)):
        met = target is None or (value is not None and value >= target)
        ok &= met
        goal = f"(target >= {target}) {'PASS' if met else 'FAIL'}" if target is not None else "(no target)"
        print(f"{what} at {bench_report.headline_title(result)}: {value if value is None else round(value, 2)} {goal}")
    if h.get("fp32_vs_torch_1_thread") is not None:
        print(f"ORT fp32 / torch eager on 1 thread: {h['fp32_vs_torch_1_thread']:.2f}")
    print(f"fastest at batch 8: {h['best']}; ORT's best int8 variant: {h['best_int8']}")
    print(f"load average (1 min) before / after: {result['load_average']['before'][0]:.2f} / "
          f"{result['load_average']['after'][0]:.2f} on {result['cpu']['cores']} cores")
    for w in result["warnings"]:
        print(f"warning: {w}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
