"""ghostlab: take a GhostNet to int8 ONNX and report on it (see DESIGN.md)."""

from .config import Params, load_params
from .errors import GhostlabError
from .runfolder import start

__all__ = ["GhostlabError", "Params", "load_params", "start"]
__version__ = "0.1.0"
