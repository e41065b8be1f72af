"""The Airflow objects the DAGs expect, created at setup rather than at DAG parse time.

The ``liger_spark`` connection and the ``liger_warehouse`` pool live in Airflow's metastore,
where ``airflow connections list`` / ``airflow pools list`` and the UI show them. ``liger
run``, ``scripts/airflow_ui.sh`` and the compose ``airflow-init`` service call ``ensure``;
an existing connection (or an ``AIRFLOW_CONN_LIGER_SPARK`` set by a deployment) is kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Mapping

from liger_core.errors import LigerError

SPARK_CONN_ID = "liger_spark"
LOCAL_SPARK_CONN = {"conn_type": "spark", "host": "local[*]", "extra": {"deploy-mode": "client"}}
# One slot: warehouse writers of the two DAGs never commit the same partition at once.
WAREHOUSE_POOL = "liger_warehouse"
WAREHOUSE_POOL_SLOTS = 1

Runner = Callable[[list[str]], subprocess.CompletedProcess]


def airflow_runner(env: Mapping[str, str]) -> Runner:
    """Run the ``airflow`` CLI beside this interpreter with ``env``, capturing its output."""
    binary = str(Path(sys.executable).with_name("airflow"))
    return lambda args: subprocess.run([binary, *args], env=dict(env), capture_output=True, text=True)


def ensure(run: Runner) -> list[str]:
    """Create what is missing; returns what was created (idempotent)."""
    created = []
    if run(["connections", "get", SPARK_CONN_ID, "-o", "json"]).returncode != 0:
        _check(run(["connections", "add", SPARK_CONN_ID, "--conn-json", json.dumps(LOCAL_SPARK_CONN)]))
        created.append(f"connection {SPARK_CONN_ID}")
    _check(
        run(
            [
                "pools",
                "set",
                WAREHOUSE_POOL,
                str(WAREHOUSE_POOL_SLOTS),
                "tasks that write the LIGER warehouse (shared by liger_retrain and liger_nightly)",
            ]
        )
    )
    return created


def _check(done: subprocess.CompletedProcess) -> None:
    if done.returncode != 0:
        raise LigerError(
            f"`airflow {' '.join(done.args[1:])}` failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()[-500:]}"
        )


def main() -> int:
    """``python -m liger_jobs.airflow_objects``: for the UI script and compose's airflow-init."""
    for created in ensure(airflow_runner(os.environ)):
        print(f"created {created}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
