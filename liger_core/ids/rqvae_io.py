"""Moving a trained RQ-VAE around: to a file (MLflow artifact), to bytes (Spark broadcast),
and through it in Spark's ``mapInPandas`` batches."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import torch

from liger_core.config import RQVAEConfig
from liger_core.errors import DataError
from liger_core.ids.rqvae import RQVAE

_LOADED: dict[str, RQVAE] = {}


def rqvae_to_bytes(model: RQVAE, cfg: RQVAEConfig) -> bytes:
    """Weights plus what is needed to rebuild the module; no pickled classes."""
    buffer = io.BytesIO()
    torch.save(
        {
            "input_dim": model.shift.shape[0],
            "config": cfg.model_dump(),
            "state": {k: v.cpu() for k, v in model.state_dict().items()},
        },
        buffer,
    )
    return buffer.getvalue()


def rqvae_from_bytes(blob: bytes) -> tuple[RQVAE, RQVAEConfig]:
    payload = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    cfg = RQVAEConfig.model_validate(payload["config"])
    model = RQVAE.from_config(payload["input_dim"], cfg)
    model.load_state_dict(payload["state"])
    return model.eval(), cfg


def save_rqvae(model: RQVAE, cfg: RQVAEConfig, path: Path) -> Path:
    Path(path).write_bytes(rqvae_to_bytes(model, cfg))
    return Path(path)


def load_rqvae_file(path: Path) -> tuple[RQVAE, RQVAEConfig]:
    return rqvae_from_bytes(Path(path).read_bytes())


def encode_embeddings(model: RQVAE, vectors: Iterable[Iterable[float]]) -> np.ndarray:
    """[N, levels] int codes; checks dimension and finiteness first (clear error, not a shape crash)."""
    try:
        matrix = np.asarray(vectors if isinstance(vectors, np.ndarray) else list(vectors), dtype=np.float32)
    except ValueError:
        raise DataError("embeddings have different dimensions") from None
    expected = model.shift.shape[0]
    if matrix.ndim != 2 or matrix.shape[1] != expected:
        raise DataError(f"embeddings have shape {matrix.shape}; this RQ-VAE expects [items, {expected}]")
    if not np.isfinite(matrix).all():
        raise DataError(f"{int((~np.isfinite(matrix).all(1)).sum())} embeddings contain NaN/inf")
    return model.encode_codes(torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))).numpy()


def encode_frames(frames: Iterable[pd.DataFrame], blob: bytes) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (item_idx, embedding) -> (item_idx, codes); model loaded once per worker."""
    key = hashlib.sha1(blob).hexdigest()
    if key not in _LOADED:
        _LOADED[key] = rqvae_from_bytes(blob)[0]
    model = _LOADED[key]
    for frame in frames:
        if frame.empty:
            continue
        codes = encode_embeddings(model, frame["embedding"].tolist())
        yield pd.DataFrame({"item_idx": frame["item_idx"].to_numpy(), "codes": list(codes.astype(np.int32))})
