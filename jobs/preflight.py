"""In-process checks the DAGs run around their Spark stages: small registry lookups that
decide whether a run has anything to do, or anything to announce. No Spark."""

from __future__ import annotations

from liger_core.platform import tracking
from liger_core.config import Settings, load_settings
from liger_core.platform.model_registry import CHAMPION, RECOMMENDER_MODEL, RETRAIN_HINT, RQVAE_MODEL, has_alias, serving_versions


def serving_models(profile: str, recommender_ref: str) -> tuple[dict[str, str] | None, str | None]:
    """({"recommender": v, "rqvae": v} nightly serves with, None), or (None, why it cannot):
    no champion yet. A pinned version that does not exist is a ConfigError."""
    settings = load_settings(profile)
    tracking.configure(settings)
    if recommender_ref == CHAMPION:
        missing = [name for name in (RQVAE_MODEL, RECOMMENDER_MODEL) if not has_alias(name, CHAMPION)]
        if missing:
            return None, (
                f"no '{CHAMPION}' version of {' or '.join(missing)} in the MLflow registry "
                f"({settings.tracking_uri_shown}): {RETRAIN_HINT}"
            )
    recommender, rqvae = serving_versions(recommender_ref)
    return {"recommender": recommender, "rqvae": rqvae}, None


def promoted_version(profile: str, dag_id: str, run_id: str) -> str | None:
    """The recommender version that this DAG run's evaluate stage promoted, or None."""
    settings: Settings = load_settings(profile)
    run = tracking.stage_run_of(settings, dag_id, run_id, "evaluate")
    if run is None or run.data.params.get("promoted") != "True":
        return None
    return run.data.params.get("evaluated_version")
