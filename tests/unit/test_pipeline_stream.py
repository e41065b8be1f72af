"""`liger run` streams the project's own lines out of Airflow's output, and nothing else."""

from liger_jobs.pipeline import own_message

HOOK = " [airflow.task.hooks.airflow.providers.apache.spark.hooks.spark_submit.SparkSubmitHook] loc=spark_submit.py:663"


def test_stage_and_progress_lines_stream_without_airflow_decoration():
    done = own_message("2026-12-03 07:49:01 INFO liger: ingest done in 12 s: {'rows': 5}" + HOOK)
    assert done.split(": {", 1)[0] == "ingest done in 12 s"
    progress = own_message("07:50:00 INFO liger.progress: train 10/100 steps, 1.0 steps/s, ETA 90 s" + HOOK)
    assert progress == "train 10/100 steps, 1.0 steps/s, ETA 90 s"
    assert own_message("26/12/03 07:49:01 INFO SparkContext: Running Spark version 4.0.1" + HOOK) is None
    assert own_message("INFO - Marking task as SUCCESS. dag_id=liger_retrain") is None


def test_lines_logged_in_the_task_process_stream_too():
    """A stage run in-process logs through Airflow's structured formatter."""
    line = "2026-12-07T20:15:16.21Z [info     ] build_sequences started for ds=2026-02-01 [liger] loc=common.py:107"
    assert own_message(line) == "build_sequences started for ds=2026-02-01"
    line = "2026-12-07T20:15:21.01Z [warning  ] low coverage   [liger.evaluate] loc=evaluate.py:83"
    assert own_message(line) == "low coverage"
    assert (
        own_message(
            "2026-12-07T20:14:42.97Z [info     ] [DAG TEST] starting task_id=ingest [airflow.sdk.definitions.dag] loc=dag.py:1501"
        )
        is None
    )
    assert (
        own_message("2026-12-07T20:14:49.27Z [info     ] Skipping registering [great_expectations._docs_decorators] loc=x.py:1")
        is None
    )
