"""The ``ghostlab`` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .errors import ConfigError, GhostlabError, RunError

EXAMPLES = """examples:
  ghostlab run params/demo.yaml                      every notebook on the demo profile
  ghostlab run params/imagenet.yaml -p data.root=/data/imagenet -p model.weights=ghostnet.pth
  ghostlab run params/demo.yaml --only export,calibrate --show-code
  ghostlab run params/demo.yaml --resume             rerun only what failed or changed since the last run
  ghostlab profiles                                  list the params files
  ghostlab demo                                      build the demo dataset and model only
  ghostlab cache build params/imagenet.yaml          decode + preprocess the images once (all cores)
  ghostlab evaluate params/demo.yaml                 re-evaluate the demo run's models, print the table
  ghostlab compare outputs/before outputs/after      two runs side by side: what changed, regressions in words
  ghostlab sweep params/sweeps/demo.yaml             many runs on a Dask cluster, then one compare page
"""

COMPARE_EXAMPLES = """examples:
  ghostlab compare outputs/demo outputs/demo-opset13         the first run is the baseline
  ghostlab compare outputs/a outputs/b outputs/c --out /tmp/abc
  ghostlab compare outputs/demo outputs/demo.failed-20260101-120000

writes compare.html (open it in a browser, offline) and compare.json; default folder:
compare-<names> beside the first run. Exit code 0 whatever the runs show.
"""

SWEEP_EXAMPLES = """examples:
  ghostlab sweep params/sweeps/demo.yaml                     a local Dask cluster, one worker process
  ghostlab sweep params/sweeps/demo.yaml --workers 2         two runs at a time (one benchmark at a time)
  ghostlab sweep params/sweeps/demo.yaml --resume            rerun only points that failed or changed
  ghostlab sweep params/sweeps/demo.yaml --scheduler tcp://10.0.0.5:8786

a sweep file names a base profile and a grid (or a list) of -p overrides:
  base: ../demo.yaml
  grid:
    model.name: [ghostnet_050, ghostnet_100]
    calibrate.num_images: [200, 1000]
exit code 0 when every run completed, 1 when one failed, 130 after Ctrl-C.
"""


def _split_only(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [v for item in values for v in item.split(",") if v]


def _cmd_run(args: argparse.Namespace) -> int:
    from .config import load_params
    from .runner import run_notebooks

    params = load_params(args.params, args.p or [])
    _, results = run_notebooks(params, only=_split_only(args.only), out=args.out,
                               show_code=True if args.show_code else None, resume=args.resume)
    return exit_code(results)


def exit_code(results) -> int:
    """0 when every notebook completed, 130 when interrupted, else 1."""
    if any(r.status == "interrupted" for r in results):
        return 130
    return 0 if all(r.status == "ok" for r in results) else 1


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import demo
    from .config import load_params

    params = load_params(args.params, args.p or [])
    prepared = demo.prepare(params)
    print(f"demo dataset: {prepared.data.root}")
    print(f"demo checkpoint: {prepared.model.weights}")
    metrics = demo.training_metrics(prepared)
    if metrics:
        print(f"demo model: val top-1 {metrics['val_top1']:.1%} on {metrics['val_images']} images, "
              f"trained {metrics['epochs']} epochs in {metrics['train_seconds']:.0f}s")
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from . import data
    from .config import load_params

    params = load_params(args.params, args.p or [])
    if args.action == "clear":
        freed = data.clear_cache(params)
        print(f"removed {data.cache_dir_for(params)} ({freed / 2**20:.1f} MiB)")
        return 0
    if args.action == "build":
        from . import demo

        rows = data.build_caches(demo.prepare(params))
    else:
        rows = data.cache_info(params)
    print(f"cache: {data.cache_dir_for(params)}")
    if not rows:
        print("(empty)")
    for row in rows:
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from . import demo, evaluate, evaluate_report, plots
    from .config import load_params
    from .runfolder import NotebookRun
    from .runner import run_dir_for

    params = demo.prepare(load_params(args.params, args.p or []))
    run = NotebookRun("04_evaluate", params, run_dir_for(params, args.out))
    if not run.artifact("model.onnx").exists():
        raise RunError(f"{run.run_dir} holds no exported model (artifacts/model.onnx): run "
                       f"`ghostlab run {args.params} --only 01,02{' --out ' + args.out if args.out else ''}` "
                       f"first, or point --out at an existing run folder")
    result = evaluate.run(run, progress=sys.stderr.isatty())
    print(f"{params.model.name} on {result.data['evaluated']:,} images — {result.preprocess}")
    print(plots.text_table(evaluate_report.accuracy_rows(result), digits=3))
    if result.paired:
        print()
        print(plots.text_table(evaluate_report.paired_rows(result), digits=3))
    print(f"\nwrote {run.artifact('evaluation.json')} and predictions_<model>.csv beside it")
    return 0


def profile_summaries(folder: Path) -> list[tuple[str, str]]:
    """(file, first comment line) for every params file in ``folder``."""
    out = []
    for path in sorted(folder.glob("*.yaml")):
        lines = [ln.lstrip("# ").strip() for ln in path.read_text().splitlines() if ln.startswith("#")]
        shown = os.path.relpath(path)
        out.append((shown if not shown.startswith("..") else str(path), lines[0] if lines else ""))
    return out


def _cmd_profiles(args: argparse.Namespace) -> int:
    folder = Path(args.folder)
    rows = profile_summaries(folder)
    if not rows:
        raise RunError(f"no params files (*.yaml) in {folder}")
    width = max(len(f) for f, _ in rows)
    for file, line in rows:
        print(f"{file:<{width}}  {line}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, summary_sentences

    page, doc = compare(args.runs, args.out)
    for line in summary_sentences(doc):
        print(line)
    print(f"comparison: {page}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import load_sweep, run_sweep

    if args.scheduler and args.workers is not None:
        raise ConfigError("--workers sizes the local cluster; with --scheduler the cluster's own workers run the "
                          "points: start more `dask worker` processes there instead")
    sweep = load_sweep(args.sweep)
    results, page = run_sweep(sweep, scheduler=args.scheduler, workers=args.workers or 1, resume=args.resume)
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "failed", "interrupted")}
    print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + (f"; comparison: {page}" if page else ""))
    if counts["interrupted"]:
        return 130
    return 1 if counts["failed"] else 0


def build_parser() -> argparse.ArgumentParser:
    default_demo = Path(__file__).resolve().parent.parent / "params" / "demo.yaml"
    parser = argparse.ArgumentParser(
        prog="ghostlab", description="Take a GhostNet to int8 ONNX and write HTML reports.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the notebooks on a params profile",
                       epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("params", help="params file, e.g. params/demo.yaml")
    p.add_argument("-p", action="append", metavar="SECTION.KEY=VALUE", help="override one param (repeatable)")
    p.add_argument("--only", action="append", metavar="NAMES", help="notebooks to run: 01,export,02_calibrate (comma-separated)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: <run.output_root>/<profile>)")
    p.add_argument("--show-code", action="store_true", help="keep code cells in the HTML reports")
    p.add_argument("--resume", action="store_true",
                   help="reuse notebooks that completed in the latest earlier run with the same params and code")
    p.set_defaults(func=_cmd_run)

    e = sub.add_parser("evaluate", help="evaluate a run folder's ONNX models and print the accuracy table")
    e.add_argument("params", help="params file, e.g. params/demo.yaml")
    e.add_argument("-p", action="append", metavar="SECTION.KEY=VALUE", help="override one param (repeatable)")
    e.add_argument("--out", metavar="RUN_DIR", help="the run folder holding artifacts/model.onnx "
                   "(default: <run.output_root>/<profile>)")
    e.set_defaults(func=_cmd_evaluate)

    pr = sub.add_parser("profiles", help="list the params files, one line each")
    pr.add_argument("folder", nargs="?", default=str(default_demo.parent))
    pr.set_defaults(func=_cmd_profiles)

    c = sub.add_parser("cache", help="build, list or clear the preprocessed-image cache of a profile")
    c.add_argument("action", choices=["build", "info", "clear"])
    c.add_argument("params", help="params file, e.g. params/imagenet.yaml")
    c.add_argument("-p", action="append", metavar="SECTION.KEY=VALUE", help="override one param (repeatable)")
    c.set_defaults(func=_cmd_cache)

    d = sub.add_parser("demo", help="build the demo dataset and train the demo model (cached)")
    d.add_argument("params", nargs="?", default=str(default_demo))
    d.add_argument("-p", action="append", metavar="SECTION.KEY=VALUE")
    d.set_defaults(func=_cmd_demo)

    cmp = sub.add_parser("compare", help="runs side by side: params, environments, accuracy and speed changes",
                         epilog=COMPARE_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    cmp.add_argument("runs", nargs="+", metavar="RUN", help="run folders (outputs/<run>); the first is the baseline")
    cmp.add_argument("--out", metavar="DIR", help="where compare.html/.json go (default: compare-<names> beside the first run)")
    cmp.set_defaults(func=_cmd_compare)

    sw = sub.add_parser("sweep", help="run a grid or list of profiles on a Dask cluster, then compare them",
                        epilog=SWEEP_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("sweep", metavar="SWEEP.yaml", help="sweep file, e.g. params/sweeps/demo.yaml")
    sw.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786 "
                    "(default: a local cluster on this machine)")
    sw.add_argument("--workers", type=int, default=None, metavar="N",
                    help="worker processes of the local cluster, i.e. runs at a time (default 1)")
    sw.add_argument("--resume", action="store_true",
                    help="reuse what completed in each point's latest run with the same params and code")
    sw.set_defaults(func=_cmd_sweep)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except GhostlabError as err:
        print(f"ghostlab: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("ghostlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
