"""Make the README's pictures from a finished run folder (default: outputs/demo).

    .venv/bin/python scripts/readme_images.py [RUN_DIR]

Writes docs/img/index.png (the index page in headless Chromium, top of the page) and one
figure per notebook (the figures each notebook publishes for the index), downscaled so the
repository stays small.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "img"
FIGURES = {  # notebook figure -> README name
    "01_export_ops.png": "01_export.png",
    "02_calibrate_sqnr_by_depth.png": "02_calibrate.png",
    "03_benchmark_throughput.png": "03_benchmark.png",
    "04_evaluate_accuracy_vs_latency.png": "04_evaluate.png",
    "05_ghost_maps_redundancy_vs_depth.png": "05_ghost_maps.png",
}
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def shrink(src: Path, dst: Path, width: int = 900) -> None:
    img = Image.open(src).convert("RGB")
    if img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img.save(dst, optimize=True)


def main(run_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 1150})
        page.goto((run_dir / "index.html").as_uri(), wait_until="load")
        page.screenshot(path=str(OUT / "index-full.png"))
        browser.close()
    shrink(OUT / "index-full.png", OUT / "index.png")
    (OUT / "index-full.png").unlink()
    for src, dst in FIGURES.items():
        shrink(run_dir / "artifacts" / "figures" / src, OUT / dst, width=700)
    for p in sorted(OUT.iterdir()):
        print(f"{p.relative_to(ROOT)}  {p.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "outputs" / "demo").resolve())
