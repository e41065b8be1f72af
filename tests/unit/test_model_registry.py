"""The registry as the jobs use it: safe loading, one read for both versions, paired aliases."""

import mlflow
import pandas as pd
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from liger_core.platform import model_registry as registry
from liger_core.config import ModelConfig, RQVAEConfig
from liger_core.errors import DataError
from liger_core.model.network import LigerModel
from liger_core.serving.recommender import Recommender
from liger_core.ids.rqvae import RQVAE
from liger_core.data.synthetic import make_synthetic
from liger_core.data.training_data import ItemSpace
from tests.conftest import local_mlflow

RQ = RQVAEConfig(hidden_dims=[16], latent_dim=8, levels=2, codebook_size=4)
MODEL = ModelConfig(d_model=16, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=32, dropout=0.0)


@pytest.fixture
def store(tmp_path):
    with local_mlflow(tmp_path, "registry-test"), mlflow.start_run():
        yield MlflowClient()


def register_pair(rqvae_seed: int) -> tuple[str, str]:
    torch.manual_seed(rqvae_seed)
    rqvae_version = registry.register_rqvae(RQVAE.from_config(8, RQ), RQ)
    catalog, _ = make_synthetic(n_users=10, seed=1)
    model = LigerModel(MODEL, catalog.code_sizes, catalog.text_dim, catalog.n_items)
    recommender = Recommender(
        model.eval(),
        MODEL,
        catalog,
        ItemSpace(np.arange(catalog.n_items)),
        np.ones(catalog.n_items, bool),
        np.array([f"i{i}" for i in range(catalog.n_items)]),
        {"rqvae_version": rqvae_version},
    )
    return registry.register_recommender(recommender), rqvae_version


def test_jobs_load_weights_without_unpickling_the_registered_python_model(store, monkeypatch):
    recommender_version, rqvae_version = register_pair(0)
    # A version whose pickled python model would run code on load: the jobs never unpickle it.
    monkeypatch.setattr(mlflow.pyfunc, "load_model", lambda *a, **k: pytest.fail("pyfunc loader used"))
    recommender, version = registry.load_recommender(recommender_version)
    assert version == recommender_version and recommender.meta["rqvae_version"] == rqvae_version
    rqvae, config, loaded = registry.load_rqvae(rqvae_version)
    assert loaded == rqvae_version and config.levels == 2
    torch.manual_seed(0)
    expected = RQVAE.from_config(8, RQ).state_dict()
    assert all(torch.equal(expected[k], v) for k, v in rqvae.state_dict().items())


def test_a_version_not_made_by_the_pipeline_is_refused_with_its_name(store):
    class Foreign(mlflow.pyfunc.PythonModel):
        def predict(self, context, model_input, params=None):
            return model_input

    mlflow.pyfunc.log_model(name="x", python_model=Foreign(), registered_model_name=registry.RQVAE_MODEL)
    with pytest.raises(DataError, match="model 'rqvae' v1 has no 'rqvae' artifact"):
        registry.load_rqvae("1")


def test_nightly_reads_both_versions_from_the_recommender_it_serves(store):
    first, first_rqvae = register_pair(0)
    registry.promote(first, first_rqvae)
    second, second_rqvae = register_pair(1)
    assert registry.serving_versions("champion") == (first, first_rqvae)
    assert registry.serving_versions(second) == (second, second_rqvae)  # a pinned version brings its own
    registry.promote(second, second_rqvae)
    assert registry.serving_versions("champion") == (second, second_rqvae)


def test_a_failed_promotion_moves_neither_alias(store, monkeypatch):
    first, first_rqvae = register_pair(0)
    registry.promote(first, first_rqvae)
    second, second_rqvae = register_pair(1)
    real = MlflowClient.set_registered_model_alias

    def refuse_recommender(self, name, alias, version):
        if name == registry.RECOMMENDER_MODEL:
            raise RuntimeError("registry unavailable")
        return real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", refuse_recommender)
    with pytest.raises(RuntimeError, match="registry unavailable"):
        registry.promote(second, second_rqvae)
    monkeypatch.undo()
    assert store.get_model_version_by_alias(registry.RQVAE_MODEL, "champion").version == int(first_rqvae)
    assert store.get_model_version_by_alias(registry.RECOMMENDER_MODEL, "champion").version == int(first)


def test_the_champion_serves_through_pyfunc_with_params_and_one_row_per_user(store):
    version, rqvae_version = register_pair(0)
    registry.promote(version, rqvae_version)
    model = mlflow.pyfunc.load_model(f"models:/{registry.RECOMMENDER_MODEL}@champion")
    histories = pd.DataFrame({"items": [[0, 1, 2], [3], [4, 5]]})
    top = model.predict(histories, params={"k": 5})
    assert len(top) == 3 and all(len(items) == 5 for items in top["item_id"])
    assert all(len(s) == 5 and list(s) == sorted(s, reverse=True) for s in top["score"])
    assert not set(top["item_idx"][0]) & {0, 1, 2}  # history excluded by default
    assert len(model.predict(histories)["item_id"][0]) > 5  # the schema's default k (20), or the catalog
    version_info = store.get_model_version(registry.RECOMMENDER_MODEL, version)
    assert "trained" in version_info.description and version_info.tags["mode"] == MODEL.mode
    assert version_info.tags["rqvae_version"] == rqvae_version
    rqvae = mlflow.pyfunc.load_model(f"models:/{registry.RQVAE_MODEL}@champion")
    codes = rqvae.predict(pd.DataFrame({"embedding": [np.ones(8, np.float32).tolist()]}))["codes"][0]
    assert len(codes) == RQ.levels and all(0 <= c < RQ.codebook_size for c in codes)


def test_the_scoring_server_answers_a_request_with_k(store):
    from fastapi.testclient import TestClient
    from mlflow.pyfunc import scoring_server

    version, _ = register_pair(0)
    app = scoring_server.init(mlflow.pyfunc.load_model(f"models:/{registry.RECOMMENDER_MODEL}/{version}"))
    response = TestClient(app).post(
        "/invocations", json={"dataframe_records": [{"items": [0, 1]}, {"items": [7]}], "params": {"k": 3}}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [len(p["item_id"]) for p in predictions] == [3, 3]
