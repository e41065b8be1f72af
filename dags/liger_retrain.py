"""liger_retrain: rebuild semantic IDs and the recommender, evaluate, promote if better.

ingest -> embed_items -> semantic_ids (--mode train) -> build_sequences -> train -> evaluate

Sundays at 12:00 UTC, away from nightly's 00:00, or triggered by hand (``airflow dags
trigger liger_retrain -c '{"profile": "gpu"}'``). ``evaluate`` scores the new ``recommender``
version and moves alias ``champion`` to it only if the gate passes; ``announce_promotion``
then updates the asset ``liger://models/recommender`` (extra: the version), and only then.

Isolation from nightly, which may run for the same ds: the new RQ-VAE's IDs go to their own
``semantic_ids/ds=<ds>/rqvae_version=<new>`` partition, which nightly never reads (it reads
the champion's version); the other tables it writes hold the same content whichever DAG
writes them, and the pool ``liger_warehouse`` keeps the two from committing at once.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import chain, task
from airflow.sdk.exceptions import AirflowSkipException
from liger_jobs.dag_factory import RECOMMENDER_ASSET, common_params, liger_dag, spark_stage

RETRAIN_SCHEDULE = "0 12 * * 0"  # Sunday noon UTC: never the same moment as nightly's @daily

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
| announce_promotion | (in-process) | asset event `liger://models/recommender`, only on promotion |

`semantic_ids` writes `semantic_ids/ds=<ds>/rqvae_version=<new version>`; nightly reads the
champion's version only, so a retrain never changes what nightly serves until it is promoted. The nightly DAG stays on its daily
time schedule and always loads the `champion` alias, so a promotion takes effect at the next
nightly run. Params: `profile` (config profile name or YAML path).
"""


@task(task_id="announce_promotion", outlets=[RECOMMENDER_ASSET], retries=0)
def announce_promotion(*, params: dict, dag_run, outlet_events) -> str:
    """The asset event, with the promoted version in its extra; skipped (no event) when the
    gate kept the champion, so a consumer of the asset only wakes for a new champion."""
    from liger_jobs.preflight import promoted_version

    version = promoted_version(params["profile"], dag_run.dag_id, dag_run.run_id)
    if version is None:
        raise AirflowSkipException("evaluate kept the champion: no new recommender to announce")
    outlet_events[RECOMMENDER_ASSET].extra = {"version": version}
    return version


with liger_dag(
    "liger_retrain",
    schedule=RETRAIN_SCHEDULE,
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
        spark_stage("train", "train", timeout=timedelta(hours=8), retries=1, writes_warehouse=False),
        spark_stage("evaluate", "evaluate", timeout=timedelta(hours=2), writes_warehouse=False),
        announce_promotion(),
    )
