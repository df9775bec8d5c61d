"""What the kit knows about GhostNet, in one place: the parts of the network (roles of ONNX
nodes and torch modules) and their colours, the Ghost module types of V1/V2/V3, and the
published figures (the paper and timm's results table) that our numbers are shown beside.

Other modules import these; none keeps its own copy.
"""

from __future__ import annotations

import re

# ---------------------------------------------------------------- roles

ROLES = ("stem", "primary conv", "cheap depthwise op", "ghost concat", "dfc attention", "downsample dw",
         "squeeze-excite", "shortcut", "head", "other")
# (role, pattern on the node name): first match wins. Node names are timm's module paths as the
# TorchScript exporter writes them, e.g. /blocks/blocks.3/blocks.3.0/ghost1/cheap_operation/cheap_operation.0/Conv
_ROLE_RULES = (
    ("squeeze-excite", r"/se/"),
    ("dfc attention", r"/short_conv/|/gate_fn/|/ghost\d/(AveragePool|Resize|Mul)\w*$"),
    ("shortcut", r"/shortcut/|/blocks\.\d+\.\d+/Add\w*$"),
    ("cheap depthwise op", r"/cheap_operation/"),
    ("primary conv", r"/primary_conv/"),
    ("ghost concat", r"/ghost\d/(Concat|Slice)\w*$"),
    ("downsample dw", r"/conv_dw/|/bn_dw/"),
    ("stem", r"^/?(conv_stem|bn1|act1)/"),
    ("head", r"conv_head|/classifier/|/global_pool/|/flatten/|^/?act2/|/blocks\.\d+\.\d+/(conv|bn1)/"),
)


def ghostnet_role(node_name: str) -> str:
    """The GhostNet part a node belongs to, from its name (one of ``ROLES``)."""
    for role, pattern in _ROLE_RULES:
        if re.search(pattern, node_name):
            return role
    return "other"


# One colour per role, the same in every figure.
ROLE_COLORS = {
    "stem": "#8c564b", "primary conv": "#1f77b4", "cheap depthwise op": "#ff7f0e", "ghost concat": "#bcbd22",
    "dfc attention": "#e377c2", "downsample dw": "#9467bd", "squeeze-excite": "#2ca02c", "shortcut": "#d62728",
    "head": "#17becf", "other": "#7f7f7f",
}

# ---------------------------------------------------------------- modules

# timm's Ghost module classes: V1 (ghostnet_*), V2 (ghostnetv2_*, DFC attention), V3 (ghostnetv3_*,
# re-parameterizable branches). Feature-map capture hooks these by class name.
GHOST_MODULE_TYPES = ("GhostModule", "GhostModuleV2", "GhostModuleV3")


def is_ghost_module(module) -> bool:
    return type(module).__name__ in GHOST_MODULE_TYPES


# ---------------------------------------------------------------- published figures

# The paper's figures for the reference model (GhostNet 1.0x): 5.2M params, 141M MACs at 224.
PAPER_FACTS = {"ghostnet_100": {"params": 5.2e6, "macs": 141e6, "top1": 73.9, "top5": 91.4}}

# The seed's model card for GhostNet 1.0x, as it states them: "3.9 M params, 0.342 GFLOPs" at 224.
# 3.9 M is ghostnet_100's parameters without its 1280 x 1000 classifier (3,901,508 of 5,182,508).
# 0.342 G follows from no counting convention we tried on ghostnet_100 at 224: 2 x conv + linear MACs
# (torch FlopCounterMode) is 0.282 G; adding every other op (batch norm as 2 FLOPs per element,
# activations, squeeze-excite multiplies, residual adds, pooling) 0.293 G; MACs alone 0.141 G; 2 x MACs
# at 240 px 0.337 G. The nearest is ghostnetv2_100's 2 x MACs, 0.334 G: another network. The card's
# figure is shown as stated, beside ours, marked not reproducible (export.model_card_rows).
CARD_FACTS = {"ghostnet_100": {"source": "seed model card", "params": 3.9e6, "gflops": 0.342,
                               "params_counted": "without the classifier", "gflops_reproduced": False}}

# Published GhostNet 1.0x ImageNet figures, and the preprocessing that produced each.
REFERENCE_ROWS = {
    "ghostnet_100": [
        {"source": "paper (Han et al., CVPR 2020)", "top1": 73.9, "top5": 91.4,
         "preprocessing": "as published (224 px centre crop)"},
        {"source": "timm results table (today)", "top1": 73.958, "top5": 91.542,
         "preprocessing": "resize 256 bicubic, centre crop 224 (crop_pct 0.875)",
         "recipe": {"resize": 256, "crop": 224, "interpolation": "bicubic"}},
        {"source": "timm, older figure (deployment recipe)", "top1": 73.974, "top5": 91.460,
         "preprocessing": "resize 256 bilinear, centre crop 224 (crop_pct 0.875)",
         "recipe": {"resize": 256, "crop": 224, "interpolation": "bilinear"}},
    ],
}


