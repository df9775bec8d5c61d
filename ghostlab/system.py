"""Facts about the machine and the software a run used (for manifests and benchmarks)."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
PACKAGES = ("ghostlab", "torch", "torchvision", "timm", "onnx", "onnxruntime", "openvino", "nncf", "numpy",
            "papermill", "nbconvert", "nbclient", "ipykernel", "matplotlib", "pillow", "pyyaml", "tqdm")


def cpu_info() -> dict:
    """CPU model, core count, clock and the ISA flags that decide int8 speed.

    ``mhz`` is the first "cpu MHz" line of /proc/cpuinfo: a current reading, not a rated clock;
    ``max_mhz`` is the kernel's cpuinfo_max_freq when cpufreq exposes it (None in most VMs).
    ``vendor``, ``family`` and ``model_number`` name the microarchitecture (bench's roof table).
    """
    model, flags, mhz = platform.processor() or "unknown", set(), None
    ident: dict = {"vendor": None, "family": None, "model_number": None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("unknown", "", platform.processor()):
                model = value.strip()
            elif key == "flags" and not flags:
                flags = set(value.split())
            elif key == "cpu MHz" and mhz is None:
                mhz = float(value)
            elif key == "vendor_id" and ident["vendor"] is None:
                ident["vendor"] = value.strip()
            elif key == "cpu family" and ident["family"] is None and value.strip().isdigit():
                ident["family"] = int(value)
            elif key == "model" and ident["model_number"] is None and value.strip().isdigit():
                ident["model_number"] = int(value)
    except OSError:
        pass
    try:
        max_mhz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text()) / 1e3
    except (OSError, ValueError):
        max_mhz = None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "model": model,
        "machine": platform.machine(),
        "cores": cores,
        "mhz": mhz,
        "max_mhz": max_mhz,
        **ident,
        "flags": {f: f in flags for f in ISA_FLAGS},
        "vnni": bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags),
    }


def package_versions() -> dict:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(path: str | Path) -> dict:
    """The commit of the checkout holding ``path`` and whether it had local changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": dirty if commit else None}


def environment() -> dict:
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "packages": package_versions(),
        "cpu": cpu_info(),
    }
