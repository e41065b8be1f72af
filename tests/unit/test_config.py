import pytest

from liger_jobs.spark_env import driver_address_env
from liger_core.config import env_name, load_settings
from liger_core.errors import ConfigError


def test_cpu_profile_is_the_default():
    settings = load_settings(environ={})
    assert settings.profile == "cpu"
    assert settings.spark.master == "local[*]"
    assert settings.tracking_uri.startswith("sqlite:///") and settings.tracking_uri.endswith("var/mlflow.db")


def test_gpu_profile_sets_paper_sizes():
    settings = load_settings("gpu", environ={})
    assert settings.profile == "gpu"
    assert {settings.embedding.device, settings.rqvae.device, settings.train.device} == {"cuda"}
    model = settings.model  # the paper's architecture (LIGER §4: 6 + 6 layers, d 128, FF 1024)
    assert (model.d_model, model.encoder_layers, model.decoder_layers, model.ff_dim) == (128, 6, 6, 1024)
    cpu = load_settings("cpu", environ={}).model  # sized for 2 cores: shallower and narrower feed-forward
    assert cpu.encoder_layers < model.encoder_layers and cpu.ff_dim < model.ff_dim


def test_precedence_file_then_env_then_cli():
    env = {"LIGER__RQVAE__EPOCHS": "7", "LIGER__SOURCE__KCORE": "3"}
    settings = load_settings("cpu", ["rqvae.epochs=9"], environ=env)
    assert settings.rqvae.epochs == 9  # CLI beats env
    assert settings.source.kcore == 3  # env beats file/defaults


def test_env_name_is_read_back_as_the_same_key():
    # liger_jobs.pipeline hands --set overrides to Airflow tasks through these names
    names = {env_name(key): value for key, value in {"train.time_budget_minutes": "3", " model.item_ids ": "false"}.items()}
    assert set(names) == {"LIGER__TRAIN__TIME_BUDGET_MINUTES", "LIGER__MODEL__ITEM_IDS"}
    settings = load_settings("cpu", environ=names)
    assert settings.train.time_budget_minutes == 3 and settings.model.item_ids is False


def test_driver_binds_loopback_for_a_local_master_only():
    assert driver_address_env("local[*]", {}) == {"SPARK_LOCAL_IP": "127.0.0.1"}
    assert driver_address_env("local[2]", {"SPARK_LOCAL_IP": "10.0.0.5"}) == {}  # the user's choice stands
    assert driver_address_env("spark://master:7077", {}) == {}  # executors must reach the driver
    assert driver_address_env("yarn", {}) == {}


def test_values_are_typed():
    settings = load_settings("cpu", ["rqvae.hidden_dims=[64, 32]", "rqvae.lr=0.01"], environ={})
    assert settings.rqvae.hidden_dims == [64, 32] and settings.rqvae.lr == 0.01


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"source\.kcorr: unknown key"):
        load_settings("cpu", ["source.kcorr=5"], environ={})


def test_wrong_type_is_named():
    with pytest.raises(ConfigError, match=r"rqvae\.epochs: Input should be a valid integer"):
        load_settings("cpu", environ={"LIGER__RQVAE__EPOCHS": "many"})


def test_out_of_range_value_is_named():
    with pytest.raises(ConfigError, match=r"source\.kcore"):
        load_settings("cpu", ["source.kcore=-1"], environ={})


def test_unknown_item_field_mapping_is_rejected():
    with pytest.raises(ConfigError, match=r"source\.item_columns.*colour"):
        load_settings("cpu", ["source.item_columns={colour: c}"], environ={})


def test_bad_override_syntax_and_missing_profile():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_settings("cpu", ["rqvae.epochs"], environ={})
    with pytest.raises(ConfigError, match="profile 'nope'"):
        load_settings("nope", environ={})


def test_paths_resolve_against_home(tmp_path):
    settings = load_settings("cpu", [f"paths.home={tmp_path}"], environ={})
    assert settings.paths.warehouse_uri == str(tmp_path / "var" / "warehouse")
    assert settings.paths.resolve("s3a://bucket/wh") == "s3a://bucket/wh"


def test_flat_params_for_mlflow():
    flat = load_settings(environ={}).flat()
    assert flat["rqvae.codebook_size"] == 256 and "spark.master" in flat


SECRET_DSN = "postgresql://liger:pg-s3cret@db:5432/liger"
SECRET_URI = "https://ml:tok-s3cret@mlflow.example.com/?token=abc123"


def test_credentials_never_reach_params_or_the_config_print(capsys):
    from liger_jobs.cli import main

    overrides = [f"publish.postgres_dsn={SECRET_DSN}", f"tracking.uri={SECRET_URI}"]
    settings = load_settings("cpu", overrides, environ={})
    assert settings.publish.postgres_dsn.get_secret_value() == SECRET_DSN  # usable where it connects
    assert settings.tracking_uri == SECRET_URI
    params = settings.flat()  # what every stage logs as MLflow params
    assert params["publish.postgres_dsn"] == "postgresql://liger:***@db:5432/liger"
    assert params["tracking.uri"] == "https://ml:***@mlflow.example.com/?token=***"
    assert "s3cret" not in repr(settings) and "abc123" not in str(params)

    assert main(["config", *sum((["--set", o] for o in overrides), [])]) == 0
    printed = capsys.readouterr().out
    assert "postgresql://liger:***@db:5432/liger" in printed and "s3cret" not in printed


def test_keyword_dsns_and_plain_uris_redact_only_what_is_secret():
    from liger_core.secrets import redact_uri

    assert redact_uri("host=db user=liger password='p w' dbname=x") == "host=db user=liger password=*** dbname=x"
    assert redact_uri("sqlite:////var/mlflow.db") == "sqlite:////var/mlflow.db"
    assert redact_uri("postgresql://db/liger?sslmode=require") == "postgresql://db/liger?sslmode=require"
