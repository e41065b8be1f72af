"""Embedding throughput: the Spark job (mapInPandas, the configured precision) vs raw
float32 SentenceTransformer.encode, and how far its vectors are from float32 ones.

Runs ingest + embed into a scratch warehouse, so every item is embedded, then encodes the
same texts with the same model and batch size in this process with a plain float32
``SentenceTransformer.encode`` call (the baseline, target: the job at >= 2x) and compares the job's vectors with them. Prints both
and writes benchmarks/results/embed_throughput.json.
Usage: python -m benchmarks.embed_throughput [--set k=v ...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import torch

from benchmarks.machine import machine_info, write_result
from liger_jobs import embed_items, ingest
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse
from liger_core.config import load_settings
from liger_core.data.embeddings import load_encoder
from liger_core.ids.rqvae import train_rqvae

DS = "2026-01-01"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        settings = load_settings(None, [f"paths.warehouse={scratch}/warehouse", f"paths.state={scratch}/state", *args.overrides])
        spark = spark_session(settings)
        ingest.run(settings, DS, spark)
        spark_stats = embed_items.run(settings, DS, spark)
        warehouse = Warehouse(spark, settings.paths.warehouse_uri)
        joined = (
            warehouse.read("items", DS)
            .select("item_idx", "text")
            .join(warehouse.read("item_embeddings", DS).select("item_idx", "embedding"), "item_idx")
            .toPandas()
        )
        texts = joined["text"].tolist()

    encoder = load_encoder(settings.embedding.model, settings.embedding.device)
    started = time.perf_counter()
    exact = encoder.encode(
        texts, batch_size=settings.embedding.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )  # plain float32, as a user would
    raw_seconds = time.perf_counter() - started
    job_vectors = np.stack(joined["embedding"].to_numpy())
    cosine = (job_vectors * exact).sum(1)
    # What the precision does to semantic IDs: one RQ-VAE, trained on the float32 vectors,
    # assigns codes to both sets.
    rqvae = train_rqvae(exact, settings.rqvae).model
    codes = [rqvae.encode_codes(torch.from_numpy(v)).numpy() for v in (exact, job_vectors)]
    changed = codes[0] != codes[1]

    figures = {
        "items": len(texts),
        "spark_items_per_second": round(spark_stats["items_per_second"], 1),
        "spark_seconds": round(spark_stats["embed_seconds"], 1),
        "raw_encode_items_per_second": round(len(texts) / raw_seconds, 1),
        "raw_encode_seconds": round(raw_seconds, 1),
        "batch_size": settings.embedding.batch_size,
        "model": settings.embedding.model,
        "precision": settings.embedding.precision,
        "job_bfloat16": bool(spark_stats["bfloat16"]),
        "min_cosine_to_float32": round(float(cosine.min()), 6),
        "mean_cosine_to_float32": round(float(cosine.mean()), 6),
        "rqvae_codes_changed_share": round(float(changed.any(1).mean()), 4),
        "rqvae_codes_changed_share_per_level": [round(float(x), 4) for x in changed.mean(0)],
        "spark_master": settings.spark.master,
    }
    figures["spark_vs_raw"] = round(figures["spark_items_per_second"] / figures["raw_encode_items_per_second"], 3)
    print(f"{'path':<28}{'items/s':>10}{'seconds':>10}")
    print(f"{'Spark mapInPandas job':<28}{figures['spark_items_per_second']:>10}{figures['spark_seconds']:>10}")
    print(f"{'raw float32 encode':<28}{figures['raw_encode_items_per_second']:>10}{figures['raw_encode_seconds']:>10}")
    print(
        f"Spark / raw = {figures['spark_vs_raw']} (target >= 2); job vectors vs float32: "
        f"min cosine {figures['min_cosine_to_float32']} (target >= 0.999); items whose RQ-VAE codes change: "
        f"{figures['rqvae_codes_changed_share']:.2%}"
    )
    path = write_result("embed_throughput", {**machine_info(), "figures": figures})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
