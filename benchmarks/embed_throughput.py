"""Embedding throughput: the Spark job (mapInPandas) vs raw SentenceTransformer.encode.

Runs ingest + embed into a scratch warehouse, so every item is embedded, then encodes the
same texts with the same model and batch size in this process. Prints both and writes
benchmarks/results/embed_throughput.json.  Usage: python benchmarks/embed_throughput.py [--set k=v ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

from benchmarks.machine import machine_info, write_result
from jobs import embed_items, ingest
from jobs.spark import spark_session
from jobs.warehouse import Warehouse
from liger_core.config import load_settings
from liger_core.embeddings import encode_texts, load_encoder

DS = "2026-01-01"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(None, [f"paths.warehouse={scratch}/warehouse",
                                        f"paths.state={scratch}/state", *args.overrides])
        spark = spark_session(settings)
        ingest.run(settings, DS, spark)
        spark_stats = embed_items.run(settings, DS, spark)
        texts = Warehouse(spark, settings.paths.warehouse_uri).read("items", DS).select("text").toPandas()["text"].tolist()

    encoder = load_encoder(settings.embedding.model, settings.embedding.device)
    started = time.perf_counter()
    encode_texts(encoder, texts, settings.embedding.batch_size)
    raw_seconds = time.perf_counter() - started

    figures = {
        "items": len(texts),
        "spark_items_per_second": round(spark_stats["items_per_second"], 1),
        "spark_seconds": round(spark_stats["embed_seconds"], 1),
        "raw_encode_items_per_second": round(len(texts) / raw_seconds, 1),
        "raw_encode_seconds": round(raw_seconds, 1),
        "batch_size": settings.embedding.batch_size,
        "model": settings.embedding.model,
        "spark_master": settings.spark.master,
    }
    figures["spark_vs_raw"] = round(figures["spark_items_per_second"] / figures["raw_encode_items_per_second"], 3)
    print(f"{'path':<28}{'items/s':>10}{'seconds':>10}")
    print(f"{'Spark mapInPandas job':<28}{figures['spark_items_per_second']:>10}{figures['spark_seconds']:>10}")
    print(f"{'raw encode (1 process)':<28}{figures['raw_encode_items_per_second']:>10}{figures['raw_encode_seconds']:>10}")
    print(f"Spark / raw = {figures['spark_vs_raw']} (target >= 0.9)")
    path = write_result("embed_throughput", {**machine_info(), "figures": figures})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
