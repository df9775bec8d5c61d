"""Build a timm GhostNet from a name and a weights source; model facts.

Weights sources (``model.weights``):
- ``pretrained``: timm's local cache only (the Hugging Face hub cache); never downloads.
- ``random``: timm's initialisation (reports then carry a banner).
- a path to ``.pth``/``.pt``/``.bin``/``.safetensors``: a plain or timm state dict, or one wrapped
  in ``state_dict``/``model``/``state_dict_ema``; pickles load with ``weights_only=True``.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ModelError
from .ghostnet import CARD_FACTS, PAPER_FACTS

WRAPPER_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema", "module")
SPECIAL_WEIGHTS = ("pretrained", "random", "demo")


def ghostnet_names() -> list[str]:
    import timm

    return timm.list_models("ghostnet*")


def check_name(name: str) -> None:
    names = ghostnet_names()
    if name in names:
        return
    import difflib

    import timm

    close = difflib.get_close_matches(name, names, n=1)
    if name in timm.list_models():
        raise ModelError(f"model.name {name!r} is not a GhostNet; ghostlab supports {', '.join(names)}")
    hint = f" — did you mean {close[0]}?" if close else f"; choose one of {', '.join(names)}"
    raise ModelError(f"unknown model.name {name!r}{hint}")


def cached_pretrained_file(name: str) -> Path | None:
    """The local file of timm's pretrained weights for ``name``, or None; never downloads.

    Looks where timm would download to: the Hugging Face hub cache for ``hf_hub_id``
    weights, torch hub's checkpoint folder for ``url`` weights.
    """
    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return None
    if cfg.file and Path(cfg.file).exists():
        return Path(cfg.file)
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo = cfg.hf_hub_id.rstrip("/")  # timm fills in "timm/<name>.<tag>"
        for filename in ("model.safetensors", "pytorch_model.bin"):
            hit = try_to_load_from_cache(repo, filename)
            if isinstance(hit, str) and Path(hit).exists():
                return Path(hit)
    if cfg.url:
        local = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url.split("?")[0])
        if local.exists():
            return local
    return None


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a checkpoint file, unwrapped; safe loading only."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"checkpoint {path} does not exist; set model.weights to a .pth/.safetensors file, "
                         f"'pretrained' or 'random'")
    if path.is_dir():
        raise ModelError(f"checkpoint {path} is a folder; point model.weights at the checkpoint file inside it")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _clean(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as err:
            raise ModelError(f"checkpoint {path} is not a readable safetensors file ({err}); re-save it") from None
    try:
        with warnings.catch_warnings():
            # torch warns about a plain pickle's protocol before refusing it; our one line says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unpickling failed"
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "GLOBAL" in str(err):
            raise ModelError(
                f"checkpoint {path} holds Python objects beyond tensors and was refused (weights_only=True): "
                f"re-save it with torch.save(model.state_dict(), ...) or as .safetensors"
            ) from None
        raise ModelError(f"checkpoint {path} is not a PyTorch checkpoint ({first}); "
                         f"pass a .pth/.pt/.safetensors state dict") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, KeyError, IndexError) as err:
        first = (str(err).strip().splitlines() or ["unreadable"])[0][:160]
        raise ModelError(f"checkpoint {path} is not a PyTorch checkpoint ({first}); "
                         f"pass a .pth/.pt/.safetensors state dict") from None
    for _ in range(3):  # unwrap {"state_dict": {...}} / {"model": {...}}, possibly nested
        if isinstance(obj, dict):
            inner = next((obj[k] for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)
            if inner is not None and not any(torch.is_tensor(v) for v in obj.values()):
                obj = inner
                continue
        break
    if not isinstance(obj, dict) or not any(torch.is_tensor(v) for v in obj.values()):
        raise ModelError(f"checkpoint {path} holds no state dict (tensors by name); save model.state_dict()")
    return _clean({k: v for k, v in obj.items() if torch.is_tensor(v)})


def _clean(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip `module.` prefixes (DataParallel) and map the original repo's key names to timm's."""
    from timm.models._helpers import clean_state_dict
    from timm.models.ghostnet import checkpoint_filter_fn

    return checkpoint_filter_fn(clean_state_dict(state), None)


def checkpoint_num_classes(state: dict[str, torch.Tensor]) -> int | None:
    weight = state.get("classifier.weight")
    return int(weight.shape[0]) if weight is not None and weight.ndim == 2 else None


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], name: str, path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")

        what = []
        if missing:
            what.append(f"missing {few(missing)}")
        if unexpected:
            what.append(f"unexpected {few(unexpected)}")
        raise ModelError(f"checkpoint {path} does not fit {name}: {'; '.join(what)} — "
                         f"is it for another architecture? check model.name")
    for k, v in state.items():
        if own[k].shape != v.shape:
            if k.startswith("classifier."):
                raise ModelError(
                    f"checkpoint {path} has {v.shape[0]} classes but the model is built for {own[k].shape[0]} "
                    f"(from the dataset's labels or model.num_classes); make them agree")
            raise ModelError(f"checkpoint {path} does not fit {name}: {k} is {tuple(v.shape)}, "
                             f"the model expects {tuple(own[k].shape)} — check model.name")
    model.load_state_dict(state)


def create_model(name: str, weights: str = "random", num_classes: int | None = None,
                 exportable: bool = True) -> nn.Module:
    """A timm GhostNet in eval mode. ``num_classes`` None: 1000, or the checkpoint's."""
    import timm

    check_name(name)
    kwargs: dict[str, Any] = {"exportable": exportable}
    if weights == "pretrained":
        if num_classes not in (None, 1000):
            raise ModelError(f"pretrained {name} has 1000 classes but the data has {num_classes}; "
                             f"use a checkpoint trained on your classes")
        cfg = timm.models.get_pretrained_cfg(name)
        if cfg is None or not (cfg.hf_hub_id or cfg.url or cfg.file):
            raise ModelError(f"No pretrained weights exist for {name}. Use model.weights=random or a checkpoint path.")
        cached = cached_pretrained_file(name)
        if cached is None:
            raise ModelError(
                f"no local copy of {name}'s pretrained weights in timm's cache (offline: nothing is downloaded); "
                f"download them on a connected machine or pass model.weights=/path/to/checkpoint.pth")
        return create_model(name, str(cached), 1000, exportable)
    elif weights in ("random", "demo"):
        if weights == "demo":
            raise ModelError("model.weights=demo must be resolved by ghostlab.demo.prepare(params) first")
        model = timm.create_model(name, pretrained=False, num_classes=num_classes or 1000, **kwargs)
    else:
        path = Path(weights)
        state = read_checkpoint(path)
        ckpt_classes = checkpoint_num_classes(state)
        model = timm.create_model(name, pretrained=False,
                                  num_classes=num_classes or ckpt_classes or 1000, **kwargs)
        _load_state(model, state, name, path)
    return model.eval()


def load_model(params: Any, num_classes: int | None = None) -> nn.Module:
    """The model the params describe; ``num_classes`` (from the dataset) wins over None."""
    m = params.model
    return create_model(m.name, m.weights, m.num_classes or num_classes)


def deploy_copy(model: nn.Module) -> nn.Module:
    """A copy ready for export: V3 re-parameterized into its single-branch form."""
    import copy

    from timm.utils.model import reparameterize_model

    return reparameterize_model(copy.deepcopy(model).eval(), inplace=True)


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-accumulates for one image (torch FlopCounterMode counts 2 FLOPs per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.zeros(1, 3, input_size, input_size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval()(x)
    return int(counter.get_total_flops() // 2)


def model_facts(model: nn.Module, name: str, input_size: int) -> dict:
    """Params, MACs at ``input_size``, timm's pretrained config, and the paper's figures if known."""
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    facts = {
        "name": name,
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count_macs(model, input_size),
        "input_size": input_size,
        "num_classes": getattr(model, "num_classes", None),
        "pretrained_cfg": {k: cfg.get(k) for k in ("input_size", "interpolation", "crop_pct", "mean", "std")
                           if k in cfg},
    }
    if input_size != 224:  # the canonical deployment input, for comparison with published figures
        facts["macs_224"] = count_macs(model, 224)
    facts["params_without_classifier"] = facts["params"] - _classifier_params(model)
    if name in PAPER_FACTS:
        facts["paper"] = PAPER_FACTS[name]
    if name in CARD_FACTS:
        facts["card"] = CARD_FACTS[name]
        facts["flops_224"] = flop_counts(model, 224)
    return facts


def _classifier_params(model: nn.Module) -> int:
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    return sum(p.numel() for p in head.parameters()) if isinstance(head, nn.Module) else 0


def flop_counts(model: nn.Module, input_size: int) -> dict:
    """FLOPs for one image under two conventions: ``two_x_macs`` (2 per conv/linear MAC, torch's
    FlopCounterMode: what "FLOPs = 2 x MACs" means) and ``every_op`` (that, plus batch norm as 2 per
    element, and 1 per output element of every other arithmetic op: activations, squeeze-excite
    multiplies, residual adds, pooling), to set a card's "GFLOPs" beside."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    class _Elements(TorchDispatchMode):
        """Output elements per aten op (layout ops like cat/view/alias count nothing)."""

        def __init__(self):
            super().__init__()
            self.ops: dict[str, int] = {}

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            first = out[0] if isinstance(out, (tuple, list)) else out
            if isinstance(first, torch.Tensor):
                name = func.overloadpacket.__name__
                self.ops[name] = self.ops.get(name, 0) + first.numel()
            return out

    x = torch.zeros(1, 3, input_size, input_size)
    counter, elements = FlopCounterMode(display=False), _Elements()
    with torch.no_grad():
        with counter:
            model.eval()(x)
        with elements:
            model(x)
    two_x_macs = int(counter.get_total_flops())
    per_element = {"native_batch_norm": 2, "_native_batch_norm_legit_no_training": 2, "relu": 1, "relu_": 1,
                   "hardsigmoid": 1, "hardsigmoid_": 1, "sigmoid": 1, "hardswish": 1, "hardswish_": 1, "mul": 1,
                   "add": 1, "add_": 1, "mean": 1, "avg_pool2d": 1, "adaptive_avg_pool2d": 1}
    extra = sum(n * per_element[op] for op, n in elements.ops.items() if op in per_element)
    return {"two_x_macs": two_x_macs, "every_op": two_x_macs + extra}
