"""A trained recommender as one self-contained bundle: weights, config and the catalog
snapshot (semantic IDs, text embeddings, item ids, which items were in training).

The bundle is what MLflow registers as ``recommender``; ``with_catalog`` swaps in tonight's
catalog so items added since training (with IDs from the same RQ-VAE version) are ranked
as cold-start candidates without retraining.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence, cast

import numpy as np
import pandas as pd
import torch

from liger_core.data.catalog import Catalog
from liger_core.config import ModelConfig, RecommendConfig
from liger_core.errors import DataError
from liger_core.model.network import LigerModel, TextTower
from liger_core.precision import autocast_dtype
from liger_core.progress import Progress
from liger_core.retrieval.search import BEAMS, SOURCES, Blend, RetrievalIndex, recommend
from liger_core.data.sequences import pad_histories
from liger_core.data.training_data import ItemSpace

WEIGHTS, ARRAYS, META = "weights.pt", "catalog.npz", "meta.json"
RECOMMENDATION_COLUMNS = ["user_id", "rank", "item_id", "item_idx", "score", "source", "shared_prefix"]
_LOADED: dict[str, "Recommender"] = {}


class _Serving(NamedTuple):
    """What ranking needs, built once per device: the model there, the catalog's retrieval
    index and every item's dense vector (the weights do not change while serving)."""

    model: LigerModel
    retrieval: RetrievalIndex
    vectors: torch.Tensor | None


@dataclass(frozen=True)
class Recommender:
    model: LigerModel
    model_config: ModelConfig
    catalog: Catalog
    space: ItemSpace  # item_idx of each catalog row
    in_set: np.ndarray  # bool per catalog row: seen in training
    item_ids: np.ndarray  # external item_id per catalog row
    meta: dict  # rqvae_version, trained_ds, mode, ...
    # Per device; not an init field, so ``replace`` (``with_catalog``) starts an empty one.
    _serving: dict[str, _Serving] = field(init=False, default_factory=dict, repr=False, compare=False)

    @property
    def blend(self) -> Blend:
        """How the hybrid weighs cold items, the beam's log-prob and the dense head's own
        candidates; chosen on validation at training time (a bundle without one ranks as the
        paper does)."""
        return Blend(
            float(self.meta.get("cold_offset", 0.0)),
            float(self.meta.get("generative_weight", 0.0)),
            int(self.meta.get("dense_candidates", 0)),
            int(self.meta.get("cold_candidates", Blend().cold_candidates)),
        )

    def save(self, folder: Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"state": self.model.state_dict()}, folder / WEIGHTS)
        np.savez(
            folder / ARRAYS,
            sid=self.catalog.sid,
            text=self.catalog.text,
            item_idx=self.space.item_idx,
            in_set=self.in_set,
            item_ids=self.item_ids.astype(str),
        )
        (folder / META).write_text(
            json.dumps(
                {**self.meta, "model_config": self.model_config.model_dump(), "code_sizes": list(self.catalog.code_sizes)},
                indent=2,
            )
        )
        return folder

    @classmethod
    def load(cls, folder: Path) -> Recommender:
        folder = Path(folder)
        meta = json.loads((folder / META).read_text())
        config = ModelConfig.model_validate(meta.pop("model_config"))
        sizes = tuple(meta.pop("code_sizes"))
        with np.load(folder / ARRAYS) as arrays:
            catalog = Catalog(sid=arrays["sid"], text=arrays["text"], code_sizes=sizes)
            space, in_set, item_ids = ItemSpace(arrays["item_idx"]), arrays["in_set"], arrays["item_ids"]
        model = LigerModel(config, sizes, catalog.text_dim, catalog.n_items)
        model.load_state_dict(torch.load(folder / WEIGHTS, map_location="cpu", weights_only=True)["state"])
        return cls(model.eval(), config, catalog, space, in_set, item_ids, meta)

    def to_bytes(self) -> dict[str, bytes]:
        """The bundle's files, for a Spark broadcast to executors."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.save(Path(tmp))
            return {name: (folder / name).read_bytes() for name in (WEIGHTS, ARRAYS, META)}

    @classmethod
    def from_bytes(cls, files: dict[str, bytes]) -> Recommender:
        """Load once per process (executors reuse Python workers across tasks)."""
        key = hashlib.sha1(b"".join(files[name] for name in sorted(files))).hexdigest()
        if key not in _LOADED:
            with tempfile.TemporaryDirectory() as tmp:
                for name, blob in files.items():
                    Path(tmp, name).write_bytes(blob)
                _LOADED[key] = cls.load(Path(tmp))
        return _LOADED[key]

    def with_catalog(self, catalog: Catalog, space: ItemSpace, item_ids: np.ndarray) -> Recommender:
        """Same model over another catalog; items not seen in training become cold-start."""
        if catalog.code_sizes != self.catalog.code_sizes:
            raise DataError(
                f"catalog code sizes {catalog.code_sizes} differ from the model's "
                f"{self.catalog.code_sizes}: semantic IDs come from another RQ-VAE setup"
            )
        trained = self.space.item_idx[self.in_set]
        return replace(
            self,
            model=self._model_for(space),
            catalog=catalog,
            space=space,
            item_ids=np.asarray(item_ids),
            in_set=np.isin(space.item_idx, trained),
        )

    def _model_for(self, space: ItemSpace) -> LigerModel:
        """The model with its per-item vectors (if any) moved to ``space``'s rows: an item
        keeps its trained vector, an item new to the catalog gets 0 (its text alone)."""
        tower = self.model.text
        if tower is None or tower.item_id is None:
            return self.model
        old_rows = torch.from_numpy(self.space.positions(space.item_idx))
        known = old_rows >= 0
        weight = tower.item_id.weight.new_zeros(len(space.item_idx), tower.item_id.embedding_dim)
        weight[known] = tower.item_id.weight.detach()[old_rows[known]]
        model = copy.deepcopy(self.model)
        cast(TextTower, model.text).item_id = torch.nn.Embedding.from_pretrained(weight, freeze=True)
        return model

    def recommend(
        self,
        histories: Sequence[Sequence[int]],
        k: int,
        *,
        beams: int = BEAMS,
        exclude_history: bool = True,
        batch_users: int = 64,
        device: str = "cpu",
        block_dtype: torch.dtype | None = None,
    ) -> pd.DataFrame:
        """Top-k per history (lists of item_idx): columns row, rank (1..k), item_idx, item_id,
        score, source. Items of a history that are not in the catalog are ignored. The beam
        is ``max(beams, k)`` wide, plus the history window when history is excluded: excluded
        items may take beams, and k valid items must remain (the nightly job and the MLflow
        model rank alike). ``block_dtype``: autocast of the Transformer blocks (None: float32;
        the nightly job passes ``recommend.precision``'s)."""
        beams = max(beams, k) + (self.model_config.max_history if exclude_history else 0)
        model, retrieval, vectors = self._serving_on(device)
        parts, progress = [], Progress("recommend", len(histories), "user")
        for start in range(0, len(histories), batch_users):
            chunk = [self._positions(h) for h in histories[start : start + batch_users]]
            history = torch.from_numpy(pad_histories(chunk, self.model_config.max_history)).to(device)
            ranked = recommend(
                model,
                history,
                retrieval,
                vectors,
                k,
                beams=beams,
                exclude_history=exclude_history,
                blend=self.blend,
                block_dtype=block_dtype,
            )
            parts.append(self._rows(ranked, start))
            progress.update(min(start + batch_users, len(histories)))
        progress.close()
        return (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=["row", "rank", "item_idx", "item_id", "score", "source"])
        )

    def _serving_on(self, device: str) -> _Serving:
        """Built on the first call per device; later Arrow batches of the same process reuse it."""
        if device not in self._serving:
            model = self.model.to(device)
            index = RetrievalIndex.from_catalog(self.catalog, self.in_set, device)
            self._serving[device] = _Serving(model, index, index.item_vectors(model))
        return self._serving[device]

    def shared_prefix(self, history: Sequence[int], item_idx: np.ndarray) -> np.ndarray:
        """Per item: leading codes shared with the closest item of ``history`` (provenance)."""
        past = self.catalog.sid[self._positions(history)]
        codes = self.catalog.sid[self.space.positions(np.asarray(item_idx, dtype=np.int64))]
        same = codes[:, None, :] == past[None, :, :]
        return np.cumprod(same, axis=2).sum(axis=2).max(axis=1)

    def _positions(self, history: Sequence[int]) -> np.ndarray:
        pos = self.space.positions(np.asarray(history, dtype=np.int64))
        pos = pos[pos >= 0]
        if pos.size == 0:
            raise DataError("a history has no item of the catalog; nothing to recommend from")
        return pos

    def _rows(self, ranked, start: int) -> pd.DataFrame:
        items = ranked.items.cpu().numpy()
        rows, ranks = np.nonzero(items >= 0)
        positions = items[rows, ranks]
        source = ranked.source.cpu().numpy()[rows, ranks]
        return pd.DataFrame(
            {
                "row": rows + start,
                "rank": ranks + 1,
                "item_idx": self.space.item_idx[positions],
                "item_id": self.item_ids[positions],
                "score": ranked.scores.cpu().numpy()[rows, ranks].astype(np.float64),
                "source": np.asarray(SOURCES)[source],
            }
        )


def recommend_frames(
    frames: Iterable[pd.DataFrame], bundle: dict[str, bytes], cfg: RecommendConfig, threads: int = 0
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (user_id, items) rows -> RECOMMENDATION_COLUMNS rows, top ``cfg.k``
    per user, ranked as ``cfg`` (the stage's ``recommend`` settings) says, precision included."""
    if threads > 0:
        torch.set_num_threads(threads)
    recommender = Recommender.from_bytes(bundle)
    block_dtype = autocast_dtype(cfg.precision, "cpu", "recommend.precision")
    for frame in frames:
        if frame.empty:
            continue
        histories = frame["items"].tolist()
        top = recommender.recommend(
            histories,
            cfg.k,
            beams=cfg.beams,
            exclude_history=cfg.exclude_history,
            batch_users=cfg.batch_users,
            block_dtype=block_dtype,
        )
        top["user_id"] = frame["user_id"].to_numpy()[top["row"].to_numpy()]
        top["shared_prefix"] = (
            np.concatenate(
                [
                    recommender.shared_prefix(histories[row], group["item_idx"].to_numpy())
                    for row, group in top.groupby("row", sort=False)
                ]
            )
            if len(top)
            else []
        )
        yield top[RECOMMENDATION_COLUMNS]
