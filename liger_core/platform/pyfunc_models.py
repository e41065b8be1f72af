"""The MLflow pyfunc faces of the two models, for anyone outside the pipeline.

Each has a signature with a params schema and an input example, so ``pyfunc.predict``,
``mlflow models serve`` and ``mlflow.pyfunc.spark_udf`` accept ``k`` and ``exclude_history``
instead of dropping them. The recommender answers with one row per input history and array
columns, the shape ``spark_udf`` (a struct per row) and a REST client can use. The pipeline's
own jobs never load these (see ``model_registry``'s safe loaders).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import Array, ColSpec, ParamSchema, ParamSpec, Schema

from liger_core.serving.recommender import Recommender
from liger_core.ids.rqvae_io import encode_embeddings, load_rqvae_file

DEFAULT_K = 20
RECOMMENDER_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(Array("long"), "items")]),
    outputs=Schema(
        [
            ColSpec(Array("string"), "item_id"),
            ColSpec(Array("long"), "item_idx"),
            ColSpec(Array("double"), "score"),
            ColSpec(Array("string"), "source"),
        ]
    ),
    params=ParamSchema([ParamSpec("k", "long", DEFAULT_K), ParamSpec("exclude_history", "boolean", True)]),
)
RQVAE_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(Array("double"), "embedding")]), outputs=Schema([ColSpec(Array("long"), "codes")])
)


class RQVAEPyfunc(PythonModel):
    """``embedding`` column in, ``codes`` column (the RQ-VAE levels, no collision code) out."""

    def load_context(self, context) -> None:
        self.rqvae, self.config = load_rqvae_file(Path(context.artifacts["rqvae"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        codes = encode_embeddings(self.rqvae, [np.asarray(e, dtype=np.float32) for e in model_input["embedding"]])
        return pd.DataFrame({"codes": [list(map(int, c)) for c in codes]})


class RecommenderPyfunc(PythonModel):
    """``items`` column (lists of item_idx, oldest first) in; per row the top ``k`` as arrays
    ``item_id``, ``item_idx``, ``score``, ``source`` (best first)."""

    def load_context(self, context) -> None:
        self.recommender = Recommender.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        params = params or {}
        histories = [list(map(int, h)) for h in model_input["items"]]
        top = self.recommender.recommend(
            histories, int(params.get("k", DEFAULT_K)), exclude_history=bool(params.get("exclude_history", True))
        )
        grouped = top.sort_values(["row", "rank"]).groupby("row")
        rows = pd.DataFrame({column: grouped[column].agg(list) for column in ("item_id", "item_idx", "score", "source")})
        rows = rows.reindex(range(len(histories)))
        return rows.apply(lambda column: column.map(lambda v: v if isinstance(v, list) else []))


def recommender_example(recommender: Recommender) -> tuple[pd.DataFrame, dict]:
    """Two real histories from the catalog, and ``k`` 5: what a caller would send."""
    idx = recommender.space.item_idx[: max(2, min(3, len(recommender.space.item_idx)))].tolist()
    return pd.DataFrame({"items": [idx[:2], idx[-1:]]}), {"k": 5}


def rqvae_example(input_dim: int) -> pd.DataFrame:
    return pd.DataFrame({"embedding": [np.full(input_dim, 1 / np.sqrt(input_dim)).tolist()]})
