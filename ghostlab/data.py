"""Datasets, preprocessing presets, the preprocessed-image cache and calibration sampling.

Layouts (``data.dataset``):

- ``seed``: ``<root>/val/*.JPEG`` plus ``<root>/val_label.txt`` (``ILSVRC2012_val_00000001.JPEG 65`` per line);
- ``folders``: ``<root>/<class>/*`` (e.g. ImageNet synset folders), classes sorted -> index;
- ``demo``: ghostlab's procedural set, made by :func:`ghostlab.demo.prepare` (which turns it into ``seed``).

Class names come from a ``label.txt`` in the seed format (``tench, Tinca tinca`` per line, in index order),
else from timm's ImageNet class info when there are 1000 classes, else from the folder names.

Bad data stops with a one-line :class:`DataError` naming the file (and line) and what to do; with
``data.on_bad_image: skip`` the bad entry is left out and recorded in ``Dataset.skipped`` instead.

The cache holds one uint8 array (N, H, W, 3) per (file list, preprocessing) in a memory-mapped file
under ``data.cache_dir``; its name is a hash of the file paths, sizes, mtimes and the preprocessing,
so any change to what it was made from builds a new one. Images are normalised on the fly.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .config import IMAGENET_MEAN, IMAGENET_STD, Params
from .errors import DataError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp"}
CACHE_VERSION = 1
_INTERPOLATION = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}
_SKIP_HINT = "or set data.on_bad_image: skip"


# ---------------------------------------------------------------- datasets

@dataclass
class Dataset:
    """Image files with integer labels; ``skipped`` lists bad entries left out (file, reason)."""

    root: Path
    files: list[Path]
    labels: np.ndarray
    class_names: list[str]
    layout: str
    skipped: list[dict] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    """Per file, where it was listed (``val_label.txt:12``) when a label file lists it."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices: np.ndarray) -> "Dataset":
        indices = np.asarray(indices, dtype=np.int64)
        return Dataset(self.root, [self.files[i] for i in indices], self.labels[indices], self.class_names,
                       self.layout, list(self.skipped), [self.origins[i] for i in indices] if self.origins else [])


class _Problems:
    """Collects bad entries: raises at once under ``stop``, records them under ``skip``."""

    def __init__(self, policy: str):
        self.policy = policy
        self.skipped: list[dict] = []

    def bad(self, file: Path | str, reason: str, where: str, fix: str) -> None:
        if self.policy != "skip":
            raise DataError(f"{where}: {reason}; {fix}, {_SKIP_HINT}")
        self.skipped.append({"file": str(file), "reason": f"{where}: {reason}"})


def read_class_names(path: Path) -> list[str]:
    """Class names from a label.txt: one per line in index order (blank lines are errors)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise DataError(f"label file {path} does not exist; set data.label_file to a label.txt "
                        f"(one class name per line, in index order) or leave it unset") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read label file {path} ({err}); save it as UTF-8 text, one class name per line") from None
    while lines and not lines[-1].strip():
        lines.pop()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(f"{path}:{n}: empty class name; write one class name per line in index order")
    if not lines:
        raise DataError(f"label file {path} is empty; write one class name per line in index order")
    return [line.strip() for line in lines]


def imagenet_class_names() -> list[str]:
    """The 1000 ImageNet-1k descriptions shipped with timm (offline)."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    return [info.index_to_description(i) for i in range(info.num_classes())]


def _label_file(params: Params, root: Path) -> Path | None:
    if params.data.label_file:
        return Path(params.data.label_file)
    default = root / "label.txt"
    return default if default.exists() else None


def _dataset_root(params: Params, split: str) -> Path:
    d = params.data
    if d.dataset == "demo":
        raise DataError("data.dataset is demo: call ghostlab.demo.prepare(params) first (ghostlab run does it)")
    if split not in ("eval", "calibration"):
        raise ValueError(f"split must be 'eval' or 'calibration', got {split!r}")
    root = d.calibration_root if split == "calibration" and d.calibration_root else d.root
    if root is None:
        raise DataError("data.root is not set; point it at your image folder")
    root = Path(root)
    if not root.is_dir():
        key = "data.calibration_root" if split == "calibration" and d.calibration_root else "data.root"
        raise DataError(f"{key} {root} is not a folder; point it at your ImageNet val folder")
    return root


def load_dataset(params: Params, split: str = "eval") -> Dataset:
    """The images of ``data.root`` (``split="eval"``) or of ``data.calibration_root`` (``"calibration"``,
    falling back to the evaluation set), honouring data.dataset, label_file, max_images and on_bad_image."""
    root = _dataset_root(params, split)
    problems = _Problems(params.data.on_bad_image)
    label_file = _label_file(params, root)
    if params.data.dataset == "folders":
        ds = _load_folders(root, label_file, problems)
    else:
        ds = _load_seed(root, label_file, params.model.num_classes, problems)
    if split == "eval" and params.data.max_images is not None:
        ds = ds.subset(np.arange(min(params.data.max_images, len(ds))))
    ds.skipped = problems.skipped
    if len(ds) == 0:
        raise DataError(f"{root}: no usable images in the dataset"
                        + (f" ({len(problems.skipped)} skipped)" if problems.skipped else "")
                        + "; check data.root and data.dataset (seed or folders)")
    return ds


_SEED_LINE = re.compile(r"^(\S+)\s+(-?\d+)$")


def _load_seed(root: Path, label_file: Path | None, num_classes: int | None, problems: _Problems) -> Dataset:
    labels_path = root / "val_label.txt"
    image_dir = root / "val"
    if not labels_path.exists():
        raise DataError(f"{labels_path} does not exist: the seed layout needs {image_dir}/*.JPEG and "
                        f"val_label.txt ('ILSVRC2012_val_00000001.JPEG 65' per line); "
                        f"for <root>/<class>/* folders set data.dataset: folders")
    if not image_dir.is_dir():
        raise DataError(f"{image_dir} is not a folder: the seed layout keeps its images in <root>/val/")
    names = read_class_names(label_file) if label_file else None
    entries = _parse_seed_labels(labels_path, problems)
    if names is not None:
        count, origin = len(names), f"{len(names)} classes in {label_file}"
    elif num_classes:
        count, origin = num_classes, f"model.num_classes={num_classes}"
    else:
        count, origin = 1000, "1000 ImageNet classes; give a label.txt for other class sets"
    existing = {p.name for p in image_dir.iterdir()}
    files, labels, origins, first_line = [], [], [], {}
    for n, name, label in entries:
        where = f"{labels_path}:{n}"
        if not 0 <= label < count:
            problems.bad(image_dir / name, f"label {label} is outside 0..{count - 1} ({origin})", where,
                         "fix the label or the label file")
        elif name in first_line:
            problems.bad(image_dir / name, f"{name} is listed again (first on line {first_line[name]})",
                         where, "remove the duplicate line")
        elif name not in existing:
            problems.bad(image_dir / name, f"{image_dir / name} does not exist", where,
                         "add the image or remove its line")
        else:
            first_line[name] = n
            files.append(image_dir / name)
            labels.append(label)
            origins.append(where)
    class_names = names or (imagenet_class_names() if count == 1000 else [f"class_{i}" for i in range(count)])
    return Dataset(root, files, np.asarray(labels, dtype=np.int64), class_names, "seed", [], origins)


def _parse_seed_labels(path: Path, problems: _Problems) -> list[tuple[int, str, int]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise DataError(f"cannot read {path} ({err}); save it as UTF-8 text") from None
    entries = []
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        m = _SEED_LINE.match(text)
        if m is None:
            problems.bad(path, f"expected '<image file> <class index>', got {text[:60]!r}", f"{path}:{n}",
                         "fix the line")
            continue
        entries.append((n, m.group(1), int(m.group(2))))
    return entries


def _load_folders(root: Path, label_file: Path | None, problems: _Problems) -> Dataset:
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders: the folders layout is <root>/<class>/<image>; "
                        f"for val/ + val_label.txt set data.dataset: seed")
    files, labels = [], []
    for index, cls in enumerate(classes):
        for p in sorted((root / cls).iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                files.append(p)
                labels.append(index)
    if label_file:
        names = read_class_names(label_file)
        if len(names) != len(classes):
            raise DataError(f"{label_file} names {len(names)} classes but {root} has {len(classes)} class folders; "
                            f"make them agree")
    elif len(classes) == 1000 and all(re.fullmatch(r"n\d{8}", c) for c in classes):
        from timm.data import ImageNetInfo

        info = ImageNetInfo()
        names = [info.label_name_to_description(c) for c in classes]
    else:
        names = classes
    return Dataset(root, files, np.asarray(labels, dtype=np.int64), names, "folders")


# ---------------------------------------------------------------- preprocessing

@dataclass(frozen=True)
class Preprocess:
    """Resize the shorter side to ``resize``, centre-crop ``crop``, scale to [0, 1], normalise."""

    name: str
    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def describe(self) -> str:
        return (f"{self.name}: Resize({self.resize}, {self.interpolation}) -> CenterCrop({self.crop}) -> "
                f"ToTensor -> Normalize(mean={list(self.mean)}, std={list(self.std)})")

    def to_dict(self) -> dict:
        return asdict(self)

    def __call__(self, image: Image.Image) -> np.ndarray:
        """An RGB PIL image -> uint8 (crop, crop, 3), as torchvision's Resize + CenterCrop make it."""
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.resize, int(self.resize * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
        if (new_w, new_h) != (w, h):
            image = image.resize((new_w, new_h), _INTERPOLATION[self.interpolation])
        top = int(round((new_h - self.crop) / 2.0))
        left = int(round((new_w - self.crop) / 2.0))
        image = image.crop((left, top, left + self.crop, top + self.crop))
        return np.asarray(image, dtype=np.uint8)

    def lookup_table(self) -> np.ndarray:
        """float32 (3, 256): each channel's normalised value of every uint8 level, computed with
        ToTensor + Normalize's float32 operations, so a lookup equals them bit for bit."""
        levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None]
        return ((levels[None, :] - mean) / std).astype(np.float32)

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 (N, H, W, 3) -> float32 (N, 3, H, W), ``(x / 255 - mean) / std`` by table lookup
        (a third of the time of the arithmetic)."""
        n, h, w, _ = images.shape
        lut = self.lookup_table()
        out = np.empty((n, 3, h, w), dtype=np.float32)
        for c in range(3):
            out[:, c] = lut[c][images[..., c]]
        return out


def preprocess_for(params: Params, model: Any = None) -> Preprocess:
    """The preset ``data.preprocessing`` names: ``seed`` (Resize 256 bilinear, CenterCrop 224, ImageNet
    mean/std), ``timm`` (the model's pretrained config at model.input_size) or ``custom`` (data.*)."""
    d = params.data
    if d.preprocessing == "seed":
        return Preprocess("seed", 256, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD)
    if d.preprocessing == "custom":
        return Preprocess("custom", d.resize, d.crop, d.interpolation, tuple(d.mean), tuple(d.std))
    from timm.data import resolve_data_config

    if model is not None:
        cfg = resolve_data_config({}, model=model)
    else:
        import timm

        pretrained = timm.models.get_pretrained_cfg(params.model.name)
        cfg = resolve_data_config({}, pretrained_cfg=pretrained.to_dict() if pretrained else {})
    crop = params.model.input_size
    interpolation = cfg["interpolation"] if cfg["interpolation"] in _INTERPOLATION else "bicubic"
    return Preprocess("timm", math.floor(crop / cfg["crop_pct"]), crop, interpolation,
                      tuple(float(v) for v in cfg["mean"]), tuple(float(v) for v in cfg["std"]))


def load_image(path: Path) -> Image.Image:
    """Any image file (JPEG/PNG/BMP; RGB, L, CMYK, RGBA, P, I;16...) as an RGB PIL image, as torchvision's
    loader makes it (``convert("RGB")``: alpha is dropped); 16-bit images are scaled, not clipped."""
    with open(path, "rb") as fh:  # our own handle: closed here, the decoded image stays usable
        im = Image.open(fh)
        im.load()
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):  # PIL would clip these at 255: scale instead
        arr = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        return Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


# ---------------------------------------------------------------- the cache

def cache_key(dataset: Dataset, preprocess: Preprocess) -> str:
    """A hash of the file list, their sizes and mtimes, and the preprocessing."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "preprocess": preprocess.to_dict()}, sort_keys=True).encode())
    for path in dataset.files:
        st = path.stat()
        h.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def cache_dir_for(params: Params) -> Path:
    if params.data.cache_dir:
        return Path(params.data.cache_dir)
    return Path(params.run.output_root) / "_cache"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock file: two processes never build the same thing at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class CachedImages:
    """Preprocessed images of one dataset, memory-mapped uint8 (N, H, W, 3), normalised on demand.

    ``decoded``: how many images this object had to decode (0 when the cache was reused).
    """

    def __init__(self, dataset: Dataset, preprocess: Preprocess, path: Path, meta: dict, decoded: int):
        self.dataset = dataset
        self.preprocess = preprocess
        self.path = path
        self.key = meta["key"]
        self.decoded = decoded
        bad = {b["index"] for b in meta.get("bad", [])}
        self.rows = np.asarray([i for i in range(meta["count"]) if i not in bad], dtype=np.int64)
        self.bad = meta.get("bad", [])
        self.images = np.memmap(path, dtype=np.uint8, mode="r", shape=tuple(meta["shape"]))
        self.labels = dataset.labels[self.rows]
        self.files = [dataset.files[i] for i in self.rows]
        self.split = "eval"
        """Which set these images are: "eval", or "calibration" (data.calibration_root)."""
        self.source = str(dataset.root)

    @property
    def class_names(self) -> list[str]:
        return self.dataset.class_names

    @property
    def skipped(self) -> list[dict]:
        return self.dataset.skipped + [{"file": b["file"], "reason": f"{b['where']}: {b['reason']}"} for b in self.bad]

    def __len__(self) -> int:
        return len(self.rows)

    def uint8(self, indices: np.ndarray | None = None) -> np.ndarray:
        rows = self.rows if indices is None else self.rows[np.asarray(indices, dtype=np.int64)]
        return np.asarray(self.images[rows])

    def normalized(self, indices: np.ndarray | list[int] | None = None) -> np.ndarray:
        """float32 (N, 3, H, W), normalised with the preprocessing's mean/std."""
        return self.preprocess.normalize(self.uint8(indices))

    def batches(self, batch_size: int, indices: np.ndarray | None = None
                ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Yields ``(x float32 NCHW, y int64, idx)`` in order; ``idx`` index this object (0..len-1)."""
        from concurrent.futures import ThreadPoolExecutor

        order = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        chunks = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
        if not chunks:
            return
        # the next batch is read and normalised in a thread while the caller runs the model on this one
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ghostlab-batches") as pool:
            upcoming = pool.submit(self.normalized, chunks[0])
            for i, idx in enumerate(chunks):
                x = upcoming.result()
                if i + 1 < len(chunks):
                    upcoming = pool.submit(self.normalized, chunks[i + 1])
                yield x, self.labels[idx], idx


def _decode_rows(args: tuple) -> list[dict]:
    """Worker: decode ``rows`` of ``files`` into the memmap at ``path``; returns failures."""
    path, shape, preprocess, files, origins, rows = args
    out = np.memmap(path, dtype=np.uint8, mode="r+", shape=shape)
    bad = []
    for row, file, origin in zip(rows, files, origins):
        try:
            out[row] = preprocess(load_image(Path(file)))
        except Exception as err:  # noqa: BLE001 - any decoder failure is reported per file
            reason = " ".join(str(err).split())[:120] or type(err).__name__
            where = f"{file} (listed at {origin})" if origin else str(file)
            bad.append({"index": int(row), "file": str(file), "where": where,
                        "reason": f"cannot decode image ({reason})"})
    del out  # no msync: the pages are shared with the parent's mapping; durability is not needed
    return bad


def _workers(params: Params) -> int:
    return params.data.workers or len(os.sched_getaffinity(0))


def _build_cache(dataset: Dataset, preprocess: Preprocess, path: Path, workers: int, show: bool) -> list[dict]:
    from tqdm import tqdm

    shape = (len(dataset), preprocess.crop, preprocess.crop, 3)
    np.memmap(path, dtype=np.uint8, mode="w+", shape=shape).flush()
    files = [str(f) for f in dataset.files]
    origins = dataset.origins or [""] * len(files)
    chunk = max(8, min(256, math.ceil(len(files) / (workers * 8))))
    jobs = [(str(path), shape, preprocess, files[s:s + chunk], origins[s:s + chunk],
             list(range(s, min(s + chunk, len(files)))))
            for s in range(0, len(files), chunk)]
    bad: list[dict] = []
    bar = tqdm(total=len(files), desc=f"caching {dataset.root.name} ({preprocess.name})", unit="img",
               disable=not show, leave=False)
    if workers <= 1 or len(files) < 64:
        for job in jobs:
            bad += _decode_rows(job)
            bar.update(len(job[3]))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork")) as pool:
            futures = {pool.submit(_decode_rows, job): len(job[3]) for job in jobs}
            for fut in as_completed(futures):
                bad += fut.result()
                bar.update(futures[fut])
    bar.close()
    return sorted(bad, key=lambda b: b["index"])


def cached_images(dataset: Dataset, preprocess: Preprocess, params: Params, show_progress: bool = True
                  ) -> CachedImages:
    """The dataset's preprocessed images: reuses the cache when its key matches, else builds it
    (all cores, progress bar). Undecodable images stop the build unless data.on_bad_image is skip."""
    root = cache_dir_for(params)
    key = cache_key(dataset, preprocess)
    path, meta_path = root / f"{key}.u8", root / f"{key}.json"
    meta = _read_meta(meta_path, path)
    decoded = 0
    if meta is None:
        with _locked(root / f".{key}.lock"):
            meta = _read_meta(meta_path, path)  # another process may have built it meanwhile
            if meta is None:
                tmp = root / f".{key}.u8.partial"
                bad = _build_cache(dataset, preprocess, tmp, _workers(params), show_progress)
                decoded = len(dataset)
                os.replace(tmp, path)  # kept even with bad images: a rerun with skip decodes nothing
                meta = {"key": key, "count": len(dataset), "shape": [len(dataset), preprocess.crop, preprocess.crop, 3],
                        "root": str(dataset.root), "preprocess": preprocess.to_dict(), "bad": bad,
                        "files": len(dataset), "version": CACHE_VERSION}
                tmp_meta = meta_path.with_name(f".{meta_path.name}.tmp")
                tmp_meta.write_text(json.dumps(meta, indent=1))
                os.replace(tmp_meta, meta_path)
    if meta["bad"] and params.data.on_bad_image != "skip":
        b = meta["bad"][0]
        more = f" (and {len(meta['bad']) - 1} more)" if len(meta["bad"]) > 1 else ""
        raise DataError(f"{b['where']}: {b['reason']}{more}; replace or delete the file, {_SKIP_HINT}")
    cached = CachedImages(dataset, preprocess, path, meta, decoded)
    if len(cached) == 0:
        raise DataError(f"{dataset.root}: no image could be decoded ({len(cached.bad)} skipped); check the files")
    return cached


def _read_meta(meta_path: Path, path: Path) -> dict | None:
    if not (meta_path.exists() and path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError):
        return None
    if meta.get("version") != CACHE_VERSION or path.stat().st_size != int(np.prod(meta["shape"])):
        return None
    return meta


def cache_info(params: Params) -> list[dict]:
    """One row per cache file under the cache folder: key, images, size, source folder, preprocessing."""
    root = cache_dir_for(params)
    rows = []
    for meta_path in sorted(root.glob("*.json")) if root.is_dir() else []:
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        data = meta_path.with_suffix(".u8")
        rows.append({"key": meta.get("key"), "images": meta.get("count"), "bad": len(meta.get("bad", [])),
                     "mib": round(data.stat().st_size / 2**20, 1) if data.exists() else 0.0,
                     "root": meta.get("root"), "preprocess": meta.get("preprocess", {}).get("name"),
                     "crop": meta.get("preprocess", {}).get("crop")})
    return rows


def build_caches(params: Params, show_progress: bool = True) -> list[dict]:
    """Build (or reuse) the caches a run of these params reads: the evaluation set and, when
    data.calibration_root is set, the calibration set. ``params`` are resolved (``demo.prepare``)."""
    preprocess = preprocess_for(params)
    rows = []
    for split in ("eval", "calibration") if params.data.calibration_root else ("eval",):
        dataset = load_dataset(params, split)
        cached = cached_images(dataset, preprocess, params, show_progress)
        rows.append({"split": split, "images": len(cached), "skipped": len(cached.skipped),
                     "decoded": cached.decoded, "key": cached.key, "root": str(dataset.root),
                     "preprocess": preprocess.name, "crop": preprocess.crop})
    return rows


def clear_cache(params: Params) -> int:
    """Delete the cache folder's files; returns the bytes freed."""
    root = cache_dir_for(params)
    if not root.is_dir():
        return 0
    freed = sum(p.stat().st_size for p in root.iterdir() if p.is_file())
    shutil.rmtree(root)
    return freed


# ---------------------------------------------------------------- calibration

def calibration_indices(labels: np.ndarray, num: int, seed: int = 0) -> np.ndarray:
    """``num`` indices drawn class-balanced: every class appears whenever ``num`` >= the class count,
    and class counts differ by at most one (short classes give their turn to the others). Sorted."""
    labels = np.asarray(labels)
    num = min(int(num), len(labels))
    rng = np.random.default_rng(seed)
    classes = rng.permutation(np.unique(labels))
    pools = {c: list(rng.permutation(np.flatnonzero(labels == c))) for c in classes}
    chosen: list[int] = []
    while len(chosen) < num:
        for c in classes:
            if pools[c] and len(chosen) < num:
                chosen.append(int(pools[c].pop()))
    return np.sort(np.asarray(chosen, dtype=np.int64))


def calibration_source(params: Params, preprocess: Preprocess, show_progress: bool = True) -> CachedImages:
    """The images calibration draws from: data.calibration_root or else the evaluation set
    (``cached.split`` says which: "calibration" or "eval"), decoded into the cache."""
    split = "calibration" if params.data.calibration_root else "eval"
    cached = cached_images(load_dataset(params, split), preprocess, params, show_progress)
    cached.split = split
    return cached


def calibration_set(params: Params, preprocess: Preprocess, show_progress: bool = True
                    ) -> tuple[CachedImages, np.ndarray]:
    """Calibration images: ``calibrate.num_images`` class-balanced, seeded, from
    ``calibration_source``. Only 02 draws them; it records the draw in calibration_images.json."""
    cached = calibration_source(params, preprocess, show_progress)
    indices = calibration_indices(cached.labels, params.calibrate.num_images, params.calibrate.seed)
    return cached, indices
