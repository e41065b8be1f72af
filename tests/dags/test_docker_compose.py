"""docker/: the compose file wires the services the DAGs and jobs need; the entry point works.

No Docker engine needed: the compose file is read as YAML, the image's entry point is run
with the project's venv on PATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SERVICES = {
    "postgres",
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "spark-master",
    "spark-worker",
    "mlflow",
}
AIRFLOW = sorted(s for s in SERVICES if s.startswith("airflow-"))
SPARK_RUNTIME = ["spark-worker"]  # where executors (and a cluster-mode driver) run


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def _default(value: str) -> str:
    """``${VAR:-default}`` interpolation as compose does it with VAR unset; a required
    ``${VAR:?message}`` stands for a value the operator supplied."""
    value = re.sub(r"\$\{[A-Z0-9_]+:\?[^}]*\}", "supplied-secret", value)
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def _mounts(service: dict) -> dict[str, str]:
    """target -> source of the service's volumes (short syntax)."""
    out = {}
    for item in service.get("volumes") or []:
        source, target = item.split(":")[:2]
        out[target] = source
    return out


def test_services_exist(compose):
    assert SERVICES <= set(compose["services"])


def test_one_image_for_the_pipeline(compose):
    services = compose["services"]
    for name in SERVICES - {"postgres"}:
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile", name
        assert (DOCKER / services[name]["build"]["context"] / "docker" / "Dockerfile").is_file()
    assert services["postgres"]["image"].startswith("postgres")


def test_warehouse_volume_is_shared(compose):
    assert "warehouse" in compose["volumes"]
    for name in AIRFLOW + SPARK_RUNTIME:
        assert _mounts(compose["services"][name]).get("/warehouse") == "warehouse", name
    for name in ("airflow-init", "airflow-scheduler"):
        env = _env(compose["services"][name])
        assert env["LIGER__PATHS__WAREHOUSE"] == "/warehouse"


def test_airflow_environment(compose):
    for name in AIRFLOW:
        env = _env(compose["services"][name])
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/opt/liger/dags"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"]  # shared by every component
        assert env["LIGER__SPARK__MASTER"] == "spark://spark-master:7077"
        assert env["LIGER__TRACKING__URI"] == "http://mlflow:5000"
        assert env["PYSPARK_PYTHON"] == "/opt/venv/bin/python"
        assert "SPARK_LOCAL_IP" not in env  # executors on spark-worker must reach the driver
    init = compose["services"]["airflow-init"]["command"]
    assert init == ["bash", "-c", "airflow db migrate && python -m liger_jobs.airflow_objects"]  # + the pool


def test_spark_connection_points_at_the_master(compose, monkeypatch, tmp_path):
    """The provider resolves the compose connection to the standalone master, client mode."""
    monkeypatch.setenv("AIRFLOW_HOME", os.environ.get("AIRFLOW_HOME") or str(tmp_path))
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    for name in AIRFLOW:
        monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", _env(compose["services"][name])["AIRFLOW_CONN_LIGER_SPARK"])
        hook = SparkSubmitHook(conn_id="liger_spark")
        assert hook._connection["master"] == "spark://spark-master:7077", name
        assert hook._connection["deploy_mode"] == "client"


def test_liger_env_is_a_valid_configuration(compose):
    """Every LIGER__ variable names an existing config key (unknown keys stop every job)."""
    from liger_core.config import load_settings

    for name in AIRFLOW + SPARK_RUNTIME:
        env = {k: _default(v) for k, v in _env(compose["services"][name]).items() if k.startswith("LIGER__")}
        settings = load_settings("cpu", environ=env)
        assert settings.spark.master == "spark://spark-master:7077"
        assert settings.tracking_uri == "http://mlflow:5000"
        assert settings.paths.warehouse_uri == "/warehouse"


def test_every_service_follows_the_house_rules(compose):
    """Policy over every service, so one added later is held to it: a restart policy said
    out loud, dependencies on services that exist (waiting for health only where a health
    check exists), named volumes that are declared, and LIGER__ settings that load."""
    from liger_core.config import load_settings

    services = compose["services"]
    for name, service in services.items():
        assert service.get("restart") in {"unless-stopped", "no"}, name
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in services, (name, target)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
        for target, source in _mounts(service).items():
            if not source.startswith(("$", ".", "/")):
                assert source in compose["volumes"], (name, source)
        liger_env = {k: _default(v) for k, v in _env(service).items() if k.startswith("LIGER__")}
        load_settings("cpu", environ=liger_env)  # raises ConfigError naming a bad key


def test_dependencies_start_in_order(compose):
    services = compose["services"]
    for name in AIRFLOW:
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
        if name != "airflow-init":
            assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert {"spark-master", "mlflow", "airflow-apiserver"} <= set(services["airflow-scheduler"]["depends_on"])


def _entrypoint() -> list[str]:
    for line in (DOCKER / "Dockerfile").read_text().splitlines():
        if line.startswith("ENTRYPOINT"):
            return json.loads(line[len("ENTRYPOINT") :])
    raise AssertionError("Dockerfile has no ENTRYPOINT")


def test_dockerfile_copies_only_what_exists_and_its_entrypoint_runs():
    """A COPY of a path missing from the repository breaks the image build."""
    text = (DOCKER / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from" not in line:
            for source in line.split()[1:-1]:
                assert list(ROOT.glob(source.rstrip("/"))), f"Dockerfile copies a missing path: {source}"
    script = next(part for part in _entrypoint() if part.endswith("entrypoint.sh"))
    local = ROOT / Path(script).relative_to("/opt/liger")
    assert local.is_file() and os.access(local, os.X_OK)


def _run_entrypoint(*args: str) -> subprocess.CompletedProcess:
    venv_bin = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGER__") and k != "LIGER_PROFILE"}
    env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", "")])
    env.pop("PYSPARK_PYTHON", None)
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    return subprocess.run(
        ["bash", str(DOCKER / "entrypoint.sh"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_entrypoint_runs_liger_config():
    result = _run_entrypoint("liger", "config")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["profile"] == "cpu"
    assert config["spark"]["master"] == "local[*]"
    assert {"paths", "tracking", "source"} <= set(config)


def test_entrypoint_help_and_passthrough():
    result = _run_entrypoint("help")
    assert result.returncode == 0 and "spark-worker" in result.stdout
    result = _run_entrypoint("bash", "-c", 'echo "$PYSPARK_PYTHON"')
    assert result.returncode == 0
    assert Path(result.stdout.strip()) == Path(sys.executable).parent / "python"


SECRETS = ("POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "AIRFLOW_FERNET_KEY")


def test_no_default_secrets_and_a_clear_error_when_missing():
    text = (DOCKER / "compose.yaml").read_text()
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"(:[-?])?([^}]*)\}", text)
        assert uses, name
        # every use is required: compose stops with the message instead of using a default
        assert all(mode == ":?" and "docker/README.md" in message for mode, message in uses), (name, uses)
    assert "change-me" not in text and ":-liger}" not in text


def test_ports_bind_to_localhost_and_airflow_asks_for_a_login(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert port.startswith("${LIGER_BIND_ADDRESS:-127.0.0.1}:"), (name, port)
    for name in AIRFLOW:
        env = _env(compose["services"][name])
        assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS" not in env
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] == "admin:admin"
