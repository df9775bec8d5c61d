"""Speed targets of the benchmark step, measured side by side in one run.

    .venv/bin/python scripts/bench_targets.py outputs/demo [--rounds 20] [--int8 1.3] [--torch 3.0]

Times the run's models (fp32 ONNX, every int8 variant, torch eager) at batch 8 on all cores and on
one thread, in interleaved rounds (ghostlab.bench), and prints the paired ratios: best int8 over
fp32 and ORT fp32 over torch eager. Exits 1 when a ratio misses its target. Nothing is written to
the run folder. Needs a run where notebooks 01 and 02 have completed.
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
    ap.add_argument("--int8", type=float, default=1.3, help="target: best int8 throughput / fp32")
    ap.add_argument("--torch", type=float, default=3.0, help="target: ORT fp32 throughput / torch eager")
    args = ap.parse_args(argv)

    import ghostlab
    from ghostlab import bench

    run_dir = Path(args.run_dir).resolve()
    run = ghostlab.start("bench_targets", run_dir / "params.yaml", run_dir, show=False)
    models, facts = bench.run_models(run)
    params = dataclasses.replace(run.params.benchmark, batch_sizes=[args.batch], threads=[0, 1], sessions=[1],
                                 rounds=args.rounds, quick=False, include_torch=True, headline_batch=args.batch)
    result = bench.run_benchmark(models, params, progress=lambda m: print(m, file=sys.stderr))
    h = result["headline"]
    print(f"{run.params.model.name} at {result['input_shape']}, {facts['macs'] / 1e6:.0f} MMACs/image; "
          f"{result['cpu']['model']}, {result['cpu']['cores']} cores; load {result['load_average']['before'][0]:.1f}"
          f" -> {result['load_average']['after'][0]:.1f}; {args.rounds} rounds in {result['seconds']:.0f} s")
    for r in bench.result_rows(result):
        print(f"  {r['setting']:10s} {r['model']:14s} p50 {r['p50 ms']:8.2f} ms  {r['img/s']:8.1f} img/s  "
              f"x fp32 {r['× fp32']:.2f}  x torch {r['× torch'] or float('nan'):.2f}")
    ok = True
    for name, value, target in (("best int8 / fp32", h["best_int8_vs_fp32"], args.int8),
                                ("ORT fp32 / torch eager", h["fp32_vs_torch"], args.torch)):
        met = value is not None and value >= target
        ok &= met
        print(f"{name} at {bench.headline_title(result)}: {value if value is None else round(value, 2)} "
              f"(target >= {target}) {'PASS' if met else 'FAIL'}")
    if h.get("fp32_vs_torch_1_thread") is not None:
        print(f"ORT fp32 / torch eager on 1 thread: {h['fp32_vs_torch_1_thread']:.2f}")
    print(f"best int8 variant: {h['best_int8']}")
    for w in result["warnings"]:
        print(f"warning: {w}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
