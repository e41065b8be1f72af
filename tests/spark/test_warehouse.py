import pytest

from liger_jobs.warehouse import Warehouse
from liger_core.errors import ValidationFailed

pytestmark = pytest.mark.spark


def rows(warehouse, table, ds):
    return sorted(tuple(r) for r in warehouse.read(table, ds).collect())


def test_rewrite_replaces_partition_atomically(spark, tmp_path):
    warehouse = Warehouse(spark, str(tmp_path / "wh"))
    warehouse.write(spark.createDataFrame([(1, "a"), (2, "b")], "k long, v string"), "t", "2026-01-01")
    warehouse.write(spark.createDataFrame([(3, "c")], "k long, v string"), "t", "2026-01-01")
    assert rows(warehouse, "t", "2026-01-01") == [(3, "c")]  # replaced, not appended
    assert warehouse.partitions("t") == ["2026-01-01"]
    assert not list((tmp_path / "wh" / "_staging").rglob("*.parquet"))
    assert not (tmp_path / "wh" / "_trash").exists() or not any((tmp_path / "wh" / "_trash").iterdir())


def test_failed_validation_commits_nothing(spark, tmp_path):
    warehouse = Warehouse(spark, str(tmp_path / "wh"))
    good = spark.createDataFrame([(1, "a")], "k long, v string")
    warehouse.write(good, "t", "2026-01-01")

    seen = []

    def refuse(staged):
        seen.append(staged.count())  # the validator sees exactly what would be committed
        raise ValidationFailed("no")

    with pytest.raises(ValidationFailed):
        warehouse.write(spark.createDataFrame([(1, "x"), (2, "y")], "k long, v string"), "t", "2026-01-01", validate=refuse)
    with pytest.raises(ValidationFailed):
        warehouse.write(good, "t", "2026-01-02", validate=refuse)
    assert seen == [2, 1]
    assert rows(warehouse, "t", "2026-01-01") == [(1, "a")]
    assert warehouse.partitions("t") == ["2026-01-01"]  # no half-made 2026-01-02
    assert not list((tmp_path / "wh" / "_staging").rglob("*.parquet"))


def test_latest_partition_lookup(spark, tmp_path):
    warehouse = Warehouse(spark, str(tmp_path / "wh"))
    df = spark.createDataFrame([(1,)], "k long")
    for ds in ("2026-01-03", "2026-01-01"):
        warehouse.write(df, "t", ds)
    assert warehouse.partitions("t") == ["2026-01-01", "2026-01-03"]
    assert warehouse.latest_ds("t", "2026-01-02") == "2026-01-01"
    assert warehouse.latest_ds("t", "2026-01-03") == "2026-01-03"
    assert warehouse.latest_ds("t", "2025-12-31") is None
    assert warehouse.latest_ds("missing", "2026-01-03") is None


def test_task_dying_mid_write_leaves_old_partition_and_retry_commits(spark, tmp_path):
    from pyspark.sql import functions as F

    warehouse = Warehouse(spark, str(tmp_path / "wh"))
    warehouse.write(spark.createDataFrame([(1,)], "k long"), "t", "2026-01-01")

    @F.udf("long")
    def explode_on_three(k):
        if k == 3:
            raise RuntimeError("executor lost mid-write")
        return k

    rows = spark.range(0, 6, numPartitions=3).select(explode_on_three("id").alias("k"))
    with pytest.raises(Exception, match="executor lost mid-write"):
        warehouse.write(rows, "t", "2026-01-01")
    assert sorted(warehouse.read("t", "2026-01-01").toPandas()["k"]) == [1]  # untouched, not half-new

    warehouse.write(spark.range(0, 6).withColumnRenamed("id", "k"), "t", "2026-01-01")  # the retry
    assert sorted(warehouse.read("t", "2026-01-01").toPandas()["k"]) == [0, 1, 2, 3, 4, 5]


def test_versioned_partitions_and_the_upgrade_of_an_older_layout(spark, tmp_path):
    warehouse = Warehouse(spark, str(tmp_path / "wh"))
    ids = "item_idx long, rqvae_version string"
    warehouse.write(spark.createDataFrame([(1, "2")], ids), "semantic_ids", "2026-01-01", version="2")
    warehouse.write(spark.createDataFrame([(1, "10")], ids), "semantic_ids", "2026-01-01", version="10")
    assert warehouse.versions("semantic_ids", "2026-01-01") == ["2", "10"]  # numeric order
    assert [tuple(r) for r in warehouse.read("semantic_ids", "2026-01-01", "10").collect()] == [(1, "10")]
    with pytest.raises(ValueError, match="partitioned by version"):
        warehouse.read("semantic_ids", "2026-01-01")
    # a partition written before the version folders: its files move under their version
    old = tmp_path / "wh" / "semantic_ids" / "ds=2025-12-31"
    spark.createDataFrame([(7, "1"), (8, "1")], ids).write.parquet(str(old))
    assert warehouse.nest_unversioned("semantic_ids") == ["2025-12-31"]
    assert warehouse.versions("semantic_ids", "2025-12-31") == ["1"]
    assert sorted(r.item_idx for r in warehouse.read("semantic_ids", "2025-12-31", "1").collect()) == [7, 8]
    assert not [p for p in old.iterdir() if p.is_file()]
    assert warehouse.nest_unversioned("semantic_ids") == []  # idempotent


def test_hadoop_filesystems_commit_through_the_journal_and_lock(spark, tmp_path):
    """The path HDFS takes (no atomic exchange): exclusive create, journal, two renames."""
    from liger_jobs.partition_commit import HadoopOps, PartitionCommitter

    ops = HadoopOps(spark.sparkContext._jvm, spark.sparkContext._jsc.hadoopConfiguration())
    root = f"file:{tmp_path}"
    ops.mkdirs(f"{root}/_locks")
    assert ops.create_exclusive(f"{root}/_locks/x.json", '{"pid": 1}')
    assert not ops.create_exclusive(f"{root}/_locks/x.json", "{}")  # the lock is taken
    assert ops.read_text(f"{root}/_locks/x.json") == '{"pid": 1}'
    ops.delete(f"{root}/_locks/x.json")

    committer = PartitionCommitter(ops, root)
    for value in ("old", "new"):
        staging = f"{root}/_staging/t/ds=1-{value}"
        spark.createDataFrame([(value,)], "v string").write.parquet(staging)
        committer.commit(staging, f"{root}/t/ds=1")
    assert [r.v for r in spark.read.parquet(f"{root}/t/ds=1").collect()] == ["new"]
    assert ops.list_names(f"{root}/_locks") == [] and ops.list_names(f"{root}/_trash") == []
