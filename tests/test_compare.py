"""ghostlab compare: what differs, paired statistics on shared images, speed grouped by CPU, the page."""

import csv
import json
import shutil

import pytest

from ghostlab import compare as cmp
from ghostlab.cli import main
from ghostlab.evaluate import mcnemar_exact_p

from conftest import TINY

pytestmark = pytest.mark.slow


def _copy(run, dest):
    shutil.copytree(run.run_dir, dest)
    return dest


def _edit_json(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _rewrite_predictions(path, change):
    """Rewrite a predictions CSV row by row: ``change(i, row)`` edits the dict (pred_1 as a string)."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for i, row in enumerate(rows):
        change(i, row)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


@pytest.fixture(scope="module")
def fewer_images(tiny_run, tmp_path_factory):
    """A second run differing in one param: 04_evaluate rerun on the first 24 images only (the
    runner keeps the other notebooks' results from the folder's last complete run, a copy of tiny_run)."""
    from ghostlab.config import load_params
    from ghostlab.runner import run_notebooks

    folder = shutil.copytree(tiny_run.run_dir, tmp_path_factory.mktemp("cmp") / "tiny")
    where, results = run_notebooks(load_params(TINY, ["evaluate.max_images=24"]), only=["04"], out=folder)
    assert all(r.status == "ok" for r in results), [(r.name, r.error) for r in results]
    return where


def test_two_runs_differing_in_one_param(tiny_run, fewer_images, tmp_path):
    page, doc = cmp.compare([tiny_run.run_dir, fewer_images], tmp_path / "out")
    assert [d["key"] for d in doc["params_differ"]] == ["evaluate.max_images"]
    assert doc["params_differ"][0]["values"] == {"tiny #1": None, "tiny #2": 24}  # both folders are named tiny
    # others may commit while the suite runs: only the commit may differ between the two runs
    assert {d["key"] for d in doc["environment_differ"]} <= {"git.commit", "git.dirty"}
    images = json.loads(tiny_run.artifact("evaluation.json").read_text())["models"]["fp32"]["n"]
    assert images > 24
    for row in doc["accuracy"]:  # the same models on 24 of the same images: paired there, and unchanged
        (change,) = row["changes"]
        p = change["paired"]
        assert (p["n"], p["images_base"], p["images_other"]) == (24, images, 24), row["model"]
        assert p["flips_right_to_wrong"] == p["flips_wrong_to_right"] == 0 and not change["regression"]
        assert p["mcnemar_p"] == mcnemar_exact_p(0, 0) and p["verdict"] == "identical top-1 correctness"
    assert [g["runs"] for g in doc["speed"]] == [["tiny #1", "tiny #2"]]  # 03 kept: same CPU, one group
    text = page.read_text()
    assert "evaluate.max_images" in text and "<script" not in text
    assert json.loads((tmp_path / "out" / "compare.json").read_text())["baseline"] == "tiny #1"


def test_identical_runs_differ_in_nothing(tiny_run, tmp_path):
    twin = _copy(tiny_run, tmp_path / "twin")
    doc = cmp.compare_runs([cmp.load_run(tiny_run.run_dir), cmp.load_run(twin)])
    assert doc["params_differ"] == [] and doc["environment_differ"] == [] and doc["regressions"] == []
    assert all(c["paired"]["flips_right_to_wrong"] == c["paired"]["flips_wrong_to_right"] == 0
               for r in doc["accuracy"] for c in r["changes"])
    assert all(c["direction"] == "within spread" for g in doc["speed"] for r in g["models"] for c in r["changes"])
    assert cmp.summary_sentences(doc)[0].startswith("No regression")


def test_paired_statistics_on_the_shared_images(tiny_run, tmp_path):
    """Doctored predictions: the baseline gets 10 wrong images right, so the real run loses them,
    and the other run evaluated only 20 of the images."""
    base, other = _copy(tiny_run, tmp_path / "base"), _copy(tiny_run, tmp_path / "other")
    made_right = []

    def fix(i, row):
        if row["pred_1"] != row["label"] and len(made_right) < 10:
            made_right.append(row["file"])
            row["pred_1"] = row["label"]

    _rewrite_predictions(base / "artifacts" / "predictions_fp32.csv", fix)
    assert len(made_right) == 10
    kept = _rewrite_predictions(other / "artifacts" / "predictions_fp32.csv", lambda i, row: None)
    shared = kept[:20]
    (other / "artifacts" / "predictions_fp32.csv").write_text(
        ",".join(kept[0]) + "\n" + "".join(",".join(r.values()) + "\n" for r in shared))
    lost = sum(r["file"] in made_right for r in shared)

    doc = cmp.compare_runs([cmp.load_run(base), cmp.load_run(other)])
    (change,) = next(r for r in doc["accuracy"] if r["model"] == "fp32")["changes"]
    p = change["paired"]
    assert p["n"] == 20 and p["images_base"] > 20
    assert (p["flips_right_to_wrong"], p["flips_wrong_to_right"]) == (lost, 0)
    assert p["mcnemar_p"] == mcnemar_exact_p(lost, 0)
    assert p["top1_drop"] == pytest.approx(100 * lost / 20)
    assert p["top1_drop_ci95"][0] <= p["top1_drop"] <= p["top1_drop_ci95"][1]
    assert change["regression"] == (mcnemar_exact_p(lost, 0) < 0.05)

    # all ten lost images shared: a regression, said in words at the top of the page
    doc = cmp.compare_runs([cmp.load_run(base), cmp.load_run(tiny_run.run_dir)])
    (change,) = next(r for r in doc["accuracy"] if r["model"] == "fp32")["changes"]
    assert change["paired"]["flips_right_to_wrong"] == 10 and change["regression"]
    assert any(s.startswith("Accuracy: fp32 top-1 falls") for s in doc["regressions"])
    page = cmp.render(doc, tmp_path)
    assert page.index("Accuracy: fp32 top-1 falls") < page.index("<h2>Runs</h2>")


def test_different_cpus_are_grouped_never_compared(tiny_run, tmp_path):
    other = _copy(tiny_run, tmp_path / "elsewhere")
    _edit_json(other / "manifest.json", lambda m: m["cpu"].update(model="Other CPU 9000 <b>"))
    _edit_json(other / "artifacts" / "benchmark.json",  # much slower: still not a regression on another CPU
               lambda b: [r.update(img_s=r["img_s"] / 10, round_img_s=[v / 10 for v in r["round_img_s"]])
                          for r in b["results"]])
    doc = cmp.compare_runs([cmp.load_run(tiny_run.run_dir), cmp.load_run(other)])
    assert doc["cpus_differ"] and len(doc["speed"]) == 2
    assert all(r["changes"] == [] for g in doc["speed"] for r in g["models"])
    assert doc["regressions"] == []
    assert "cpu.model" in [d["key"] for d in doc["environment_differ"]]
    page = cmp.render(doc, tmp_path)
    assert "Speed is compared only between runs on the same CPU" in page
    assert "Other CPU 9000 &lt;b&gt;" in page and "9000 <b>" not in page


def test_slower_beyond_the_spread_on_the_same_cpu_is_a_regression(tiny_run, tmp_path):
    slow = _copy(tiny_run, tmp_path / "slow")

    def halve_fp32(b):
        for r in b["results"]:
            if r["model"] == "fp32":
                r["img_s"] /= 2
                r["round_img_s"] = [v / 2 for v in r["round_img_s"]]

    _edit_json(slow / "artifacts" / "benchmark.json", halve_fp32)
    doc = cmp.compare_runs([cmp.load_run(tiny_run.run_dir), cmp.load_run(slow)])
    (fp32,) = [r for g in doc["speed"] for r in g["models"] if r["model"] == "fp32"]
    (change,) = fp32["changes"]
    assert change["direction"] == "slower" and change["ratio"] == pytest.approx(0.5) and change["regression"]
    assert any(s.startswith("Speed: fp32 runs at 0.50×") for s in doc["regressions"])


def test_recommendation_failed_runs_and_escaping(tiny_run, tmp_path):
    run = _copy(tiny_run, tmp_path / "rec")
    rec = {"candidate": "int8_<minmax>", "label": "ORT int8 minmax", "runtime": "onnxruntime", "precision": "int8",
           "qualifies": True, "img_s": 900.0, "vs_fp32": 1.31, "vs_torch": 2.5, "top1_drop": 0.2,
           "top1_drop_ci95": [-0.1, 0.5], "reason": "the fastest candidate within 1 pp"}
    _edit_json(run / "artifacts" / "evaluation.json", lambda ev: ev.update(recommendation=rec))
    _edit_json(run / "manifest.json", lambda m: m.update(profile="<script>alert(1)</script>"))
    broken = cmp.RunInfo("broken <i>", status="failed", error="ModelError: no checkpoint <here>")
    doc = cmp.compare_runs([cmp.load_run(tiny_run.run_dir), cmp.load_run(run), broken])
    assert doc["runs"][1]["recommendation"] == rec and doc["runs"][2]["recommendation"] is None
    page = cmp.render(doc, tmp_path)
    assert "none recorded" in page and "int8_&lt;minmax&gt; (onnxruntime, int8) · 1.31× faster than ORT fp32, 2.50× faster than torch eager · top-1 drop +0.20 pp [−0.10, +0.50]" in page
    assert "<script" not in page and "&lt;script&gt;" in page
    assert "broken &lt;i&gt; did not complete: ModelError: no checkpoint &lt;here&gt;" in page
    assert "http" not in page.split("</style>")[0]  # nothing fetched: no CDN, no web fonts


def test_cli_compare_and_its_one_line_error(tiny_run, tmp_path, capsys):
    twin = _copy(tiny_run, tmp_path / "twin")
    assert main(["compare", str(tiny_run.run_dir), str(twin), "--out", str(tmp_path / "c")]) == 0
    out = capsys.readouterr().out
    assert "No regression" in out and str(tmp_path / "c" / "compare.html") in out
    assert main(["compare", str(tmp_path), str(twin)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("ghostlab: error:") and "not a run folder" in err and "\n" not in err
