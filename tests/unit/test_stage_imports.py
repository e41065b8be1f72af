"""Every Airflow task starts a fresh interpreter (spark-submit of jobs/<stage>.py), so what a
stage imports is paid on every run: the stages that never touch a model must not load torch."""

from __future__ import annotations

import subprocess
import sys

TORCH_FREE_STAGES = ("ingest", "embed_items", "build_sequences", "publish")


def test_stages_without_a_model_import_without_torch() -> None:
    # One interpreter for all (each import costs seconds); the first stage that loads torch is named.
    probe = (
        "import importlib, sys\n"
        f"for stage in {TORCH_FREE_STAGES!r}:\n"
        "    importlib.import_module(f'liger_jobs.{stage}')\n"
        "    if 'torch' in sys.modules:\n"
        "        print(stage)\n"
        "        break\n"
    )
    culprit = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert culprit == "", f"importing jobs/{culprit}.py loads torch"
