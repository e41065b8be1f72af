"""A stage that reuses the process's session (in process, ``liger run``) cannot change the
driver's heap; it says so instead of running silently with another one."""

import logging
from pathlib import Path

from liger_jobs.spark import spark_session
from tests.conftest import make_settings


def test_reusing_the_session_with_another_driver_memory_warns(spark, tmp_path, caplog):
    started_with = spark.sparkContext.getConf().get("spark.driver.memory")
    wanted = "3g" if started_with != "3g" else "5g"
    settings = make_settings(tmp_path, Path("unused"), f"spark.driver_memory={wanted}")
    with caplog.at_level(logging.WARNING, logger="liger.spark"):
        assert spark_session(settings) is spark
    assert [r.getMessage() for r in caplog.records] == [
        f"spark.driver_memory={wanted} is not applied: this process's Spark driver started with "
        f"{started_with} and a JVM keeps its heap size; set LIGER_SPARK_IN_PROCESS=0 to run each "
        "stage in a driver of its own"
    ]


def test_reusing_the_session_with_the_same_driver_memory_is_silent(spark, tmp_path, caplog):
    started_with = spark.sparkContext.getConf().get("spark.driver.memory")
    settings = make_settings(tmp_path, Path("unused"), f"spark.driver_memory={started_with}")
    with caplog.at_level(logging.WARNING, logger="liger.spark"):
        assert spark_session(settings) is spark
    assert caplog.records == []
