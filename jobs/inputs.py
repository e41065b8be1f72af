"""Reading the model's inputs for one ds: catalog (IDs + text) and user sequences."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from jobs.warehouse import Warehouse
from liger_core.catalog import Catalog
from liger_core.config import Settings
from liger_core.errors import DataError
from liger_core.training_data import ItemSpace, build_catalog, code_sizes


@dataclass
class ModelInputs:
    catalog: Catalog
    space: ItemSpace
    item_ids: np.ndarray  # external id per catalog row
    rqvae_version: str
    sequences: pd.DataFrame  # user_id, user_idx, items


WRITER = {"items": "ingest", "interactions": "ingest", "item_embeddings": "embed",
          "semantic_ids": "semantic_ids", "user_sequences": "build_sequences", "recommendations": "recommend"}


def require(warehouse: Warehouse, ds: str, *tables: str) -> None:
    """A clear error naming the stage to run when an input partition is missing."""
    for table in tables:
        if not warehouse.exists(table, ds):
            raise DataError(f"no {table} partition for ds={ds}; run the {WRITER[table]} stage first")


def load_model_inputs(warehouse: Warehouse, settings: Settings, ds: str) -> ModelInputs:
    require(warehouse, ds, "items", "item_embeddings", "semantic_ids", "user_sequences")
    sids = warehouse.read("semantic_ids", ds).select("item_idx", "codes", "rqvae_version").toPandas()
    versions = sorted(sids["rqvae_version"].unique())
    if len(versions) != 1:
        raise DataError(f"semantic_ids for ds={ds} mixes RQ-VAE versions {versions}")
    embeddings = warehouse.read("item_embeddings", ds).select("item_idx", "embedding").toPandas()
    catalog, space = build_catalog(sids, embeddings, code_sizes(settings.rqvae, settings.semantic_ids))
    ids = warehouse.read("items", ds).select("item_idx", "item_id").toPandas().set_index("item_idx")["item_id"]
    sequences = warehouse.read("user_sequences", ds).select("user_id", "user_idx", "items").toPandas()
    return ModelInputs(catalog, space, ids.reindex(space.item_idx).to_numpy(dtype=str), versions[0],
                       sequences.sort_values("user_idx", ignore_index=True))
