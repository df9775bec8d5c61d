"""Reports in a real browser, offline: Debian's headless Chromium opens index.html and every
report through file://, with every request that would leave the machine blocked and recorded.
Screenshots land in <run>/screenshots/. CI installs Chromium (.ci/run); elsewhere the test
skips with a note when it is missing."""

import os
import shutil

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
