"""Machine and version facts stamped into every benchmark result."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("torch", "pyspark", "sentence-transformers", "mlflow", "great-expectations", "pandas", "pyarrow")


VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")  # the extensions that move CPU timings here


def cpu_name(cpuinfo: str | None = None) -> str | None:
    """The CPU model, family/model numbers and vector extensions from /proc/cpuinfo: the same
    2-core "AMD EPYC" is a Zen 3 with AVX2 only on one machine and a Zen 4 with AVX-512 BF16
    on another, and that changes every timing and the embedding precision. None off Linux."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        if not path.exists():
            return None
        cpuinfo = path.read_text()
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            break  # the first processor describes them all
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    extensions = ", ".join(flag for flag in VECTOR_FLAGS if flag in flags) or "no AVX2"
    return (
        f"{fields.get('model name', '?')} (family {fields.get('cpu family', '?')} model {fields.get('model', '?')}; {extensions})"
    )


def machine_info() -> dict:
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        gpu = None
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.machine(),
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "gpu": gpu,
            "python": platform.python_version(),
        },
        "versions": {name: metadata.version(name) for name in PACKAGES},
    }


def previous_result(name: str) -> dict:
    """The committed result ``name`` (empty if none), for a script that updates part of it."""
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_result(name: str, payload: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
