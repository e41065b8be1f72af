"""Reading the model's inputs for one ds: catalog (IDs + text) and user sequences, and a
registered recommender on the catalog it was trained for."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from liger_jobs.warehouse import VERSIONED, Warehouse
from liger_core.data.catalog import Catalog
from liger_core.platform import tracking
from liger_core.config import Settings
from liger_core.errors import DataError
from liger_core.platform.model_registry import load_recommender
from liger_core.serving.recommender import Recommender
from liger_core.data.training_data import ItemSpace, build_catalog, code_sizes


@dataclass
class ModelInputs:
    catalog: Catalog
    space: ItemSpace
    item_ids: np.ndarray  # external id per catalog row
    rqvae_version: str
    sequences: pd.DataFrame  # user_id, user_idx, items


def rqvae_version_at(warehouse: Warehouse, ds: str, wanted: str | None) -> str:
    """``wanted`` if its IDs exist for ds, else a clear error; None: the newest version with
    IDs for ds (what a retrain's semantic_ids stage just wrote)."""
    present = warehouse.versions("semantic_ids", ds)
    if wanted is None and present:
        return present[-1]
    if wanted in present:
        return wanted
    needed = f"RQ-VAE v{wanted}" if wanted else "any RQ-VAE version"
    raise DataError(
        f"no semantic_ids for ds={ds} under {needed} (present: {present or 'none'}); run "
        f"`liger semantic_ids --mode assign --ds {ds} --set semantic_ids.rqvae_model={wanted or 'champion'}` "
        "first"
    )


def log_model_inputs(warehouse: Warehouse, ds: str, rqvae_version: str, context: str) -> None:
    """Record the partitions a model run read as MLflow dataset inputs (lineage: which ds and
    which RQ-VAE version's IDs), in the active run. The digest is Spark's plan hash: no data read."""
    for table in ("user_sequences", "items", "item_embeddings", "semantic_ids"):
        version = rqvae_version if table in VERSIONED else None
        path = warehouse.path(table, ds, version)
        name = f"{table}/ds={ds}" + (f"/rqvae_version={version}" if version else "")
        tracking.log_table_input(warehouse.read(table, ds, version), path, name, context)


def load_model_inputs(warehouse: Warehouse, settings: Settings, ds: str, rqvae_version: str | None = None) -> ModelInputs:
    """The tables a model needs for ds, in the ID space of ``rqvae_version`` (the version the
    model was trained on; None for training: the newest with IDs for ds)."""
    warehouse.require(ds, "items", "item_embeddings", "semantic_ids", "user_sequences")
    version = rqvae_version_at(warehouse, ds, rqvae_version)
    sids = warehouse.read("semantic_ids", ds, version).select("item_idx", "codes", "rqvae_version").toPandas()
    versions = sorted(sids["rqvae_version"].unique())
    if versions != [version]:
        raise DataError(f"semantic_ids for ds={ds} under rqvae_version={version} hold IDs of versions {versions}")
    embeddings = warehouse.read("item_embeddings", ds).select("item_idx", "embedding").toPandas()
    catalog, space = build_catalog(sids, embeddings, code_sizes(settings.rqvae, settings.semantic_ids))
    ids = warehouse.read("items", ds).select("item_idx", "item_id").toPandas().set_index("item_idx")["item_id"]
    sequences = warehouse.read("user_sequences", ds).select("user_id", "user_idx", "items").toPandas()
    return ModelInputs(
        catalog,
        space,
        ids.reindex(space.item_idx).to_numpy(dtype=str),
        versions[0],
        sequences.sort_values("user_idx", ignore_index=True),
    )


def load_registered(warehouse: Warehouse, settings: Settings, ds: str, model: str) -> tuple[Recommender, str, ModelInputs]:
    """(recommender, its version, ds's inputs) for the registered ``model`` (a version or an
    alias), laid out in the IDs of the RQ-VAE version it was trained on, whatever a retrain has
    written for ds meanwhile."""
    recommender, version = load_recommender(model)
    inputs = load_model_inputs(warehouse, settings, ds, recommender.meta["rqvae_version"])
    return recommender.with_catalog(inputs.catalog, inputs.space, inputs.item_ids), version, inputs
