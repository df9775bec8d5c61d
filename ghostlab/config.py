"""The params schema: one typed object, loaded from YAML with ``safe_load``.

A profile (``params/<name>.yaml``) holds any subset of the sections below; missing keys
take the defaults written here, which is the one place the params are documented.
``-p section.key=value`` overrides are parsed as YAML scalars/lists and then checked
against the same types. Relative paths in a params file resolve against the folder
that holds the file, so a profile works from any working directory.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml

from .errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelParams:
    name: str = "ghostnet_100"
    """timm model name: ghostnet_050/100/130, ghostnetv2_*, ghostnetv3_*."""
    weights: str = "random"
    """`pretrained` (timm's local cache), `random`, `demo` (the checkpoint ghostlab trains), or a checkpoint path."""
    num_classes: Optional[int] = None
    """None: the dataset's class count (1000 for ImageNet)."""
    input_size: int = 224
    """Square input side the model is exported and evaluated at."""


@dataclass(frozen=True)
class DataParams:
    dataset: Literal["seed", "folders", "demo"] = "seed"
    """`seed`: <root>/val/*.JPEG + <root>/val_label.txt; `folders`: <root>/<class>/*; `demo`: ghostlab's procedural set."""
    root: Optional[str] = None
    label_file: Optional[str] = None
    """Class names, one per line in index order (`tench, Tinca tinca`); default: <root>/label.txt when present."""
    calibration_root: Optional[str] = None
    """Where calibration images come from; default: the evaluation set."""
    preprocessing: Literal["seed", "timm", "custom"] = "seed"
    resize: int = 256
    crop: int = 224
    interpolation: Literal["bilinear", "bicubic", "nearest"] = "bilinear"
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    max_images: Optional[int] = None
    """Use only the first N images of the evaluation set (quick looks); None: all."""
    on_bad_image: Literal["stop", "skip"] = "stop"
    cache_dir: Optional[str] = None
    """Preprocessed-image cache; default: <output_root>/_cache."""
    workers: int = 0
    """Processes for decoding; 0: all cores."""


@dataclass(frozen=True)
class DemoParams:
    """The embedded default: a procedural dataset and a GhostNet trained on it."""

    root: Optional[str] = None
    """Where the demo dataset and checkpoint live; default: <output_root>/_demo."""
    num_classes: int = 10
    """Classes (2..36), each a shape + colour + texture combination."""
    image_size: int = 64
    """Side of the generated images in pixels (the data.resize/crop of the profile then apply)."""
    train_per_class: int = 300
    calibration_per_class: int = 20
    val_per_class: int = 50
    epochs: int = 12
    """Training epochs over the train split (seeded; progress bar; cached with its params)."""
    batch_size: int = 64
    learning_rate: float = 0.01
    """Peak AdamW learning rate of the one-cycle schedule."""
    threads: int = 1
    """Torch threads for training; 0: all cores. On an idle 2-core machine two threads train the demo
    GhostNet in 124 s instead of 164 s (params/demo.yaml uses 0), but threads that wait for each other
    lose much of their speed when other processes share the cores, so 1 is the safe default."""
    seed: int = 0
    """Seeds the images and the training."""
    resnet_blocks: list[int] = field(default_factory=lambda: [2, 2, 2, 2])
    """Basic blocks per stage of the demo ResNet, the trained conventional network notebook 05 compares
    GhostNet with offline (4 stages, widths resnet_width x 1, 2, 4, 8; no Ghost modules)."""
    resnet_width: int = 16
    """Channels of the demo ResNet's stem and first stage (16: 0.7 M params, 20 M MACs at 64 px)."""
    resnet_epochs: Optional[int] = 10
    """Training epochs of the demo ResNet (same data, input size, optimiser and seed as the GhostNet);
    null: demo.epochs. Plain convolutions learn these images faster than GhostNet's."""


@dataclass(frozen=True)
class ExportParams:
    opset: int = 17
    dynamic_batch: bool = True
    dynamic_spatial: bool = True
    """Export with dynamic height/width so the benchmark can always feed 3x224x224."""
    parity_images: int = 16
    """Images from the evaluation set used for the torch vs ONNX Runtime parity check."""


@dataclass(frozen=True)
class VariantParams:
    """One int8 model: how ONNX Runtime calibrates and quantizes it (QDQ format)."""

    name: str
    """Names the files: artifacts/int8_<name>.onnx and calibration_<name>.json."""
    method: Literal["minmax", "percentile", "entropy", "auto"] = "minmax"
    """Range calibration: `minmax`, `percentile`, `entropy` (KL divergence); `auto`: start from `base`
    and keep the fewest nodes in fp32 needed to reach calibrate.auto_target_agreement (its other
    settings come from `base`)."""
    percentile: float = 99.999
    """For `percentile`: the share of values (in %) the range keeps."""
    num_bins: Optional[int] = None
    """Histogram bins for `percentile` and `entropy`; null: 2048. Entropy is KL-divergence calibration as
    in TensorRT: the threshold whose 128 quantized levels lose least KL on this fine histogram (with
    128 bins, ORT's default, every tensor lands on its minmax range)."""
    per_channel: bool = True
    """One weight scale per output channel (per tensor when false)."""
    activation_type: Literal["uint8", "int8"] = "uint8"
    """uint8 activations with int8 weights (U8S8) is ONNX Runtime's fast path on x86."""
    weight_type: Literal["int8", "uint8"] = "int8"
    reduce_range: bool = False
    """7-bit weights: avoids U8S8 saturation on CPUs without VNNI, at some accuracy."""
    nodes_to_exclude: list[str] = field(default_factory=list)
    """Node names (as in the SQNR table) to keep in fp32."""
    base: Optional[str] = None
    """For `auto`: the variant it starts from (default: the one with the best hold-out agreement)."""


def _default_variants() -> list[VariantParams]:
    return [
        VariantParams(name="minmax", method="minmax"),
        VariantParams(name="percentile", method="percentile", percentile=99.999),
        VariantParams(name="entropy", method="entropy"),
        VariantParams(name="auto", method="auto"),
    ]


@dataclass(frozen=True)
class CalibrateParams:
    num_images: int = 1000
    seed: int = 0
    variants: list[VariantParams] = field(default_factory=_default_variants)
    chunk_size: int = 32
    """Images per calibration chunk (one ORT collect_data call): bounds the memory of histogram methods
    to about chunk_size x the activations of one image (ghostnet_100 at 224: ~51 MB per image)."""
    holdout_images: int = 200
    """Calibration images held out to rank node sensitivity and check `auto`."""
    auto_target_agreement: float = 0.99
    """`auto` keeps nodes in fp32 until top-1 agreement with fp32 on the hold-out reaches this."""
    auto_max_excluded: int = 20
    """`auto` tries at most this many ranked nodes (each kept in fp32 with the neighbours that would
    otherwise quantize its tensors), and says so when the target is still missed."""
    sqnr: bool = True
    """Per-tensor SQNR with ORT's qdq_loss_debug."""
    sqnr_images: int = 16
    """Hold-out images whose every activation is captured for SQNR (memory grows with it)."""
    sensitivity_candidates: int = 24
    """Nodes quantized one at a time for the sensitivity ranking: the lowest-SQNR ones of the base variant."""
    timing_rounds: int = 30
    """Rounds of the quick fp32 vs base vs auto latency check (batch 1, one thread)."""


@dataclass(frozen=True)
class BenchmarkParams:
    """Latency and throughput of every model (notebook 03); the grid is batch x threads, plus K sessions."""

    batch_sizes: list[int] = field(default_factory=lambda: [1, 8, 32])
    """Images per inference."""
    threads: list[int] = field(default_factory=lambda: [1, 0])
    """Intra-op threads of a single session; 0: all cores."""
    sessions: list[int] = field(default_factory=lambda: [1, 0])
    """Concurrent sessions of one thread each, like a vendor tool's instances; 0: one per core; 1 adds nothing."""
    input_size: int = 224
    """Square side of the measured input (the headline). Measure at the size accuracy is measured at for a
    like-for-like report (the demo: 64); 224 is the canonical deployment input."""
    extra_input_sizes: list[int] = field(default_factory=list)
    """Also time every candidate at these input sides, at the headline cell only (e.g. [224] beside a
    64-px headline): 03 shows them in their own table; the headline and the index stay at input_size."""
    warmup: int = 2
    """Untimed rounds per grid cell before timing."""
    rounds: int = 10
    """Timed rounds per grid cell; within a round every model runs once, in an order that rotates."""
    images_per_round: int = 8
    """Each model runs at least this many images per round (8 inferences at batch 1, one at batch 8)."""
    include_torch: bool = True
    """Time torch eager (eval, inference_mode) too: the baseline a user would otherwise deploy."""
    runtimes: list[Literal["onnxruntime", "openvino"]] = field(default_factory=lambda: ["onnxruntime", "openvino"])
    """Runtimes whose candidates are timed (ORT fp32, the reference, always is); `openvino` adds OpenVINO on
    the fp32 export (f32, and bf16 where the CPU has avx512_bf16/AMX), on each int8 file and on NNCF's int8 IR."""
    grid_candidates: Optional[int] = 4
    """Every candidate is timed at the headline cell; the rest of the grid times ORT fp32, torch and this many
    fastest others (null: every candidate on every cell)."""
    spin: bool = False
    """Let ONNX Runtime's idle threads spin; off so one model's spinning does not slow the next."""
    headline_batch: int = 8
    """The batch size the report leads with (all cores)."""
    profile: bool = True
    """Also split each ONNX model's time by GhostNet part (ONNX Runtime's profiler, one thread, headline batch)."""
    quick: bool = False
    """A few rounds on a reduced grid (first two batch sizes): for tests and first looks."""


@dataclass(frozen=True)
class EvaluateParams:
    batch_size: int = 64
    """Images per batch; each batch goes through every model before the next is read."""
    max_images: Optional[int] = None
    """Evaluate only the first N images (after any calibration images are left out); None: all."""
    exclude_calibration: bool = False
    """Leave out the calibration images when they come from the evaluation set (no data.calibration_root)."""
    bootstrap: int = 1000
    """Bootstrap draws for the 95% interval of each int8 model's top-1 drop (0: no interval)."""
    seed: int = 0
    """Seed of the bootstrap draws."""
    max_drop_pts: float = 0.5
    """The recommendation: the fastest candidate at the benchmark's headline setting whose top-1 drop against
    ORT fp32 has a 95% upper bound (paired bootstrap) within this many percentage points."""


@dataclass(frozen=True)
class GhostMapsParams:
    """Ghost feature maps (notebook 05): intrinsic vs ghost maps and per-layer redundancy."""

    image: Optional[str] = None
    """An image to show besides the evaluation images: a JPEG/PNG path, or `grace_hopper` for the photo
    matplotlib ships; null: evaluation images only."""
    dataset_indices: list[int] = field(default_factory=lambda: [0])
    """Evaluation-set images to show (indices, after `image`; their class is shown). Both networks see the
    same images at the same input size."""
    metric_images: int = 16
    """Evaluation images (class-balanced, seeded by run.seed) the redundancy metrics average over, for both
    networks; each metric is reported as the mean over them and their standard deviation."""
    twin_threshold: float = 0.9
    """A channel has a near twin when its cosine similarity to another channel of the layer exceeds this."""
    modules: list[str] = field(default_factory=list)
    """Ghost modules to show in detail (e.g. blocks.2.0.ghost1); empty: a few spread over depth."""
    max_channels: int = 8
    """Intrinsic/ghost pairs shown per module, and pairs in the most-similar-pairs gallery."""
    similarity_size: int = 28
    """Maps are average-pooled to at most this side before similarity (bounded cost)."""
    compare_resnet: bool = True
    """Compare redundancy with a conventional ResNet (see resnet_weights), same images and input size."""
    resnet_weights: str = "auto"
    """The comparison network: `auto` = `demo` beside the demo GhostNet (model.weights: demo), else `pretrained`
    if timm's cache has it, else none (the report says why); `demo` = the demo ResNet (demo.resnet_*), trained
    on the demo data and cached (needs data.dataset or model.weights demo); `pretrained` = timm resnet50 from
    the local cache (the paper's network); a resnet50 checkpoint path; `random` = untrained resnet50 (only when
    asked for; every page and the index then say so)."""
    interactive: bool = False
    """Show the ipywidgets explorer (JupyterLab); the report's static figures are there either way."""


@dataclass(frozen=True)
class RunParams:
    name: Optional[str] = None
    """Run folder name under output_root; default: the profile's file name. A name, not a path
    (no separators, '..', or leading '.'): ``ghostlab run --out PATH`` writes elsewhere."""
    output_root: str = "../outputs"
    notebooks: list[str] = field(default_factory=list)
    """Subset to run (e.g. [01_export]); empty: all."""
    notebook_dir: Optional[str] = None
    """Folder of NN_name.ipynb notebooks; default: the kit's notebooks/."""
    cell_timeout: int = 1800
    show_code: bool = False
    seed: int = 0


@dataclass(frozen=True)
class Params:
    model: ModelParams = field(default_factory=ModelParams)
    data: DataParams = field(default_factory=DataParams)
    demo: DemoParams = field(default_factory=DemoParams)
    export: ExportParams = field(default_factory=ExportParams)
    calibrate: CalibrateParams = field(default_factory=CalibrateParams)
    benchmark: BenchmarkParams = field(default_factory=BenchmarkParams)
    evaluate: EvaluateParams = field(default_factory=EvaluateParams)
    ghost_maps: GhostMapsParams = field(default_factory=GhostMapsParams)
    run: RunParams = field(default_factory=RunParams)
    profile: str = "custom"
    """Set by the loader: the params file's stem."""
    source: str = ""
    """Set by the loader: the params file's absolute path."""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **sections: Any) -> "Params":
        return dataclasses.replace(self, **sections)


# Path-valued keys: resolved against the params file's folder on load.
PATH_KEYS = {
    ("model", "weights"),
    ("data", "root"),
    ("data", "label_file"),
    ("data", "calibration_root"),
    ("data", "cache_dir"),
    ("demo", "root"),
    ("ghost_maps", "image"),
    ("run", "output_root"),
    ("run", "notebook_dir"),
    ("ghost_maps", "resnet_weights"),
}
_NOT_PATHS = {("model", "weights"): {"random", "pretrained", "demo"},
              ("ghost_maps", "resnet_weights"): {"random", "pretrained", "demo", "auto"},
              ("ghost_maps", "image"): {"grace_hopper"}}


# ---------------------------------------------------------------- type checking

def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{' | '.join(_type_name(a) for a in args)} or null"
    if origin is list:
        (item,) = typing.get_args(tp)
        return f"list of {_type_name(item)}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str, where: str) -> Any:
    """Check ``value`` against ``tp``; return it (lists copied, dataclasses built)."""
    origin = typing.get_origin(tp)

    def wrong() -> ConfigError:
        return ConfigError(
            f"{where}: {key} must be {_type_name(tp)}, got {value!r} ({type(value).__name__})"
        )

    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key, where)
            except ConfigError:
                pass
        raise wrong()
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise wrong()
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise wrong()
        return [_coerce(v, item, f"{key}[{i}]", where) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise wrong()
        return _build(tp, value, key, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise wrong()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise wrong()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise wrong()
    if tp is str:
        if isinstance(value, str):
            return value
        raise wrong()
    raise TypeError(f"unsupported schema type {tp!r} for {key}")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _valid_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        if f.name in ("profile", "source") and cls is Params:
            continue
        full = f"{prefix}{f.name}"
        keys.append(full)
        tp = _hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            keys.extend(_valid_keys(tp, full + "."))
    return keys


def _unknown_key(key: str, cls: type, prefix: str, where: str) -> ConfigError:
    candidates = [k for k in _valid_keys(Params)] if prefix == "" else [
        prefix + k for k in _valid_keys(cls)
    ]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    hint = f" — did you mean {close[0]}?" if close else f"; valid keys here: {', '.join(c for c in candidates if c.count('.') == key.count('.'))}"
    return ConfigError(f"{where}: unknown key {key}{hint}")


def _build(cls: type, raw: dict, prefix: str, where: str) -> Any:
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in raw.items():
        full = f"{prefix}.{k}" if prefix else str(k)
        if k not in names or (cls is Params and k in ("profile", "source")):
            raise _unknown_key(full, cls, f"{prefix}." if prefix else "", where)
        kwargs[k] = _coerce(v, hints[k], full, where)
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field (e.g. a variant's name) is missing
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.name not in kwargs and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        raise ConfigError(f"{where}: {prefix or 'params'} needs key(s) {', '.join(missing) or err}") from None


# ---------------------------------------------------------------- loading

def _read_yaml(path: Path) -> dict:
    if not path.exists():
        raise ConfigError(f"params file {path} does not exist; pick one from params/ (ghostlab profiles lists them)")
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read params file {path}: {err.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as err:
        line = f" line {err.problem_mark.line + 1}" if err.problem_mark else ""
        raise ConfigError(
            f"{path}:{line}: YAML tag not allowed ({err.problem}); params are plain data"
        ) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{line}: YAML syntax error: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections (model:, data:, ...), got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """``section.key=value`` -> (key, value); value is parsed as a YAML scalar or list."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value (e.g. -p model.name=ghostnet_050)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or "." not in key:
        raise ConfigError(f"override {text!r}: the key must name a section and a key, e.g. model.name")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def _apply_override(raw: dict, key: str, value: Any, where: str) -> None:
    parts = key.split(".")
    node = raw
    cls: Any = Params
    for i, part in enumerate(parts):
        hints = _hints(cls) if dataclasses.is_dataclass(cls) else {}
        if part not in hints or (cls is Params and part in ("profile", "source")):
            raise _unknown_key(key, Params, "", where)
        tp = hints[part]
        if i == len(parts) - 1:
            # a string field keeps the text as given (`-p model.name=123` stays "123")
            if tp is str or tp == Optional[str]:
                if value is not None and not isinstance(value, str):
                    value = str(value)
            node[part] = value
            return
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{where}: {'.'.join(parts[:i + 1])} is not a section; cannot set {key}")
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {'.'.join(parts[:i + 1])} must be a mapping")
        cls = tp


def _resolve_paths(params: Params, base: Path) -> Params:
    sections = {}
    for section, key in PATH_KEYS:
        value = getattr(getattr(params, section), key)
        if value is None or value in _NOT_PATHS.get((section, key), ()):
            continue
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = (base / path).resolve()
        sections.setdefault(section, {})[key] = str(path)
    return params.replace(**{
        s: dataclasses.replace(getattr(params, s), **kv) for s, kv in sections.items()
    })


def load_params(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Params:
    """Read a params file, apply ``section.key=value`` overrides, validate, freeze.

    A file written by ``dump_params`` (a run's ``params.yaml``) keeps its profile name.
    Raises ConfigError with a one-line message naming the file and key.
    """
    path = Path(path).expanduser().resolve()
    raw = _read_yaml(path)
    where = str(path)
    profile = raw.pop("profile", None) if isinstance(raw.get("profile"), str) else None
    raw.pop("source", None)
    for text in overrides:
        key, value = parse_override(text)
        _apply_override(raw, key, value, f"{where} (-p {key})")
    params = _build(Params, raw, "", where)
    params = params.replace(profile=profile or path.stem, source=str(path))
    params = _resolve_paths(params, path.parent)
    _validate(params, where)
    return params


def _validate(p: Params, where: str) -> None:
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(f"{where}: {msg}")

    need(p.model.input_size >= 32, f"model.input_size must be >= 32, got {p.model.input_size}")
    need(p.data.crop <= p.data.resize, f"data.crop ({p.data.crop}) must not exceed data.resize ({p.data.resize})")
    need(len(p.data.mean) == 3 and len(p.data.std) == 3, "data.mean and data.std need 3 values (R, G, B)")
    need(all(s > 0 for s in p.data.std), "data.std values must be > 0")
    need(p.calibrate.num_images > 0, "calibrate.num_images must be > 0")
    need(p.calibrate.chunk_size > 0, "calibrate.chunk_size must be > 0")
    need(0 < p.calibrate.auto_target_agreement <= 1, "calibrate.auto_target_agreement must be in (0, 1]")
    need(p.calibrate.holdout_images > 0, "calibrate.holdout_images must be > 0")
    need(p.calibrate.sqnr_images > 0, "calibrate.sqnr_images must be > 0")
    need(p.calibrate.sensitivity_candidates >= 0, "calibrate.sensitivity_candidates must be >= 0")
    need(p.calibrate.auto_max_excluded >= 0, "calibrate.auto_max_excluded must be >= 0")
    need(p.calibrate.timing_rounds > 0, "calibrate.timing_rounds must be > 0")
    names = [v.name for v in p.calibrate.variants]
    dup = {n for n in names if names.count(n) > 1}
    need(not dup, f"calibrate.variants: duplicate name(s) {', '.join(sorted(dup))}")
    for v in p.calibrate.variants:
        need(v.name.replace("_", "").replace("-", "").isalnum(),
             f"calibrate.variants: name {v.name!r} must be letters, digits, '_' or '-' (it names files)")
        need(50 < v.percentile <= 100, f"calibrate.variants[{v.name}].percentile must be in (50, 100]")
        need(v.num_bins is None or v.num_bins >= 128, f"calibrate.variants[{v.name}].num_bins must be >= 128")
    need(all(b > 0 for b in p.benchmark.batch_sizes) and p.benchmark.batch_sizes, "benchmark.batch_sizes must be positive")
    need(all(t >= 0 for t in p.benchmark.threads) and p.benchmark.threads, "benchmark.threads must be >= 0 (0: all cores)")
    need(all(k >= 0 for k in p.benchmark.sessions), "benchmark.sessions must be >= 0 (0: one per core)")
    need(p.benchmark.input_size >= 32, f"benchmark.input_size must be >= 32, got {p.benchmark.input_size}")
    need(all(s >= 32 for s in p.benchmark.extra_input_sizes),
         f"benchmark.extra_input_sizes must be >= 32 each, got {p.benchmark.extra_input_sizes}")
    need(p.benchmark.rounds > 0 and p.benchmark.warmup >= 0 and p.benchmark.images_per_round > 0,
         "benchmark.rounds and benchmark.images_per_round must be > 0, benchmark.warmup >= 0")
    need(p.evaluate.batch_size > 0, "evaluate.batch_size must be > 0")
    need(p.ghost_maps.max_channels > 0, "ghost_maps.max_channels must be > 0")
    need(p.ghost_maps.similarity_size >= 2, "ghost_maps.similarity_size must be >= 2")
    need(all(i >= 0 for i in p.ghost_maps.dataset_indices), "ghost_maps.dataset_indices must be >= 0")
    need(p.ghost_maps.metric_images >= 0, "ghost_maps.metric_images must be >= 0 (0: only the shown images)")
    need(0 < p.ghost_maps.twin_threshold < 1, "ghost_maps.twin_threshold must be between 0 and 1")
    need(bool(p.ghost_maps.image or p.ghost_maps.dataset_indices),
         "ghost_maps: set image or dataset_indices (the images notebook 05 shows)")
    need(p.demo.resnet_width > 0 and len(p.demo.resnet_blocks) == 4 and min(p.demo.resnet_blocks) > 0,
         "demo.resnet_blocks must be 4 positive block counts and demo.resnet_width > 0")
    need(p.evaluate.max_images is None or p.evaluate.max_images > 0, "evaluate.max_images must be > 0 (or null: all)")
    need(p.evaluate.bootstrap >= 0, "evaluate.bootstrap must be >= 0 (0: no interval)")
    need(p.evaluate.max_drop_pts >= 0, "evaluate.max_drop_pts must be >= 0 (percentage points of top-1)")
    need(p.benchmark.grid_candidates is None or p.benchmark.grid_candidates >= 0,
         "benchmark.grid_candidates must be >= 0 (or null: every candidate on every cell)")
    need(p.data.max_images is None or p.data.max_images > 0, "data.max_images must be > 0 (or null: all)")
    need(p.data.workers >= 0, "data.workers must be >= 0 (0: all cores)")
    need(2 <= p.demo.num_classes <= 36, f"demo.num_classes must be 2..36, got {p.demo.num_classes}")
    need(p.demo.image_size >= 16, f"demo.image_size must be >= 16, got {p.demo.image_size}")
    need(min(p.demo.train_per_class, p.demo.calibration_per_class, p.demo.val_per_class) > 0,
         "demo.train_per_class, calibration_per_class and val_per_class must be > 0")
    need(p.demo.epochs > 0 and p.demo.batch_size > 0 and p.demo.learning_rate > 0,
         "demo.epochs, batch_size and learning_rate must be > 0")
    need(p.demo.threads >= 0, "demo.threads must be >= 0 (0: all cores)")
    need(p.data.dataset == "demo" or p.data.root is not None,
         "data.root is not set; point it at your ImageNet val folder (or use data.dataset: demo)")
    if p.run.name is not None:
        problem = _run_name_problem(p.run.name)
        need(problem is None, f"run.name {p.run.name!r} {problem}: it names the run folder under run.output_root; "
                              f"to write somewhere else use --out PATH")


def _run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a run folder's name (None: it can). A name, never a path: a run
    named ``../../x`` would write, and later replace, a folder outside the output root."""
    if not name.strip():
        return "is empty"
    if "/" in name or "\\" in name or name in (".", ".."):
        return "is a path, not a name"
    if name.startswith("."):
        return "is hidden (starts with '.')"
    return None


def dump_params(params: Params, path: str | Path) -> None:
    """Write the frozen params as YAML (absolute paths): what a run actually used."""
    Path(path).write_text(yaml.safe_dump(params.to_dict(), sort_keys=False))
