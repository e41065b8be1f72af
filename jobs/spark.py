"""Spark session factory: one place that decides master, timezone and worker Python."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from typing import Iterator, TypeVar

from pyspark import Broadcast
from pyspark.sql import SparkSession

from liger_jobs.spark_env import driver_address_env
from liger_core.config import Settings


# spark-submit starts the driver JVM itself and hands this Python its gateway: master,
# driver memory and driver JVM options were fixed on its command line (from the Airflow
# connection), and setting them again in the builder would override or silently miss them.
SPARK_SUBMIT_ENV = "PYSPARK_GATEWAY_PORT"
UTC_JAVA_OPTIONS = "-Duser.timezone=UTC"
T = TypeVar("T")
log = logging.getLogger("liger.spark")


def launched_by_spark_submit() -> bool:
    return SPARK_SUBMIT_ENV in os.environ


def spark_session(settings: Settings) -> SparkSession:
    """Get or create the session for ``settings``.

    Timestamps are UTC everywhere (``ds`` partitions must not shift with the host's zone),
    and workers run this interpreter so they see the same packages as the driver. Master,
    driver memory and driver JVM options come from the config only when no spark-submit
    launched the stage; ``SPARK_LOCAL_IP`` defaults to loopback for a local master only, so
    a driver on a cluster advertises its real address.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    cfg = settings.spark
    builder = (
        SparkSession.builder.appName(cfg.app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.executor.extraJavaOptions", UTC_JAVA_OPTIONS)
        .config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    )
    if not launched_by_spark_submit():
        os.environ.update(driver_address_env(cfg.master, os.environ))
        builder = (
            builder.master(cfg.master)
            .config("spark.driver.memory", cfg.driver_memory)
            .config("spark.driver.extraJavaOptions", UTC_JAVA_OPTIONS)
        )
    for key, value in cfg.conf.items():
        builder = builder.config(key, value)
    reused = SparkSession.getActiveSession() is not None
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    if reused and not launched_by_spark_submit():
        started_with = spark.sparkContext.getConf().get("spark.driver.memory")
        if started_with != cfg.driver_memory:
            log.warning(driver_memory_not_applied(cfg.driver_memory, started_with))
    return spark


def driver_memory_not_applied(wanted: str, started_with: str | None) -> str:
    """Why a stage that reuses this process's session (``liger_jobs.in_process``) runs with
    another driver heap than its config asks: the JVM fixed it when it started."""
    return (
        f"spark.driver_memory={wanted} is not applied: this process's Spark driver started with "
        f"{started_with or 'the JVM default'} and a JVM keeps its heap size; set "
        f"LIGER_SPARK_IN_PROCESS=0 to run each stage in a driver of its own"
    )


def threads_per_task(spark: SparkSession, parallelism: int) -> int:
    """Torch threads for each Python worker: in local mode the tasks share this machine's
    cores (oversubscription slows every task); on a cluster, 0 keeps torch's default."""
    if not spark.sparkContext.master.startswith("local"):
        return 0
    return max(1, (os.cpu_count() or 1) // parallelism)


@contextmanager
def broadcast_for_stage(spark: SparkSession, value: T) -> Iterator[Broadcast[T]]:
    """Broadcast ``value`` and destroy it on exit, error or not: in process
    (``liger_jobs.in_process``) the session outlives the stage, and a model left behind
    would stay in the driver and every executor for the rest of the DAG."""
    shared = spark.sparkContext.broadcast(value)
    try:
        yield shared
    finally:
        shared.destroy()
