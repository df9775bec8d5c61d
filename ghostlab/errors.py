"""What reaches the user's terminal: one exception hierarchy for everything a user can get
wrong, and ``say`` for progress lines.

Each message is one line that says what is wrong and what to do; the CLI prints it
without a traceback and exits with ``exit_code``.
"""

import sys


def say(msg: str) -> None:
    """One progress line on stderr (stdout stays for results)."""
    print(msg, file=sys.stderr, flush=True)


class GhostlabError(Exception):
    """Base class: a problem the user can fix. ``str(err)`` is the one-line message."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class ConfigError(GhostlabError):
    """Params file missing, unreadable, unknown key, wrong type, bad value."""

    exit_code = 2


class DataError(GhostlabError):
    """Dataset layout, label files and images."""


class ModelError(GhostlabError):
    """Model names, weights sources and checkpoints."""


class ExportError(GhostlabError):
    """ONNX export and checks."""


class CalibrationError(GhostlabError):
    """Int8 quantization."""


class RunError(GhostlabError):
    """The runner: output folders, notebooks, kernels."""
