"""Reports in a real browser, offline: Debian's headless Chromium opens index.html and every
report through file://, with every request that would leave the machine blocked and recorded.
Screenshots land in <run>/screenshots/. CI installs Chromium (.ci/run); elsewhere the test
skips with a note when it is missing.

The layout checks load every page at 800 and 1400 px wide: nothing wider than its box, a way back
to the index, the demo banner on a demo run, no progress bar and no raw ``snake_case`` key in the
text a reader sees. ``GHOSTLAB_REPORT_RUN=<run folder>`` runs them on an existing run (e.g. the
demo's) instead of a fresh tiny one."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: .ci/run installs Debian's chromium package")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def open_offline(browser, path, shot):
    """Load ``path`` with the network blocked; returns (page, outside requests, console errors)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    outside, errors = [], []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    page.screenshot(path=str(shot), full_page=True)
    return page, outside, errors


def image_widths(page):
    return page.evaluate("[...document.images].map(i => i.naturalWidth)")


def test_index_and_every_report_load_offline(browser, tiny_run):
    shots = tiny_run.run_dir / "screenshots"
    shots.mkdir(exist_ok=True)
    pages = ["index", *sorted(tiny_run.results)]
    for name in pages:
        page, outside, errors = open_offline(browser, tiny_run.run_dir / f"{name}.html", shots / f"{name}.png")
        widths = image_widths(page)
        assert widths and all(w > 0 for w in widths), f"{name}: an image did not load {widths}"
        assert page.locator("table").count() >= 1, f"{name}: no table"
        assert not outside, f"{name} asked the network for {outside}"
        assert not errors, f"{name}: console errors {errors}"
        page.close()
    assert all((shots / f"{n}.png").stat().st_size > 10_000 for n in pages)


def test_index_links_open_the_reports(browser, tiny_run):
    page, _, _ = open_offline(browser, tiny_run.run_dir / "index.html", tiny_run.run_dir / "index-top.png")
    links = page.eval_on_selector_all("a[href$='.html']", "els => els.map(e => e.getAttribute('href'))")
    assert set(links) >= {f"{n}.html" for n in tiny_run.results}
    page.click(f"a[href='{sorted(tiny_run.results)[0]}.html']")
    page.wait_for_load_state("load")
    assert page.url.endswith(f"{sorted(tiny_run.results)[0]}.html")
    page.close()


# ---------------------------------------------------------------- layout and honesty, page by page

WIDTHS = (800, 1400)
PROGRESS_BAR = re.compile(r"\d+%\|[^\n]*\||\d+/\d+ \[\d\d:\d\d|it/s\]")
SNAKE = re.compile(r"(?<![\w./<-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w./>(-])")
# names a reader meets as names: candidates, model names, the demo's classes
# and CPU feature flags as /proc/cpuinfo spells them
ALLOWED = re.compile(r"^(int8_|ov_|fp32|torch|ghostnet|resnet|mobilenet|efficientnet|avx|amx|sse|fma)|(^|_)(resnet|ghostnet)")

# Every table, card, figure and header must fit the box it sits in (1 px of rounding allowed).
_OVERFLOW_JS = """() => {
  const out = [];
  const boxes = document.querySelectorAll('table, .card, .verdict, .gl-header, .gl-banner, figure, img, pre');
  for (const el of boxes) {
    const parent = el.parentElement;
    if (!parent || el.closest('details:not([open])')) continue;
    const r = el.getBoundingClientRect(), p = parent.getBoundingClientRect();
    const cs = getComputedStyle(parent);
    const right = p.right - parseFloat(cs.paddingRight) - parseFloat(cs.borderRightWidth);
    if (r.width > 0 && r.right > right + 1)
      out.push(`${el.tagName.toLowerCase()}.${el.className || ''} ${Math.round(r.right - right)}px past its box`
               + ` (${(el.innerText || el.alt || '').slice(0, 60).replace(/\\s+/g, ' ')})`);
    if (el.matches('.card, .verdict') && el.scrollWidth > el.clientWidth + 1)
      out.push(`${el.className} content ${el.scrollWidth - el.clientWidth}px wider than the card`);
  }
  const doc = document.documentElement;
  if (doc.scrollWidth > doc.clientWidth + 1) out.push(`page scrolls sideways by ${doc.scrollWidth - doc.clientWidth}px`);
  return out;
}"""

# The text a reader sees, without code, preformatted blocks and collapsed details (manifest.json);
# hides them in place (innerText needs the layout), so call it after the layout checks.
_VISIBLE_TEXT_JS = """() => {
  document.querySelectorAll('code, pre, details:not([open])').forEach(e => e.style.display = 'none');
  return document.body.innerText;
}"""


@pytest.fixture(scope="module")
def report_run(request):
    """(run folder, notebook page names, is a demo run): $GHOSTLAB_REPORT_RUN or a fresh tiny run."""
    given = os.environ.get("GHOSTLAB_REPORT_RUN")
    if given:
        run_dir = Path(given)
        manifest = json.loads((run_dir / "manifest.json").read_text())
        names = sorted(n for n, r in manifest["notebooks"].items() if r.get("html"))
        weights = manifest.get("weights_given") or manifest["params"]["model"]["weights"]
        return run_dir, names, weights == "demo" or "_demo" in str(manifest["params"]["data"].get("root"))
    tiny = request.getfixturevalue("tiny_run")
    return tiny.run_dir, sorted(n for n, r in tiny.results.items() if r.status == "ok"), True


def snake_case_keys(text: str) -> list[str]:
    return sorted({m for m in SNAKE.findall(text) if not ALLOWED.search(m)})


def test_snake_case_check_spares_names_and_files():
    text = "int8_minmax beats ghostnet_050; see predictions_fp32.csv, calibrate.num_images; projected_50k_images"
    assert snake_case_keys(text) == ["projected_50k_images"]
    assert PROGRESS_BAR.search("evaluating 5 models:   0%|          | 0/500 [00:00<?, ?it/s]")


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_links_back_and_says_what_it_is(browser, report_run, width):
    run_dir, names, demo = report_run
    problems = []
    for name in ["index", *names]:
        page = browser.new_page(viewport={"width": width, "height": 1000})
        page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
        page.goto((run_dir / f"{name}.html").as_uri(), wait_until="load")
        where = f"{name} at {width}px"
        problems += [f"{where}: {p}" for p in page.evaluate(_OVERFLOW_JS)]
        if name != "index" and not page.locator("a[href='index.html']").count():
            problems.append(f"{where}: no link back to the index")
        if demo and not page.locator(".gl-demo").first.is_visible():
            problems.append(f"{where}: no visible demo banner")
        text = page.evaluate(_VISIBLE_TEXT_JS)
        if PROGRESS_BAR.search(text):
            problems.append(f"{where}: a progress bar: {PROGRESS_BAR.search(text).group(0)!r}")
        keys = snake_case_keys(text)
        if keys:
            problems.append(f"{where}: raw keys in the text: {keys}")
        alts = page.eval_on_selector_all("img", "els => els.map(e => e.alt)")
        if any(not a or a.startswith("No description") for a in alts):
            problems.append(f"{where}: an image without alt text")
        page.close()
    assert not problems, "\n".join(problems)
