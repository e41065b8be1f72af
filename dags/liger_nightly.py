"""liger_nightly: top-K recommendations for every user with the champion models.

champion_ready -> ingest -> embed_items -> semantic_ids (--mode assign) -> build_sequences
-> recommend -> publish

Daily. Params (``airflow dags trigger liger_nightly -c '{"k": 50}'``): ``profile``, ``k`` and
``recommender_model`` (registry version number or alias, default ``champion``). The RQ-VAE
version follows from the recommender version (the one it was trained on): ``champion_ready``
resolves both in one registry read and every later task uses that pair, so a promotion that
lands mid-run cannot make ID assignment and serving disagree.
"""

from __future__ import annotations

from datetime import timedelta

import logging

from airflow.sdk import Param, chain, task
from liger_jobs.dag_factory import (
    RECOMMEND_K_KEY,
    RECOMMENDER_MODEL_KEY,
    RQVAE_MODEL_KEY,
    common_params,
    liger_dag,
    override,
    spark_stage,
)


def serving(model: str) -> str:
    """The template of the ``model`` version champion_ready resolved for this run."""
    return f"{{{{ ti.xcom_pull(task_ids='champion_ready')['{model}'] }}}}"


DOC = """
### LIGER nightly

For the run's logical date `ds`:

| task | job | writes |
|---|---|---|
| champion_ready | (in-process) | this run's recommender and RQ-VAE versions (XCom); no champions: skipped, with the reason |
| ingest | `jobs/ingest.py` | `items`, `interactions` (+ quarantine) |
| embed_items | `jobs/embed_items.py` | `item_embeddings` (only new/changed text) |
| semantic_ids | `jobs/semantic_ids.py --mode assign` | `semantic_ids` (known items keep theirs) |
| build_sequences | `jobs/build_sequences.py` | `user_sequences` |
| recommend | `jobs/recommend.py` | `recommendations/ds=...` (validated) |
| publish | `jobs/publish.py` | export to PostgreSQL when configured |

Time-scheduled on purpose: it loads the registry alias `champion` (updated by `liger_retrain`'s
`evaluate`, which produces the asset `liger://models/recommender`), so it never waits on a
retrain. Pin a version with the `recommender_model` param to roll back; its RQ-VAE comes with it.
"""

log = logging.getLogger("liger.airflow")


@task.short_circuit(task_id="champion_ready", retries=0)
def champion_ready(*, params: dict, ds: str | None = None) -> dict[str, str] | None:
    """Before any stage: the versions this run serves with, from one registry read. A first
    run before any promotion has nothing to serve, which is one clear message and a skipped
    run, not a failure retried after ingest and embed."""
    from liger_jobs.preflight import serving_models

    versions, reason = serving_models(params["profile"], params["recommender_model"])
    if reason:
        log.warning("liger_nightly for ds=%s has nothing to serve: %s", ds, reason)
    return versions


PARAMS = common_params(
    k=Param(20, type="integer", minimum=1, description="recommendations per user"),
    recommender_model=Param(
        "champion", type="string", minLength=1, description="recommender registry version or alias used to recommend"
    ),
)

with liger_dag(
    "liger_nightly",
    schedule="@daily",
    description="Nightly LIGER recommendations with the champion models",
    doc_md=DOC,
    params=PARAMS,
    dagrun_timeout=timedelta(hours=12),
) as dag:
    chain(
        champion_ready(),
        spark_stage("ingest", "ingest", timeout=timedelta(minutes=30)),
        spark_stage("embed_items", "embed_items", timeout=timedelta(hours=1)),
        spark_stage(
            "semantic_ids",
            "semantic_ids",
            timeout=timedelta(hours=1),
            args=["--mode", "assign", *override(RQVAE_MODEL_KEY, serving("rqvae"))],
        ),
        spark_stage("build_sequences", "build_sequences", timeout=timedelta(hours=1)),
        spark_stage(
            "recommend",
            "recommend",
            timeout=timedelta(hours=3),
            args=[*override(RECOMMEND_K_KEY, "{{ params.k }}"), *override(RECOMMENDER_MODEL_KEY, serving("recommender"))],
        ),
        spark_stage("publish", "publish", timeout=timedelta(minutes=30), writes_warehouse=False),
    )
