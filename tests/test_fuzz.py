"""Fuzzing what users hand-edit: params files and val_label.txt. Whatever the text, ghostlab
answers with its own one-line error (GhostlabError) or accepts it; nothing else escapes."""

import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from ghostlab import data
from ghostlab.config import load_params
from ghostlab.errors import GhostlabError

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

KEYS = ["model", "data", "name", "weights", "root", "calibrate", "variants", "num_images", "run", "nam",
        "batch_sizes", "opset", "!!python/object", "&a", "*a", "- ", "{", "[", "'", '"', ":", "\t", "\n", "  "]
yaml_like = st.lists(st.one_of(st.sampled_from(KEYS), st.text(string.printable, max_size=8)), max_size=30).map("".join)


def _one_line(err: GhostlabError) -> None:
    assert "\n" not in str(err) and str(err)


@FUZZ
@given(text=st.one_of(yaml_like, st.text(max_size=200)))
def test_params_files(tmp_path, text):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_params(path)
    except GhostlabError as err:
        _one_line(err)


@FUZZ
@given(override=st.text(max_size=60))
def test_overrides(tmp_path, override):
    path = tmp_path / "ok.yaml"
    path.write_text(f"data: {{root: {tmp_path}}}\n")
    try:
        load_params(path, [override])
    except GhostlabError as err:
        _one_line(err)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzzdata")
    (root / "val").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(root / "val" / f"ILSVRC2012_val_{i + 1:08d}.JPEG")
    (root / "label.txt").write_text("a\nb\nc\n")
    return root


LINE_PARTS = ["ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000002.JPEG", "ILSVRC2012_val_00000003.JPEG",
              "missing.JPEG", "../../etc/passwd", " ", "\t", "0", "1", "2", "3", "-1", "1e9", "x", "\n", "\r\n", "#"]
label_like = st.lists(st.sampled_from(LINE_PARTS), max_size=25).map("".join)


@FUZZ
@given(text=st.one_of(label_like, st.text(max_size=120)))
def test_val_label_files(images, text):
    (images / "val_label.txt").write_bytes(text.encode("utf-8", "surrogatepass"))
    params = load_params_for(images)
    for on_bad in ("stop", "skip"):
        try:
            ds = data.load_dataset(params.replace(data=params.data.__class__(
                **{**params.data.__dict__, "on_bad_image": on_bad})))
        except GhostlabError as err:
            _one_line(err)
        else:
            assert len(ds.files) == len(ds.labels) > 0
            assert all(0 <= y < ds.num_classes for y in ds.labels)
            assert all(f.parent == images / "val" for f in ds.files)


def load_params_for(root):
    path = root / "p.yaml"
    if not path.exists():
        path.write_text(f"data: {{root: {root}}}\n")
    return load_params(path)
