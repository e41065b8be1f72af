"""DAG integrity: the DAG files parse, and their structure and settings are what DESIGN §2 says.

Parsing only (DagBag), no metadata database, no Spark: a few seconds.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"

RETRAIN = ["ingest", "embed_items", "semantic_ids", "build_sequences", "train", "evaluate"]
NIGHTLY = ["ingest", "embed_items", "semantic_ids", "build_sequences", "recommend", "publish"]
ORDER = {"liger_retrain": RETRAIN, "liger_nightly": NIGHTLY}
JOB_OF = {"ingest": "ingest", "embed_items": "embed_items", "semantic_ids": "semantic_ids",
          "build_sequences": "build_sequences", "train": "train", "evaluate": "evaluate",
          "recommend": "recommend", "publish": "publish"}


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """A throwaway AIRFLOW_HOME, set before airflow is imported; the DAG folder on sys.path
    as Airflow's dag-folder bundle puts it (DAG files import ``liger_common``)."""
    saved_env, saved_path = dict(os.environ), list(sys.path)
    os.environ["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow_home"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
    for name in ("AIRFLOW_CONN_LIGER_SPARK", "LIGER_DEFAULT_SPARK_CONN", "SPARK_LOCAL_IP", "LIGER_HOME",
                 "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(DAGS_DIR))
    yield
    os.environ.clear()
    os.environ.update(saved_env)
    sys.path[:] = saved_path


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.models import DagBag

    # Airflow 3.3's DagBag has no include_examples argument any more: examples are a separate
    # bundle, off here through AIRFLOW__CORE__LOAD_EXAMPLES=False.
    return DagBag(dag_folder=str(DAGS_DIR))


@pytest.fixture(scope="module")
def common(dagbag):
    import liger_common

    return liger_common


@pytest.fixture(scope="module")
def spark_env(dagbag):
    """The task environment as the DAG module left it (the default connection included)."""
    return dict(os.environ)


def _tasks(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    return dag, [dag.get_task(t) for t in ORDER[dag_id]]


def test_no_import_errors_and_both_dags(dagbag):
    assert dagbag.import_errors == {}
    assert {"liger_retrain", "liger_nightly"} <= set(dagbag.dags)


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_task_order_is_a_chain(dagbag, dag_id):
    dag, tasks = _tasks(dagbag, dag_id)
    assert sorted(dag.task_ids) == sorted(ORDER[dag_id])
    for i, task in enumerate(tasks):
        assert task.upstream_task_ids == (set(ORDER[dag_id][i - 1:i]) if i else set()), task.task_id
        assert task.downstream_task_ids == set(ORDER[dag_id][i + 1:i + 2]), task.task_id


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_no_cycles(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    indegree = {t: len(dag.get_task(t).upstream_task_ids) for t in dag.task_ids}
    ready, seen = [t for t, n in indegree.items() if n == 0], 0
    while ready:
        seen += 1
        for child in dag.get_task(ready.pop()).downstream_task_ids:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    assert seen == len(dag.task_ids)


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_dag_settings(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.schedule == {"liger_retrain": "@weekly", "liger_nightly": "@daily"}[dag_id]
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    assert dag.dagrun_timeout is not None
    assert "liger" in dag.tags


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_task_defaults(dagbag, common, dag_id):
    _, tasks = _tasks(dagbag, dag_id)
    for task in tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff > 1, task.task_id
        assert task.retry_delay > timedelta(0), task.task_id
        assert task.owner and task.owner != "airflow", task.task_id
        assert isinstance(task.execution_timeout, timedelta) and task.execution_timeout > timedelta(0)
        assert common.log_task_failure in list(task.on_failure_callback), task.task_id
    by_id = {t.task_id: t for t in tasks}
    assert by_id["ingest"].execution_timeout == timedelta(minutes=30)
    if "train" in by_id:
        assert by_id["train"].execution_timeout >= timedelta(hours=4)


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_spark_submit_tasks(dagbag, common, dag_id):
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    _, tasks = _tasks(dagbag, dag_id)
    missing = [task.application for task in tasks if not Path(task.application).is_file()]
    assert not missing, f"job scripts the DAG submits do not exist: {missing}"
    for task in tasks:
        assert isinstance(task, SparkSubmitOperator), task.task_id
        assert Path(task.application) == ROOT / "jobs" / f"{JOB_OF[task.task_id]}.py"
        assert task._conn_id == "liger_spark"
        args = task.application_args
        assert args[:4] == ["--ds", common.DS, "--profile", "{{ params.profile }}"], task.task_id
        assert Path(task._spark_binary) == Path(sys.executable).with_name("spark-submit")
        assert Path(task._spark_binary).is_file()
        env = task.env_vars
        assert env["PYSPARK_PYTHON"] == sys.executable
        assert env["PYSPARK_DRIVER_PYTHON"] == sys.executable
        assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
        assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)


def test_ds_argument_renders_the_logical_date(dagbag, common):
    """``{{ ds }}``; and for an Airflow 3 manual run without a logical date, its run_after date."""
    template_env = dagbag.dags["liger_nightly"].get_template_env()
    template = template_env.from_string(common.DS)
    assert template.render(ds="2026-11-23") == "2026-11-23"
    run = SimpleNamespace(run_after=datetime(2026, 11, 24, 3, 15, tzinfo=timezone.utc))
    assert template.render(dag_run=run) == "2026-11-24"
    assert "{{ ds" in common.DS


def test_templates_render(dagbag):
    """Every templated field renders with a run's context (a Jinja slip would fail the task)."""
    run = SimpleNamespace(run_after=datetime(2026, 11, 23, tzinfo=timezone.utc))
    for dag in dagbag.dags.values():
        params = {name: dag.params[name] for name in dag.params}
        for task in dag.tasks:
            context = {"ds": "2026-11-23", "params": params, "dag": dag, "task": task, "dag_run": run}
            args = task.render_template(task.application_args, context)
            assert args[:4] == ["--ds", "2026-11-23", "--profile", "cpu"]
            assert not any("{{" in a for a in args), args
            assert task.render_template(task.name, context) == f"{dag.dag_id}.{task.task_id}"
            assert task.render_template(task.env_vars, context)["LIGER_PROFILE"] == "cpu"


def test_semantic_ids_mode(dagbag):
    def mode(dag_id):
        args = dagbag.dags[dag_id].get_task("semantic_ids").application_args
        return args[args.index("--mode") + 1]

    assert mode("liger_retrain") == "train"
    assert mode("liger_nightly") == "assign"


def _overrides(task):
    args = task.application_args
    return {args[i + 1].split("=", 1)[0]: args[i + 1].split("=", 1)[1]
            for i, a in enumerate(args) if a == "--set"}


def test_params_and_overrides(dagbag, common):
    retrain, nightly = dagbag.dags["liger_retrain"], dagbag.dags["liger_nightly"]
    assert retrain.params["profile"] == "cpu"
    assert nightly.params["profile"] == "cpu"
    assert nightly.params["k"] == 20
    assert nightly.params["rqvae_model"] == "champion"
    assert nightly.params["recommender_model"] == "champion"
    assert _overrides(nightly.get_task("semantic_ids")) == {common.RQVAE_MODEL_KEY: "{{ params.rqvae_model }}"}
    assert _overrides(nightly.get_task("recommend")) == {
        common.RECOMMEND_K_KEY: "{{ params.k }}",
        common.RECOMMENDER_MODEL_KEY: "{{ params.recommender_model }}",
    }


def test_overrides_are_valid_config_keys(dagbag):
    """The ``--set`` overrides, rendered with the params' defaults, load in the jobs' config."""
    from liger_core.config import load_settings

    for dag in dagbag.dags.values():
        params = {name: dag.params[name] for name in dag.params}
        template_env = dag.get_template_env()
        for task in dag.tasks:
            overrides = [f"{key}={template_env.from_string(value).render(params=params)}"
                         for key, value in _overrides(task).items()]
            settings = load_settings("cpu", overrides, environ={})
            if task.task_id == "recommend":
                assert settings.recommend.k == 20 and settings.recommend.model == "champion"


def test_recommender_asset(dagbag, common):
    evaluate = dagbag.dags["liger_retrain"].get_task("evaluate")
    assert common.RECOMMENDER_ASSET in evaluate.outlets
    assert common.RECOMMENDER_ASSET.uri == "liger://models/recommender"
    assert dagbag.dags["liger_nightly"].schedule == "@daily"  # nightly stays time-scheduled


def test_failure_callback_message(common, caplog):
    ti = SimpleNamespace(dag_id="liger_nightly", task_id="recommend", try_number=3,
                         log_url="http://localhost:8080/dags/liger_nightly/runs/r1/tasks/recommend?try_number=3")
    context = {"task_instance": ti, "ds": "2026-11-23",
               "exception": RuntimeError("Cannot execute: spark-submit ...\nError code is: 1.")}
    with caplog.at_level("ERROR", logger="liger.airflow"):
        message = common.log_task_failure(context)
    assert message == ("LIGER task failed: dag=liger_nightly task=recommend ds=2026-11-23 try=3 "
                       "log=http://localhost:8080/dags/liger_nightly/runs/r1/tasks/recommend?try_number=3 "
                       "error=RuntimeError: Cannot execute: spark-submit ... Error code is: 1.")
    assert "\n" not in message
    assert message in caplog.text


def test_failure_callback_tolerates_a_sparse_context(common):
    message = common.log_task_failure({"dag": SimpleNamespace(dag_id="liger_retrain"),
                                       "task": SimpleNamespace(task_id="train")})
    assert message == "LIGER task failed: dag=liger_retrain task=train ds=? try=? log=?"
    run = SimpleNamespace(run_after=datetime(2026, 11, 24, 3, tzinfo=timezone.utc))
    message = common.log_task_failure({"dag": SimpleNamespace(dag_id="liger_retrain"), "dag_run": run})
    assert " ds=2026-11-24 " in message


def test_default_spark_connection_is_local(spark_env, common, monkeypatch):
    """Nothing configured: ``liger_spark`` resolves to master local[*] through the provider."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    assert spark_env["AIRFLOW_CONN_LIGER_SPARK"] == common.LOCAL_SPARK_CONN
    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", spark_env["AIRFLOW_CONN_LIGER_SPARK"])
    hook = SparkSubmitHook(conn_id="liger_spark", spark_binary=common.spark_submit_binary())
    assert hook._connection["master"] == "local[*]"
    assert hook._connection["deploy_mode"] == "client"
    command = hook._build_spark_submit_command(str(ROOT / "jobs" / "ingest.py"))
    assert command[:3] == [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[*]"]
    assert common.spark_master_from_env() == "local[*]"


@pytest.mark.parametrize("value, master", [
    ("spark://spark-master:7077?deploy-mode=client", "spark://spark-master:7077"),
    ('{"conn_type": "spark", "host": "spark://spark-master", "port": 7077}', "spark://spark-master:7077"),
    ('{"conn_type": "spark", "host": "local[2]"}', "local[2]"),
    ("yarn://resourcemanager", "yarn://resourcemanager"),
])
def test_master_from_env_matches_the_provider(common, monkeypatch, value, master):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", value)
    assert SparkSubmitHook(conn_id="liger_spark")._connection["master"] == master
    assert common.spark_master_from_env() == master


def _fresh_common():
    spec = importlib.util.spec_from_file_location("liger_common_fresh", DAGS_DIR / "liger_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_existing_connection_and_cluster_env_are_kept(dagbag, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", "spark://spark-master:7077")
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    module = _fresh_common()
    assert os.environ["AIRFLOW_CONN_LIGER_SPARK"] == "spark://spark-master:7077"
    assert "SPARK_LOCAL_IP" not in module.task_env()  # executors must reach the driver


def test_default_connection_can_be_switched_off(dagbag, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_LIGER_SPARK", raising=False)
    monkeypatch.setenv("LIGER_DEFAULT_SPARK_CONN", "0")
    _fresh_common()
    assert "AIRFLOW_CONN_LIGER_SPARK" not in os.environ
