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
