"""Peak memory and time of histogram calibration: ghostlab's two-pass ranges vs ONNX Runtime's default.

    .venv/bin/python scripts/bench_calibration_memory.py                 # ghostnet_100, 224 px, 1000 images, entropy
    .venv/bin/python scripts/bench_calibration_memory.py --images 200 --cap-gb 6

The model is ghostnet_100 with random weights (1000 classes), exported like notebook 01 and run
through ``quant_pre_process``. The images are SYNTHETIC: smooth random colour fields (low-resolution
noise upsampled to 224 px, ImageNet-normalised), generated from their index so that no image set
sits in memory; activation statistics of a random-weight model on them resemble real ones enough
for memory and time, which depend on tensor sizes, not values.

Each measurement runs in its own subprocess; the parent reads that child's peak RSS (``wait4``
rusage) and wall time:

- ``chunked``: ``ghostlab.calibrate_ranges.collect_ranges``, what notebook 02 runs: an exact min/max
  pass, then fixed-range histograms (2048 bins) accumulated over chunks of ``--chunk`` images and
  one vectorised threshold search per tensor (ranges independent of the chunk size), then
  ``quantize_static`` from the saved ranges. The model runs twice over the images.
- ``ort-default``: ``quantize_static`` with one CalibrationDataReader over every image, as ORT's
  docs show it: the histogram calibrator keeps every batch's activations before building the
  histograms. It is watched and killed once its RSS passes ``--cap-gb`` (so it cannot take the
  machine down); the report then says how many images it had read and what the full set would need.

Prints one table; the ratios compare the two on the same model, images and method in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


class SyntheticImages:
    """Image ``i`` is a smooth random colour field from seed ``i``; nothing is kept in memory."""

    def __init__(self, size: int):
        self.size = size

    def normalized(self, indices) -> np.ndarray:
        out = np.empty((len(indices), 3, self.size, self.size), dtype=np.float32)
        for row, i in enumerate(indices):
            rng = np.random.default_rng(int(i))
            cells = int(rng.integers(2, 9))
            low = rng.random((3, cells, cells), dtype=np.float32)
            reps = -(-self.size // cells)
            img = np.kron(low, np.ones((1, reps, reps), dtype=np.float32))[:, :self.size, :self.size]
            img += 0.08 * rng.standard_normal(img.shape, dtype=np.float32)
            out[row] = (np.clip(img, 0, 1) - MEAN) / STD
        return out


class _CountingReader:
    """ORT's default usage: one reader over all images; writes how many it has handed out."""

    def __init__(self, images, n: int, batch: int, input_name: str, progress: Path):
        from onnxruntime.quantization import CalibrationDataReader

        outer = self

        class Reader(CalibrationDataReader):
            def get_next(self):
                if outer.pos >= n:
                    return None
                idx = np.arange(outer.pos, min(outer.pos + batch, n))
                outer.pos = int(idx[-1]) + 1
                progress.write_text(str(outer.pos))
                return {input_name: images.normalized(idx)}

        self.pos = 0
        self.reader = Reader()


def prepare_model(name: str, size: int, folder: Path) -> Path:
    """Random-weight ``name`` exported like notebook 01, then ORT's quant_pre_process."""
    from ghostlab import calibrate, export
    from ghostlab.models import create_model

    fp32 = folder / f"{name}.onnx"
    export.export_onnx(create_model(name, "random", num_classes=1000), fp32, size)
    return calibrate.preprocess_model(fp32, folder / f"{name}_prep.onnx")


def worker(args: argparse.Namespace) -> None:
    """One measurement, in this process (run by the parent as a subprocess)."""
    from ghostlab import calibrate, calibrate_ranges
    from ghostlab.config import VariantParams

    images = SyntheticImages(args.size)
    prep, folder = Path(args.model_path), Path(args.model_path).parent
    variant = VariantParams(name="bench", method=args.method)
    out = folder / f"int8_{args.mode}.onnx"
    t0 = time.perf_counter()
    if args.mode == "chunked":
        ranges = calibrate_ranges.collect_ranges(prep, images, np.arange(args.images), args.method,
                                                 chunk_size=args.chunk, work_dir=folder)
        cache = calibrate.save_ranges(ranges, folder / "ranges_chunked.json")
        calibrate.quantize(prep, out, cache, args.method, variant)
    else:
        from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

        counting = _CountingReader(images, args.images, args.chunk, calibrate_ranges.input_name(prep),
                                   Path(args.progress))
        with calibrate_ranges.quiet():
            quantize_static(str(prep), str(out), counting.reader, quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod[calibrate.METHODS[args.method].ort_name])
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "int8_mb": out.stat().st_size / 1e6}))


def _rss_gb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1e6
    except OSError:
        pass
    return 0.0


def measure(mode: str, args: argparse.Namespace, prep: Path) -> dict:
    """Run ``worker`` in a subprocess; its peak RSS from wait4, killed past ``--cap-gb``."""
    progress = prep.parent / f"progress_{mode}.txt"
    progress.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--worker", "--mode", mode, "--model-path", str(prep),
           "--images", str(args.images), "--chunk", str(args.chunk), "--size", str(args.size),
           "--method", args.method, "--progress", str(progress)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = threading.Event()

    def watch() -> None:
        while proc.poll() is None:
            if _rss_gb(proc.pid) > args.cap_gb:
                killed.set()
                proc.kill()
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.communicate()
    watcher.join()
    row = {"mode": mode, "images": args.images, "peak_rss_gb": usage.ru_maxrss / 1e6, "wall_s": wall}
    if killed.is_set():
        read = int(progress.read_text()) if progress.exists() else 0
        row.update(status=f"killed at the {args.cap_gb:g} GB cap after reading {read} images", images_read=read)
    elif proc.returncode != 0:
        row.update(status=f"failed (exit {proc.returncode}): {(stderr.strip().splitlines() or [''])[-1][:160]}")
    else:
        row.update(status="ok", **json.loads(stdout.strip().splitlines()[-1]))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ghostnet_100")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--method", default="entropy", choices=["entropy", "percentile", "minmax"])
    parser.add_argument("--chunk", type=int, default=32, help="images per collect_data call (and per batch)")
    parser.add_argument("--cap-gb", type=float, default=8.0, help="kill ORT's default run past this RSS")
    parser.add_argument("--modes", default="chunked,ort-default")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--model-path", help=argparse.SUPPRESS)
    parser.add_argument("--progress", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from ghostlab.system import cpu_info

    cpu = cpu_info()
    print(f"{args.model} at {args.size} px, {args.images} synthetic images, {args.method} calibration, "
          f"chunk {args.chunk}; CPU {cpu['model']} x{cpu['cores']}; load average "
          f"{os.getloadavg()[0]:.1f} at start", flush=True)
    with tempfile.TemporaryDirectory(prefix="ghostlab-bench-") as tmp:
        prep = prepare_model(args.model, args.size, Path(tmp))
        rows = [measure(mode, args, prep) for mode in args.modes.split(",")]
    for r in rows:
        print(json.dumps(r))
    by = {r["mode"]: r for r in rows}
    if "chunked" in by and "ort-default" in by:
        c, d = by["chunked"], by["ort-default"]
        if d["status"] == "ok":
            print(f"ORT default / chunked: peak RSS x{d['peak_rss_gb'] / c['peak_rss_gb']:.1f}, "
                  f"wall x{d['wall_s'] / c['wall_s']:.2f}")
        elif d.get("images_read"):
            per_image = d["peak_rss_gb"] / d["images_read"]
            print(f"ORT default held ~{per_image * 1e3:.0f} MB per image read: about "
                  f"{per_image * args.images:.0f} GB for {args.images} images, vs {c['peak_rss_gb']:.2f} GB chunked")
    print(f"load average {os.getloadavg()[0]:.1f} at the end (other work on this machine inflates wall time)")


if __name__ == "__main__":
    main()
