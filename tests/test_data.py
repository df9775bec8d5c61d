"""Datasets, bad-data messages, preprocessing presets, the cache and calibration sampling."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ghostlab import data
from ghostlab.cli import main
from ghostlab.config import load_params
from ghostlab.errors import DataError

NAMES = ["tench, Tinca tinca", "goldfish, Carassius auratus", "great white shark"]


def _params(tmp_path: Path, root: Path, *overrides: str):
    profile = tmp_path / "p.yaml"
    if not profile.exists():
        profile.write_text("data: {dataset: seed}\n")
    return load_params(profile, [f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                                 "data.preprocessing=custom", "data.resize=40", "data.crop=32", *overrides])


def _jpeg(path: Path, mode: str, size=(48, 40), seed=0) -> None:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    img = rgb.convert(mode)
    img.save(path, format="PNG" if path.suffix == ".png" else "BMP" if path.suffix == ".bmp" else "JPEG")


def _seed_folder(root: Path, lines: list[str] | None = None, label_txt: bool = True) -> Path:
    """A seed-layout folder mixing RGB, grayscale and CMYK JPEGs, a palette PNG and an RGBA PNG."""
    (root / "val").mkdir(parents=True)
    files = [("a_rgb.JPEG", "RGB", 0), ("b_gray.JPEG", "L", 1), ("c_cmyk.JPEG", "CMYK", 2),
             ("d_palette.png", "P", 1), ("e_rgba.png", "RGBA", 0), ("f_bmp.bmp", "RGB", 2)]
    for i, (name, mode, _) in enumerate(files):
        _jpeg(root / "val" / name, mode, size=(48 + 8 * i, 40), seed=i)
    text = lines if lines is not None else [f"{name} {label}" for name, _, label in files]
    (root / "val_label.txt").write_text("\n".join(text) + "\n")
    if label_txt:
        (root / "label.txt").write_text("\n".join(NAMES) + "\n")
    return root


# ---------------------------------------------------------------- loading

def test_seed_layout_mixing_image_modes_loads_with_label_txt_names(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    params = _params(tmp_path, root)
    ds = data.load_dataset(params)
    assert [f.name for f in ds.files][:3] == ["a_rgb.JPEG", "b_gray.JPEG", "c_cmyk.JPEG"]
    assert ds.labels.tolist() == [0, 1, 2, 1, 0, 2]
    assert ds.class_names == NAMES and ds.num_classes == 3
    assert [ds.class_names[y] for y in ds.labels[:3]] == NAMES
    cached = data.cached_images(ds, data.preprocess_for(params), params, show_progress=False)
    assert len(cached) == 6 and cached.skipped == []
    x = cached.normalized([0, 1, 2, 3])
    assert x.shape == (4, 3, 32, 32) and x.dtype == np.float32
    gray = cached.uint8([1])[0]
    assert np.array_equal(gray[..., 0], gray[..., 2])  # grayscale became three equal channels


def test_each_mode_decodes_as_torchvisions_loader(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    from torchvision.datasets.folder import pil_loader

    for path in sorted((root / "val").iterdir()):
        got = data.load_image(path)
        assert got.mode == "RGB"
        assert np.array_equal(np.asarray(got), np.asarray(pil_loader(str(path)))), path.name
    sixteen = root / "sixteen.png"
    Image.fromarray(np.full((8, 8), 30000, dtype=np.uint16)).save(sixteen)
    assert np.asarray(data.load_image(sixteen)).max() == 116  # 30000 / 65535 * 255: scaled, not clipped to 255


def test_without_label_txt_1000_classes_use_timms_imagenet_names(tmp_path):
    root = _seed_folder(tmp_path / "ds", label_txt=False)
    ds = data.load_dataset(_params(tmp_path, root))
    assert ds.num_classes == 1000
    assert ds.class_names[0] == "tench, Tinca tinca" and ds.class_names[999].startswith("toilet tissue")


def test_folders_layout_sorts_classes_and_uses_folder_names(tmp_path):
    root = tmp_path / "folders"
    for cls, n in (("zebra", 2), ("ant", 3)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            _jpeg(root / cls / f"{i}.jpg", "RGB", seed=i)
    (root / "ant" / "notes.txt").write_text("not an image")
    ds = data.load_dataset(_params(tmp_path, root, "data.dataset=folders"))
    assert ds.class_names == ["ant", "zebra"]
    assert ds.labels.tolist() == [0, 0, 0, 1, 1] and len(ds) == 5


def test_folders_layout_with_1000_synset_folders_uses_imagenet_names(tmp_path):
    from timm.data import ImageNetInfo

    root = tmp_path / "synsets"
    for synset in ImageNetInfo().label_names():
        (root / synset).mkdir(parents=True)
        (root / synset / "x.JPEG").touch()
    ds = data.load_dataset(_params(tmp_path, root, "data.dataset=folders"))
    assert ds.num_classes == 1000 and len(ds) == 1000
    assert ds.class_names[0] == "tench, Tinca tinca" and ds.files[0].parent.name == "n01440764"


def test_max_images_takes_the_first_n(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    ds = data.load_dataset(_params(tmp_path, root, "data.max_images=2"))
    assert [f.name for f in ds.files] == ["a_rgb.JPEG", "b_gray.JPEG"]


# ---------------------------------------------------------------- bad data: one line each

GOOD = ["a_rgb.JPEG 0", "b_gray.JPEG 1", "c_cmyk.JPEG 2"]


@pytest.mark.parametrize("lines, pattern", [
    (GOOD[:1] + ["b_gray.JPEG"] + GOOD[2:], r"val_label.txt:2: expected '<image file> <class index>', got 'b_gray.JPEG'"),
    (GOOD[:2] + ["c_cmyk.JPEG 7"], r"val_label.txt:3: label 7 is outside 0..2 \(3 classes in .*label.txt\)"),
    (GOOD + ["zz_missing.JPEG 1"], r"val_label.txt:4: .*zz_missing.JPEG does not exist; add the image or remove"),
    (GOOD + ["a_rgb.JPEG 0"], r"val_label.txt:4: a_rgb.JPEG is listed again \(first on line 1\); remove the duplicate"),
], ids=["malformed", "label-outside", "missing-file", "duplicate"])
def test_bad_label_lines_stop_with_file_and_line(tmp_path, lines, pattern):
    root = _seed_folder(tmp_path / "ds", lines=lines)
    with pytest.raises(DataError, match=pattern) as err:
        data.load_dataset(_params(tmp_path, root))
    assert "\n" not in str(err.value) and "on_bad_image: skip" in str(err.value)


@pytest.mark.parametrize("lines", [
    GOOD[:1] + ["b_gray.JPEG"] + GOOD[2:], GOOD[:2] + ["c_cmyk.JPEG 7"], GOOD + ["zz_missing.JPEG 1"],
    GOOD + ["a_rgb.JPEG 0"]], ids=["malformed", "label-outside", "missing-file", "duplicate"])
def test_skip_goes_on_and_lists_the_bad_line(tmp_path, lines):
    root = _seed_folder(tmp_path / "ds", lines=lines)
    ds = data.load_dataset(_params(tmp_path, root, "data.on_bad_image=skip"))
    assert len(ds.skipped) == 1 and "val_label.txt:" in ds.skipped[0]["reason"]
    assert len(ds) == len(lines) - 1


def test_missing_val_label_txt(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    (root / "val_label.txt").unlink()
    with pytest.raises(DataError, match=r"val_label.txt does not exist: the seed layout needs .*data.dataset: folders"):
        data.load_dataset(_params(tmp_path, root))


def test_empty_dataset(tmp_path):
    root = _seed_folder(tmp_path / "ds", lines=[])
    with pytest.raises(DataError, match=r"ds: no usable images in the dataset; check data.root"):
        data.load_dataset(_params(tmp_path, root))


def test_everything_skipped_is_still_an_empty_dataset(tmp_path):
    root = _seed_folder(tmp_path / "ds", lines=["nope.JPEG 0"])
    with pytest.raises(DataError, match=r"no usable images in the dataset \(1 skipped\)"):
        data.load_dataset(_params(tmp_path, root, "data.on_bad_image=skip"))


def test_undecodable_image_stops_naming_file_and_line_then_skip_lists_it(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    (root / "val" / "c_cmyk.JPEG").write_bytes(b"\xff\xd8 this is not a jpeg")
    params = _params(tmp_path, root)
    ds = data.load_dataset(params)
    with pytest.raises(DataError, match=r"c_cmyk.JPEG \(listed at .*val_label.txt:3\): cannot decode image .*"
                                        r"replace or delete the file, or set data.on_bad_image: skip") as err:
        data.cached_images(ds, data.preprocess_for(params), params, show_progress=False)
    assert "\n" not in str(err.value)
    skip = _params(tmp_path, root, "data.on_bad_image=skip")
    cached = data.cached_images(data.load_dataset(skip), data.preprocess_for(skip), skip, show_progress=False)
    assert len(cached) == 5 and cached.decoded == 0  # the stop attempt's cache is reused
    assert [Path(s["file"]).name for s in cached.skipped] == ["c_cmyk.JPEG"]
    assert "c_cmyk.JPEG" not in [f.name for f in cached.files] and cached.labels.tolist() == [0, 1, 1, 0, 2]


def test_label_file_that_is_missing_or_has_blank_lines(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    with pytest.raises(DataError, match=r"label file .*nope.txt does not exist; set data.label_file"):
        data.load_dataset(_params(tmp_path, root, f"data.label_file={tmp_path / 'nope.txt'}"))
    (root / "label.txt").write_text("a\n\nc\n")
    with pytest.raises(DataError, match=r"label.txt:2: empty class name"):
        data.load_dataset(_params(tmp_path, root))


# ---------------------------------------------------------------- preprocessing == torchvision

def _torchvision_tensor(pre: data.Preprocess, image: Image.Image) -> np.ndarray:
    from torchvision import transforms as T

    interp = {"bilinear": T.InterpolationMode.BILINEAR, "bicubic": T.InterpolationMode.BICUBIC}[pre.interpolation]
    tf = T.Compose([T.Resize(pre.resize, interpolation=interp), T.CenterCrop(pre.crop), T.ToTensor(),
                    T.Normalize(pre.mean, pre.std)])
    return tf(image).numpy()


@pytest.mark.parametrize("size", [(500, 375), (333, 500), (256, 256), (241, 300)])
def test_seed_preset_equals_torchvision(tmp_path, size):
    image = Image.fromarray(np.random.default_rng(size[0]).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    params = _params(tmp_path, tmp_path, "data.preprocessing=seed")
    pre = data.preprocess_for(params)
    assert (pre.resize, pre.crop, pre.interpolation) == (256, 224, "bilinear")
    ours = pre.normalize(pre(image)[None])[0]
    np.testing.assert_allclose(ours, _torchvision_tensor(pre, image), rtol=0, atol=2e-6)


def test_timm_preset_equals_timms_own_eval_transform(tmp_path):
    import timm
    from timm.data import create_transform, resolve_data_config

    params = _params(tmp_path, tmp_path, "data.preprocessing=timm", "model.name=ghostnet_100", "model.input_size=224")
    pre = data.preprocess_for(params)
    assert (pre.resize, pre.crop, pre.interpolation) == (256, 224, "bicubic")
    model = timm.create_model("ghostnet_100", pretrained=False, num_classes=10)
    assert data.preprocess_for(params, model) == pre
    tf = create_transform(**resolve_data_config({}, model=model))
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 410, 3), dtype=np.uint8))
    ours = pre.normalize(pre(image)[None])[0]
    np.testing.assert_allclose(ours, tf(image).numpy(), rtol=0, atol=2e-6)


def test_custom_preset_equals_torchvision(tmp_path):
    params = _params(tmp_path, tmp_path, "data.resize=72", "data.crop=64", "data.interpolation=bicubic",
                     "data.mean=[0.5, 0.5, 0.5]", "data.std=[0.25, 0.5, 0.125]")
    pre = data.preprocess_for(params)
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (61, 90, 3), dtype=np.uint8))
    ours = pre.normalize(pre(image)[None])[0]
    np.testing.assert_allclose(ours, _torchvision_tensor(pre, image), rtol=0, atol=2e-6)
    assert "Resize(72, bicubic) -> CenterCrop(64)" in pre.describe()


# ---------------------------------------------------------------- the cache

def test_evaluating_twice_decodes_nothing_the_second_time(tmp_path, monkeypatch):
    root = _seed_folder(tmp_path / "ds")
    params = _params(tmp_path, root)
    first = data.cached_images(data.load_dataset(params), data.preprocess_for(params), params, show_progress=False)
    assert first.decoded == 6
    before = [x for x, _, _ in first.batches(4)]

    def no_decoding(path):
        raise AssertionError(f"decoded {path} again")

    monkeypatch.setattr(data, "load_image", no_decoding)
    again = data.cached_images(data.load_dataset(params), data.preprocess_for(params), params, show_progress=False)
    assert again.decoded == 0 and again.key == first.key
    after = list(again.batches(4))
    assert all(np.array_equal(a, b) for a, (b, _, _) in zip(before, after))
    assert np.concatenate([y for _, y, _ in after]).tolist() == again.labels.tolist()
    assert np.concatenate([i for _, _, i in after]).tolist() == list(range(6))


def test_cache_is_rebuilt_when_a_file_or_the_preprocessing_changes(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    params = _params(tmp_path, root)
    pre = data.preprocess_for(params)
    key = data.cached_images(data.load_dataset(params), pre, params, show_progress=False).key
    _jpeg(root / "val" / "a_rgb.JPEG", "RGB", size=(50, 50), seed=9)
    st = (root / "val" / "a_rgb.JPEG").stat()
    os.utime(root / "val" / "a_rgb.JPEG", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    changed = data.cached_images(data.load_dataset(params), pre, params, show_progress=False)
    assert changed.key != key and changed.decoded == 6
    other = data.preprocess_for(_params(tmp_path, root, "data.crop=24"))
    assert data.cached_images(data.load_dataset(params), other, params, show_progress=False).key != changed.key


def test_parallel_build_equals_serial_build(tmp_path):
    root = tmp_path / "many"
    (root / "val").mkdir(parents=True)
    lines = []
    for i in range(80):
        _jpeg(root / "val" / f"{i:03d}.JPEG", "RGB", size=(40 + i % 7, 36), seed=i)
        lines.append(f"{i:03d}.JPEG {i % 3}")
    (root / "val_label.txt").write_text("\n".join(lines))
    (root / "label.txt").write_text("\n".join(NAMES))
    serial = _params(tmp_path, root, "data.workers=1", f"data.cache_dir={tmp_path / 'c1'}")
    parallel = _params(tmp_path, root, "data.workers=2", f"data.cache_dir={tmp_path / 'c2'}")
    pre = data.preprocess_for(serial)
    a = data.cached_images(data.load_dataset(serial), pre, serial, show_progress=False)
    b = data.cached_images(data.load_dataset(parallel), pre, parallel, show_progress=False)
    assert np.array_equal(a.uint8(), b.uint8()) and a.uint8().any()


def test_cache_cli_build_info_clear(tmp_path, capsys):
    root = _seed_folder(tmp_path / "ds")
    profile = tmp_path / "real.yaml"
    profile.write_text(f"data: {{dataset: seed, root: {root}, cache_dir: {tmp_path / 'cache'}, "
                       f"preprocessing: custom, resize: 40, crop: 32}}\n")
    assert main(["cache", "build", str(profile)]) == 0
    out = capsys.readouterr().out
    assert "split=eval  images=6  skipped=0  decoded=6" in out
    assert main(["cache", "build", str(profile)]) == 0
    assert "decoded=0" in capsys.readouterr().out
    assert main(["cache", "info", str(profile)]) == 0
    assert "images=6" in capsys.readouterr().out
    assert main(["cache", "clear", str(profile)]) == 0
    assert not (tmp_path / "cache").exists()
    assert main(["cache", "info", str(profile)]) == 0
    assert "(empty)" in capsys.readouterr().out


# ---------------------------------------------------------------- calibration

@pytest.mark.parametrize("counts, num", [([5, 5, 5], 3), ([50, 3, 20, 1], 10), ([4, 4], 100), ([30] * 10, 25)])
def test_calibration_indices_are_class_balanced(counts, num):
    labels = np.repeat(np.arange(len(counts)), counts)
    idx = data.calibration_indices(labels, num, seed=3)
    assert len(idx) == min(num, len(labels)) and len(set(idx.tolist())) == len(idx)
    per_class = np.bincount(labels[idx], minlength=len(counts))
    if num >= len(counts):
        assert (per_class > 0).all()
    # balanced: a class short of the fair share gives everything it has, the others differ by at most one
    full = per_class[per_class < np.asarray(counts)]
    assert len(full) == 0 or full.max() - full.min() <= 1
    assert np.array_equal(idx, data.calibration_indices(labels, num, seed=3))
    assert not np.array_equal(data.calibration_indices(labels, min(num, 9), seed=4),
                              data.calibration_indices(labels, min(num, 9), seed=5)) or num >= len(labels)


def test_calibration_set_from_calibration_root_or_the_eval_set(tmp_path):
    root = _seed_folder(tmp_path / "ds")
    cal_root = _seed_folder(tmp_path / "cal")
    params = _params(tmp_path, root, "calibrate.num_images=3")
    pre = data.preprocess_for(params)
    cached, idx = data.calibration_set(params, pre, show_progress=False)
    assert cached.split == "eval" and sorted(cached.labels[idx].tolist()) == [0, 1, 2]
    with_root = _params(tmp_path, root, "calibrate.num_images=3", f"data.calibration_root={cal_root}")
    cached, idx = data.calibration_set(with_root, pre, show_progress=False)
    assert cached.split == "calibration" and cached.dataset.root == cal_root
