"""MLflow Model Registry: the ``rqvae`` and ``recommender`` models.

Every version is self-contained (weights, config, and for the recommender the catalog
snapshot) and is a pyfunc model, so ``mlflow.pyfunc.load_model("models:/rqvae@champion")``
maps embeddings to codes, and ``models:/recommender@champion`` maps histories to top-K
items, anywhere MLflow runs.

The pipeline itself never loads a version that way: pyfunc loading unpickles the python
model and imports the code shipped with it, so whoever can register a version could run
code inside the jobs. ``load_recommender`` / ``load_rqvae`` download the version's files and
read only tensors (``torch.load(weights_only=True)``), arrays (no pickle) and JSON.

A recommender version carries the RQ-VAE version it was trained on as the tag
``rqvae_version``; ``serving_versions`` reads both from the one recommender version, and
``promote`` moves both ``champion`` aliases or neither.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping

import mlflow
import yaml
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel
from mlflow.tracking import MlflowClient

from liger_core.config import RQVAEConfig
from liger_core.errors import ConfigError, DataError
from liger_core.platform.pyfunc_models import (
    RECOMMENDER_SIGNATURE,
    RQVAE_SIGNATURE,
    RecommenderPyfunc,
    RQVAEPyfunc,
    recommender_example,
    rqvae_example,
)
from liger_core.serving.recommender import Recommender
from liger_core.ids.rqvae import RQVAE
from liger_core.ids.rqvae_io import load_rqvae_file, save_rqvae
from liger_core.platform.tracking import metric_key

RQVAE_MODEL = "rqvae"
RECOMMENDER_MODEL = "recommender"
PIP_REQUIREMENTS = ["torch==2.13.0", "pandas", "numpy", "pydantic>=2.7,<3", "pyyaml>=6.0"]
LIBRARY = str(Path(__file__).resolve().parents[1])  # all of liger_core, shipped with each model (code_paths)
CHAMPION = "champion"
CHALLENGER = "challenger"
RQVAE_VERSION_TAG = "rqvae_version"
TRAINED_BY = {RQVAE_MODEL: "liger semantic_ids --mode train", RECOMMENDER_MODEL: "liger train"}
RETRAIN_HINT = "run `airflow dags trigger liger_retrain` (or `liger run`) until a version passes the promotion gate"


def _register(
    name: str,
    python_model: PythonModel,
    artifacts: dict[str, str],
    signature,
    example,
    description: str,
    tags: Mapping[str, object],
) -> str:
    """Log, register, and describe a new version (signature + example: params are served)."""
    info = mlflow.pyfunc.log_model(
        name=name,
        python_model=python_model,
        artifacts=artifacts,
        registered_model_name=name,
        pip_requirements=PIP_REQUIREMENTS,
        code_paths=[LIBRARY],
        signature=signature,
        input_example=example,
    )
    version = str(info.registered_model_version)
    client = MlflowClient()
    client.update_model_version(name, version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))
    return version


def register_rqvae(model: RQVAE, cfg: RQVAEConfig) -> str:
    """Log the model in the active run and register a new version; returns the version.

    The first version becomes ``champion``; later ones are ``challenger`` until promoted
    together with a recommender trained on their IDs (nightly assignment follows champion).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = save_rqvae(model, cfg, Path(tmp) / "rqvae.pt")
        shape = f"{cfg.levels} levels x {cfg.codebook_size} codes"
        version = _register(
            RQVAE_MODEL,
            RQVAEPyfunc(),
            {"rqvae": str(path)},
            RQVAE_SIGNATURE,
            rqvae_example(int(model.shift.shape[0])),
            f"RQ-VAE semantic-ID encoder ({shape}): text embedding in, codes out.",
            {"levels": cfg.levels, "codebook_size": cfg.codebook_size},
        )
    client = MlflowClient()
    alias = CHALLENGER if has_alias(RQVAE_MODEL, CHAMPION) else CHAMPION
    client.set_registered_model_alias(RQVAE_MODEL, alias, version)
    return version


def register_recommender(recommender: Recommender) -> str:
    """Register a new ``recommender`` version as ``challenger``; evaluation decides promotion."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = recommender.save(Path(tmp) / "bundle")
        meta = recommender.meta
        tags = {
            RQVAE_VERSION_TAG: meta["rqvae_version"],
            "trained_ds": meta.get("trained_ds", ""),
            "mode": recommender.model_config.mode,
            "in_set_items": int(recommender.in_set.sum()),
            "catalog_items": len(recommender.in_set),
        }
        version = _register(
            RECOMMENDER_MODEL,
            RecommenderPyfunc(),
            {"bundle": str(folder)},
            RECOMMENDER_SIGNATURE,
            recommender_example(recommender),
            f"LIGER {recommender.model_config.mode} recommender trained for ds={tags['trained_ds']} "
            f"on the IDs of rqvae v{meta['rqvae_version']}: item_idx histories in, top-k out "
            f"(params k, exclude_history).",
            tags,
        )
    MlflowClient().set_registered_model_alias(RECOMMENDER_MODEL, CHALLENGER, version)
    return version


def _artifact(name: str, version: str, key: str, into: Path) -> Path:
    """Download a registered version's files and return its artifact ``key``; nothing is
    unpickled or imported."""
    folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(into)))
    spec = yaml.safe_load((folder / "MLmodel").read_text()) or {}
    path = spec.get("flavors", {}).get("python_function", {}).get("artifacts", {}).get(key, {}).get("path")
    if path is None or not (folder / path).exists():
        raise DataError(f"model '{name}' v{version} has no '{key}' artifact: it was not registered by this pipeline")
    return folder / path


def load_recommender(ref: str) -> tuple[Recommender, str]:
    """The recommender bundle of ``ref`` (version or alias), loaded without running its code."""
    version = resolve_version(RECOMMENDER_MODEL, ref)
    with tempfile.TemporaryDirectory() as tmp:
        return Recommender.load(_artifact(RECOMMENDER_MODEL, version, "bundle", Path(tmp))), version


def has_alias(name: str, alias: str) -> bool:
    return _alias_version(name, alias) is not None


def resolve_version(name: str, ref: str) -> str:
    """``ref`` is a version number or an alias; a clear error when neither exists."""
    client = MlflowClient()
    try:
        if ref.isdigit():
            return str(client.get_model_version(name, ref).version)
        return str(client.get_model_version_by_alias(name, ref).version)
    except MlflowException:
        raise ConfigError(
            f"model '{name}' has no version or alias '{ref}' in the MLflow registry; register one first with `{TRAINED_BY[name]}`"
        ) from None


def load_rqvae(ref: str) -> tuple[RQVAE, RQVAEConfig, str]:
    """The RQ-VAE of ``ref`` (version or alias), loaded without running its code."""
    version = resolve_version(RQVAE_MODEL, ref)
    with tempfile.TemporaryDirectory() as tmp:
        rqvae, config = load_rqvae_file(_artifact(RQVAE_MODEL, version, "rqvae", Path(tmp)))
    return rqvae, config, version


def serving_versions(recommender_ref: str) -> tuple[str, str]:
    """(recommender version, the RQ-VAE version it was trained on) from one registry read,
    so ID assignment and serving use the same pair even if a promotion lands between them."""
    client = MlflowClient()
    try:
        found = (
            client.get_model_version(RECOMMENDER_MODEL, recommender_ref)
            if recommender_ref.isdigit()
            else client.get_model_version_by_alias(RECOMMENDER_MODEL, recommender_ref)
        )
    except MlflowException:
        raise ConfigError(
            f"model '{RECOMMENDER_MODEL}' has no version or alias '{recommender_ref}' in the MLflow registry; {RETRAIN_HINT}"
        ) from None
    rqvae_version = found.tags.get(RQVAE_VERSION_TAG)
    if not rqvae_version:
        raise DataError(
            f"recommender v{found.version} has no '{RQVAE_VERSION_TAG}' tag; register it again with this pipeline (train stage)"
        )
    return str(found.version), rqvae_version


def tag_metric(name: str, version: str, metric: str, value: float) -> None:
    """Record a version's gate metric on the version itself, for later comparisons."""
    MlflowClient().set_model_version_tag(name, version, metric_key(metric), str(value))


def champion_metric(name: str, metric: str) -> float | None:
    """The champion's recorded ``metric``; None when there is no champion (or no record)."""
    try:
        champion = MlflowClient().get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    value = champion.tags.get(metric_key(metric))
    return float(value) if value is not None else None


def promote(recommender_version: str, rqvae_version: str) -> None:
    """Make the recommender and the RQ-VAE whose IDs it was trained on champions together:
    the RQ-VAE alias moves first, the recommender's (what nightly reads) last, and if the
    second move fails the first is undone, so the pair moves together or not at all."""
    client = MlflowClient()
    previous_rqvae = _alias_version(RQVAE_MODEL, CHAMPION)
    client.set_registered_model_alias(RQVAE_MODEL, CHAMPION, rqvae_version)
    try:
        client.set_registered_model_alias(RECOMMENDER_MODEL, CHAMPION, recommender_version)
    except Exception:
        if previous_rqvae is None:
            client.delete_registered_model_alias(RQVAE_MODEL, CHAMPION)
        else:
            client.set_registered_model_alias(RQVAE_MODEL, CHAMPION, previous_rqvae)
        raise


def _alias_version(name: str, alias: str) -> str | None:
    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
