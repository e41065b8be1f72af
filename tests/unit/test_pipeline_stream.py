"""`liger run` streams the project's own lines out of Airflow's output, and nothing else."""

from liger_jobs.pipeline import OWN_LINE

HOOK = " [airflow.task.hooks.airflow.providers.apache.spark.hooks.spark_submit.SparkSubmitHook] loc=spark_submit.py:663"


def test_stage_and_progress_lines_stream_without_airflow_decoration():
    done = OWN_LINE.search("2026-12-03 07:49:01 INFO liger: ingest done in 12 s: {'rows': 5}" + HOOK)
    assert done.group(1).split(": {", 1)[0] == "ingest done in 12 s"
    progress = OWN_LINE.search("07:50:00 INFO liger.progress: train 10/100 steps, 1.0 steps/s, ETA 90 s" + HOOK)
    assert progress.group(1) == "train 10/100 steps, 1.0 steps/s, ETA 90 s"
    assert OWN_LINE.search("26/12/03 07:49:01 INFO SparkContext: Running Spark version 4.0.1" + HOOK) is None
    assert OWN_LINE.search("INFO - Marking task as SUCCESS. dag_id=liger_retrain") is None
