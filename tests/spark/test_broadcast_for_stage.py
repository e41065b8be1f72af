"""A stage's broadcast is usable by its tasks and gone when the stage ends, even on error:
in process the session outlives the stage (liger_jobs.in_process)."""

import pytest

from liger_jobs.spark import broadcast_for_stage


def test_tasks_read_the_value_and_it_is_destroyed_after_the_block(spark):
    with broadcast_for_stage(spark, {"offset": 10}) as shared:
        seen = spark.sparkContext.parallelize([1, 2, 3], 2).map(lambda x: x + shared.value["offset"]).collect()
        assert shared._jbroadcast.isValid()
    assert seen == [11, 12, 13]
    assert not shared._jbroadcast.isValid()


def test_destroyed_when_the_stage_fails_inside_the_block(spark):
    with pytest.raises(RuntimeError, match="stage failed"):
        with broadcast_for_stage(spark, b"model bytes") as shared:
            raise RuntimeError("stage failed")
    assert not shared._jbroadcast.isValid()
