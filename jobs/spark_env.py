"""The one rule for a Spark driver's bind address, shared by the session builder (a stage
run by hand or by ``liger``) and the Airflow operator (a stage under spark-submit). Kept
free of pyspark so DAG parsing can import it."""

from __future__ import annotations

from typing import Mapping

LOOPBACK = "127.0.0.1"


def driver_address_env(master: str, environ: Mapping[str, str]) -> dict[str, str]:
    """``SPARK_LOCAL_IP`` to add for ``master``: loopback for a local master when nothing set
    it (a sandbox's hostname may not resolve), nothing otherwise, since a driver on a
    cluster must advertise an address its executors can reach."""
    if master.startswith("local") and not environ.get("SPARK_LOCAL_IP"):
        return {"SPARK_LOCAL_IP": LOOPBACK}
    return {}
