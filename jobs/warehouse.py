"""Parquet tables under one warehouse root, written atomically per partition.

A write goes to ``<root>/_staging/...``, is read back and validated there, and only then
swapped into ``<root>/<table>/ds=<ds>`` (``liger_jobs.partition_commit``: atomic on local disks,
two journaled renames on HDFS, not atomic on s3a). A failed or killed task therefore never
leaves a half-written partition visible, and rerunning a stage for the same ds replaces the
partition instead of adding rows to it. Paths go through Hadoop's FileSystem API, so the
same code works for ``file:``, ``hdfs://`` and ``s3a://`` roots.

``semantic_ids`` is partitioned by RQ-VAE version inside each ds
(``semantic_ids/ds=<ds>/rqvae_version=<v>``): the IDs of a retrain's candidate RQ-VAE and
those of the champion live side by side, and each reader names the version its model needs.
"""

from __future__ import annotations

import uuid
from typing import Callable

from pyspark.sql import DataFrame, SparkSession

from liger_jobs.partition_commit import HadoopOps, LocalOps, PartitionCommitter
from liger_core.errors import DataError

PARTITION_PREFIX = "ds="
VERSIONED = {"semantic_ids": "rqvae_version"}  # table -> key of its partitions inside a ds
# table -> the ``liger`` stage that writes it, named in the error of a missing input
WRITER = {
    "items": "ingest",
    "interactions": "ingest",
    "item_embeddings": "embed_items",
    "semantic_ids": "semantic_ids",
    "user_sequences": "build_sequences",
    "recommendations": "recommend",
}


class Warehouse:
    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root if "://" in root or root.startswith("file:") else f"file:{root}"
        jvm = spark.sparkContext._jvm
        self._Path = jvm.org.apache.hadoop.fs.Path
        self._conf = spark.sparkContext._jsc.hadoopConfiguration()
        ops = LocalOps() if self.root.startswith("file:") else HadoopOps(jvm, self._conf)
        self.committer = PartitionCommitter(ops, self.root)

    def _fs(self, path: str):
        return self._Path(path).getFileSystem(self._conf)

    def path(self, table: str, ds: str | None = None, version: str | None = None) -> str:
        base = f"{self.root}/{table}"
        if ds is None:
            return base
        base = f"{base}/{PARTITION_PREFIX}{ds}"
        if (version is None) != (table not in VERSIONED):
            raise ValueError(f"table {table} is {'' if table in VERSIONED else 'not '}partitioned by version")
        return base if version is None else f"{base}/{VERSIONED[table]}={version}"

    def exists(self, table: str, ds: str | None = None, version: str | None = None) -> bool:
        path = self.path(table, ds, version) if version is not None else self._ds_path(table, ds)
        return bool(self._fs(path).exists(self._Path(path)))

    def require(self, ds: str, *tables: str) -> None:
        """A clear error naming the stage to run when an input partition is missing."""
        for table in tables:
            if not self.exists(table, ds):
                raise DataError(f"no {table} partition for ds={ds}; run `liger {WRITER[table]} --ds {ds}` first")

    def _ds_path(self, table: str, ds: str | None) -> str:
        return self.path(table) if ds is None else f"{self.path(table)}/{PARTITION_PREFIX}{ds}"

    def versions(self, table: str, ds: str) -> list[str]:
        """The versions committed inside the table's ``ds`` partition, oldest (lowest) first."""
        path, key = self._ds_path(table, ds), f"{VERSIONED[table]}="
        fs = self._fs(path)
        if not fs.exists(self._Path(path)):
            return []
        names = [status.getPath().getName() for status in fs.listStatus(self._Path(path))]
        found = [n[len(key) :] for n in names if n.startswith(key)]
        return sorted(found, key=lambda v: (len(v), v))  # registry versions are integers

    def partitions(self, table: str) -> list[str]:
        """The ds values of the table's committed partitions, oldest first."""
        path = self.path(table)
        fs = self._fs(path)
        if not fs.exists(self._Path(path)):
            return []
        names = [status.getPath().getName() for status in fs.listStatus(self._Path(path))]
        return sorted(n[len(PARTITION_PREFIX) :] for n in names if n.startswith(PARTITION_PREFIX))

    def nest_unversioned(self, table: str) -> list[str]:
        """Move the files of ds partitions written before ``table`` was partitioned by version
        (Parquet straight under ``ds=``) into their version's folder, so known items keep
        their IDs across the upgrade; returns the ds values moved. A partition mixing
        versions is a DataError (it was never valid)."""
        from liger_core.errors import DataError

        key, moved = VERSIONED[table], []
        for ds in self.partitions(table):
            folder = self._Path(self._ds_path(table, ds))
            fs = self._fs(str(folder))
            files = [s.getPath() for s in fs.listStatus(folder) if s.isFile()]
            data = [str(p) for p in files if p.getName().endswith(".parquet")]
            if not data:
                continue
            versions = sorted({r[0] for r in self.spark.read.parquet(*data).select(key).distinct().collect()})
            if len(versions) != 1:
                raise DataError(f"{table}/ds={ds} mixes {key} {versions}; rerun `liger {table} --ds {ds}`")
            target = self._Path(self.path(table, ds, versions[0]))
            if fs.exists(target):
                raise DataError(f"{table}/ds={ds} holds files beside {target.getName()}; rerun `liger {table} --ds {ds}`")
            fs.mkdirs(target)
            for path in files:
                if not fs.rename(path, self._Path(target, path.getName())):
                    raise OSError(f"could not move {path} into {target}")
            moved.append(ds)
        return moved

    def latest_ds(self, table: str, at_or_before: str) -> str | None:
        candidates = [ds for ds in self.partitions(table) if ds <= at_or_before]
        return candidates[-1] if candidates else None

    def read(self, table: str, ds: str | None = None, version: str | None = None) -> DataFrame:
        return self.spark.read.parquet(self.path(table, ds, version))

    def write(
        self,
        df: DataFrame,
        table: str,
        ds: str | None = None,
        validate: Callable[[DataFrame], None] | None = None,
        version: str | None = None,
    ) -> str:
        """Write ``df`` as the table's ``ds`` (and ``version``) partition; commit only if
        ``validate`` passes."""
        target = self.path(table, ds, version)
        token = uuid.uuid4().hex
        leaf = f"{ds or 'all'}-{version}" if version is not None else ds or "all"
        staging = f"{self.root}/_staging/{table}/{PARTITION_PREFIX}{leaf}-{token}"
        fs = self._fs(target)
        try:
            df.write.mode("overwrite").parquet(staging)
            if validate is not None:
                validate(self.spark.read.parquet(staging))
            self.committer.commit(staging, target)
        finally:
            fs.delete(self._Path(staging), True)
        return target
