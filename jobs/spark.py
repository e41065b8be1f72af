"""Spark session factory: one place that decides master, timezone and worker Python."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from liger_core.config import Settings


def spark_session(settings: Settings) -> SparkSession:
    """Get or create the session for ``settings``.

    Timestamps are UTC everywhere (``ds`` partitions must not shift with the host's zone),
    and workers run this interpreter so they see the same packages as the driver.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    cfg = settings.spark
    builder = (
        SparkSession.builder.master(cfg.master)
        .appName(cfg.app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.executor.extraJavaOptions", "-Duser.timezone=UTC")
        .config("spark.driver.memory", cfg.driver_memory)
        .config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    )
    for key, value in cfg.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


def threads_per_task(settings: Settings, parallelism: int) -> int:
    """Torch threads for each Python worker: in local mode the tasks share this machine's
    cores (oversubscription slows every task); on a cluster, 0 keeps torch's default."""
    if not settings.spark.master.startswith("local"):
        return 0
    return max(1, (os.cpu_count() or 1) // parallelism)
