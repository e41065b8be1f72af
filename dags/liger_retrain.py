"""liger_retrain: rebuild semantic IDs and the recommender, evaluate, promote if better.

ingest -> embed_items -> semantic_ids (--mode train) -> build_sequences -> train -> evaluate

Weekly, or triggered by hand (``airflow dags trigger liger_retrain -c '{"profile": "gpu"}'``).
``evaluate`` scores the newest ``recommender`` version and moves alias ``champion`` to it only
if the gate passes; on success it updates the asset ``liger://models/recommender``.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import chain
from liger_common import RECOMMENDER_ASSET, common_params, liger_dag, spark_stage

DOC = """
### LIGER retrain

Rebuilds everything the nightly DAG reads from the registry, for the run's logical date `ds`:

| task | job | writes |
|---|---|---|
| ingest | `jobs/ingest.py` | `items`, `interactions` (+ quarantine) |
| embed_items | `jobs/embed_items.py` | `item_embeddings` (only new/changed text) |
| semantic_ids | `jobs/semantic_ids.py --mode train` | new MLflow `rqvae` version, `semantic_ids` |
| build_sequences | `jobs/build_sequences.py` | `user_sequences` |
| train | `jobs/train.py` | new MLflow `recommender` version |
| evaluate | `jobs/evaluate.py` | metrics; alias `champion` if the gate passes |

`evaluate` produces the asset `liger://models/recommender`. The nightly DAG stays on its daily
time schedule and always loads the `champion` alias, so a promotion takes effect at the next
nightly run. Params: `profile` (config profile name or YAML path).
"""

with liger_dag(
    "liger_retrain",
    schedule="@weekly",
    description="Weekly LIGER retrain: RQ-VAE semantic IDs, recommender, evaluation and promotion",
    doc_md=DOC,
    params=common_params(),
    dagrun_timeout=timedelta(hours=24),
) as dag:
    chain(
        spark_stage("ingest", "ingest", timeout=timedelta(minutes=30)),
        spark_stage("embed_items", "embed_items", timeout=timedelta(hours=2)),
        spark_stage("semantic_ids", "semantic_ids", timeout=timedelta(hours=3), args=["--mode", "train"]),
        spark_stage("build_sequences", "build_sequences", timeout=timedelta(hours=1)),
        spark_stage("train", "train", timeout=timedelta(hours=8), retries=1),
        spark_stage("evaluate", "evaluate", timeout=timedelta(hours=2), outlets=[RECOMMENDER_ASSET]),
    )
