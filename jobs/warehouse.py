"""Parquet tables under one warehouse root, written atomically per partition.

A write goes to ``<root>/_staging/...``, is read back and validated there, and only then
renamed into ``<root>/<table>/ds=<ds>``. A failed or killed task therefore never leaves a
half-written partition visible, and rerunning a stage for the same ds replaces the
partition instead of adding rows to it. Paths go through Hadoop's FileSystem API, so the
same code works for ``file:``, ``hdfs://`` and ``s3a://`` roots.
"""

from __future__ import annotations

import uuid
from typing import Callable

from pyspark.sql import DataFrame, SparkSession

PARTITION_PREFIX = "ds="


class Warehouse:
    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root if "://" in root or root.startswith("file:") else f"file:{root}"
        jvm = spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()

    def _fs(self, path: str):
        return self._Path(path).getFileSystem(self._conf)

    def path(self, table: str, ds: str | None = None) -> str:
        base = f"{self.root}/{table}"
        return base if ds is None else f"{base}/{PARTITION_PREFIX}{ds}"

    def exists(self, table: str, ds: str | None = None) -> bool:
        path = self.path(table, ds)
        return bool(self._fs(path).exists(self._Path(path)))

    def partitions(self, table: str) -> list[str]:
        """The ds values of the table's committed partitions, oldest first."""
        path = self.path(table)
        fs = self._fs(path)
        if not fs.exists(self._Path(path)):
            return []
        names = [status.getPath().getName() for status in fs.listStatus(self._Path(path))]
        return sorted(n[len(PARTITION_PREFIX):] for n in names if n.startswith(PARTITION_PREFIX))

    def latest_ds(self, table: str, at_or_before: str) -> str | None:
        candidates = [ds for ds in self.partitions(table) if ds <= at_or_before]
        return candidates[-1] if candidates else None

    def read(self, table: str, ds: str | None = None) -> DataFrame:
        return self.spark.read.parquet(self.path(table, ds))

    def write(
        self,
        df: DataFrame,
        table: str,
        ds: str | None = None,
        validate: Callable[[DataFrame], None] | None = None,
    ) -> str:
        """Write ``df`` as the table's ``ds`` partition; commit only if ``validate`` passes."""
        target = self.path(table, ds)
        token = uuid.uuid4().hex
        staging = f"{self.root}/_staging/{table}/{PARTITION_PREFIX}{ds or 'all'}-{token}"
        fs = self._fs(target)
        try:
            df.write.mode("overwrite").parquet(staging)
            if validate is not None:
                validate(self.spark.read.parquet(staging))
            self._swap_in(fs, staging, target, f"{self.root}/_trash/{table}-{token}")
        finally:
            fs.delete(self._Path(staging), True)
        return target

    def _swap_in(self, fs, staging: str, target: str, trash: str) -> None:
        target_path = self._Path(target)
        fs.mkdirs(target_path.getParent())
        had_old = fs.exists(target_path)
        if had_old:
            fs.mkdirs(self._Path(trash).getParent())
            if not fs.rename(target_path, self._Path(trash)):
                raise OSError(f"could not move old partition {target} aside")
        if fs.exists(target_path):  # another writer committed meanwhile: rename would nest into it
            raise OSError(f"{target} was committed concurrently by another writer; retry the task")
        if not fs.rename(self._Path(staging), target_path):
            if had_old:  # put the old partition back rather than leave none
                fs.rename(self._Path(trash), target_path)
            raise OSError(f"could not commit {staging} to {target}")
        if had_old:
            fs.delete(self._Path(trash), True)
