"""DAG integrity: the DAG files parse, and their structure and settings are what DESIGN §2 says.

Parsing only (DagBag), no metadata database, no Spark: a few seconds.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

from liger_jobs.airflow_objects import LOCAL_SPARK_CONN
from liger_jobs.in_process import IN_PROCESS_ENV

ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = ROOT / "dags"

RETRAIN = ["ingest", "embed_items", "semantic_ids", "build_sequences", "train", "evaluate", "announce_promotion"]
NIGHTLY = ["champion_ready", "ingest", "embed_items", "semantic_ids", "build_sequences", "recommend", "publish"]
ORDER = {"liger_retrain": RETRAIN, "liger_nightly": NIGHTLY}
IN_PROCESS = {"announce_promotion", "champion_ready"}  # small registry lookups, no Spark
SPARK_TASKS = {dag_id: [t for t in order if t not in IN_PROCESS] for dag_id, order in ORDER.items()}
WRITES_WAREHOUSE = {"ingest", "embed_items", "semantic_ids", "build_sequences", "recommend"}
JOB_OF = {
    "ingest": "ingest",
    "embed_items": "embed_items",
    "semantic_ids": "semantic_ids",
    "build_sequences": "build_sequences",
    "train": "train",
    "evaluate": "evaluate",
    "recommend": "recommend",
    "publish": "publish",
}


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory):
    """A throwaway AIRFLOW_HOME, set before airflow is imported; the DAG folder on sys.path
    as Airflow's dag-folder bundle puts it (so a DAG file that needed a sibling module would
    pass here: ``test_the_dag_folder_holds_only_dags`` keeps them out)."""
    saved_env, saved_path = dict(os.environ), list(sys.path)
    os.environ["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow_home"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_DIR)
    for name in ("AIRFLOW_CONN_LIGER_SPARK", "SPARK_LOCAL_IP", "LIGER_HOME", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"):
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
    from liger_jobs import dag_factory

    return dag_factory


def _tasks(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    return dag, [dag.get_task(t) for t in SPARK_TASKS[dag_id]]


def test_no_import_errors_and_both_dags(dagbag):
    assert dagbag.import_errors == {}
    assert {"liger_retrain", "liger_nightly"} <= set(dagbag.dags)


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_task_order_is_a_chain(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    tasks = [dag.get_task(t) for t in ORDER[dag_id]]
    assert sorted(dag.task_ids) == sorted(ORDER[dag_id])
    for i, task in enumerate(tasks):
        assert task.upstream_task_ids == (set(ORDER[dag_id][i - 1 : i]) if i else set()), task.task_id
        assert task.downstream_task_ids == set(ORDER[dag_id][i + 1 : i + 2]), task.task_id


def test_every_dag_in_the_folder_follows_the_house_rules(dagbag, common):
    """Policy over whatever the folder holds, so a DAG added later is held to the same rules:
    one run at a time, no catchup, a run timeout, the project tag, and tasks with a named
    owner, a timeout and the failure callback; every spark-submit task has the input-error
    retry policy and takes the warehouse pool exactly when its job writes the warehouse."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    writers = {f"{job}.py" for job in WRITES_WAREHOUSE}
    for dag_id, dag in dagbag.dags.items():
        assert dag.max_active_runs == 1 and dag.catchup is False, dag_id
        assert dag.dagrun_timeout is not None and "liger" in dag.tags, dag_id
        for task in dag.tasks:
            where = f"{dag_id}.{task.task_id}"
            assert task.owner and task.owner != "airflow", where
            assert isinstance(task.execution_timeout, timedelta) and task.execution_timeout > timedelta(0), where
            assert common.log_task_failure in list(task.on_failure_callback or []), where
            if isinstance(task, SparkSubmitOperator):
                assert task.retry_policy is common.NO_RETRY_ON_INPUT_ERRORS, where
                assert task.pool == ("liger_warehouse" if Path(task.application).name in writers else "default_pool"), where


@pytest.mark.parametrize("dag_id", sorted(ORDER))
def test_dag_settings(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.schedule == {"liger_retrain": "0 12 * * 0", "liger_nightly": "@daily"}[dag_id]
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
        assert task.retry_policy is common.NO_RETRY_ON_INPUT_ERRORS, task.task_id
        assert task.pool == ("liger_warehouse" if task.task_id in WRITES_WAREHOUSE else "default_pool")
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
        assert "SPARK_LOCAL_IP" not in env  # decided when the task runs, from the connection
        assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
        # the driver's memory and JVM options go on spark-submit's command line
        assert task.conf == {
            "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
            "spark.driver.memory": "{{ params.driver_memory }}",
        }


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
        for task in (dag.get_task(t) for t in SPARK_TASKS[dag.dag_id]):
            context = {"ds": "2026-11-23", "params": params, "dag": dag, "task": task, "dag_run": run, "ti": ResolvedPair}
            args = task.render_template(task.application_args, context)
            assert args[:4] == ["--ds", "2026-11-23", "--profile", "cpu"]
            assert not any("{{" in a for a in args), args
            assert task.render_template(task.name, context) == f"{dag.dag_id}.{task.task_id}"
            assert task.render_template(task.env_vars, context)["LIGER_PROFILE"] == "cpu"
            assert task.render_template(task.conf, context)["spark.driver.memory"] == "4g"


def test_semantic_ids_mode(dagbag):
    def mode(dag_id):
        args = dagbag.dags[dag_id].get_task("semantic_ids").application_args
        return args[args.index("--mode") + 1]

    assert mode("liger_retrain") == "train"
    assert mode("liger_nightly") == "assign"


def _overrides(task):
    args = task.application_args
    return {args[i + 1].split("=", 1)[0]: args[i + 1].split("=", 1)[1] for i, a in enumerate(args) if a == "--set"}


def test_params_and_overrides(dagbag, common):
    retrain, nightly = dagbag.dags["liger_retrain"], dagbag.dags["liger_nightly"]
    assert retrain.params["profile"] == "cpu"
    assert nightly.params["profile"] == "cpu"
    assert nightly.params["k"] == 20
    assert nightly.params["recommender_model"] == "champion"
    assert "rqvae_model" not in nightly.params  # follows from the recommender version
    resolved = "{{ ti.xcom_pull(task_ids='champion_ready')['%s'] }}"
    assert _overrides(nightly.get_task("semantic_ids")) == {common.RQVAE_MODEL_KEY: resolved % "rqvae"}
    assert _overrides(nightly.get_task("recommend")) == {
        common.RECOMMEND_K_KEY: "{{ params.k }}",
        common.RECOMMENDER_MODEL_KEY: resolved % "recommender",
    }


def test_overrides_are_valid_config_keys(dagbag):
    """The ``--set`` overrides, rendered with the params' defaults, load in the jobs' config."""
    from liger_core.config import load_settings

    for dag in dagbag.dags.values():
        params = {name: dag.params[name] for name in dag.params}
        template_env = dag.get_template_env()
        for task in (dag.get_task(t) for t in SPARK_TASKS[dag.dag_id]):
            overrides = [
                f"{key}={template_env.from_string(value).render(params=params, ti=ResolvedPair)}"
                for key, value in _overrides(task).items()
            ]
            settings = load_settings("cpu", overrides, environ={})
            if task.task_id == "recommend":
                assert settings.recommend.k == 20 and settings.recommend.model == "7"
            if task.task_id == "semantic_ids" and dag.dag_id == "liger_nightly":
                assert settings.semantic_ids.rqvae_model == "3"


class ResolvedPair:
    """What champion_ready pushes: the pair of versions the rest of the nightly run uses."""

    @staticmethod
    def xcom_pull(task_ids: str) -> dict[str, str]:
        assert task_ids == "champion_ready"
        return {"recommender": "7", "rqvae": "3"}


def test_recommender_asset_is_announced_only_after_evaluate(dagbag, common):
    retrain = dagbag.dags["liger_retrain"]
    assert common.RECOMMENDER_ASSET.uri == "liger://models/recommender"
    assert not retrain.get_task("evaluate").outlets  # a kept champion is no news
    assert retrain.get_task("announce_promotion").outlets == [common.RECOMMENDER_ASSET]
    assert dagbag.dags["liger_nightly"].schedule == "@daily"  # nightly stays time-scheduled


def test_schedules_never_fire_together(dagbag):
    """A year of fire times: retrain never starts when nightly does (same ds, same moment)."""
    from croniter import croniter

    def fires(expression: str) -> set[datetime]:
        it = croniter(expression, datetime(2026, 1, 1, tzinfo=timezone.utc))
        return {it.get_next(datetime) for _ in range(400)}

    nightly = fires({"@daily": "0 0 * * *"}[dagbag.dags["liger_nightly"].schedule])
    retrain = fires(dagbag.dags["liger_retrain"].schedule)
    assert len(retrain) == 400 and not nightly & retrain


def test_input_errors_fail_at_once_and_others_are_retried(common):
    from airflow.sdk.definitions.retry_policy import RetryAction
    from airflow.sdk.exceptions import AirflowException

    policy = common.NO_RETRY_ON_INPUT_ERRORS
    assert policy.evaluate(common.StageInputError("exit 2"), 1, 3).action == RetryAction.FAIL
    assert policy.evaluate(AirflowException("Error code is: 1."), 1, 3).action == RetryAction.DEFAULT


def _stage(common, monkeypatch, conn: str, returncode: int = 0):
    """A LigerStage whose spark-submit is replaced by a recorder (exit ``returncode``)."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
    from airflow.sdk.exceptions import AirflowException

    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", conn)
    monkeypatch.delenv(IN_PROCESS_ENV, raising=False)
    seen = {}

    def submit(self, context):
        seen.update(env=dict(self.env_vars), archives=self._archives, conf=dict(self.conf))
        self._hook = SimpleNamespace(_submit_sp=SimpleNamespace(returncode=returncode))
        if returncode:
            raise AirflowException(f"Cannot execute: spark-submit ... Error code is: {returncode}.")

    monkeypatch.setattr(SparkSubmitOperator, "execute", submit)
    return common.spark_stage("probe", "ingest", timeout=timedelta(minutes=1)), seen


def test_local_master_gets_loopback_and_no_code_archive(common, monkeypatch):
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    stage, seen = _stage(common, monkeypatch, json.dumps(LOCAL_SPARK_CONN))
    stage.execute({})
    assert seen["env"]["SPARK_LOCAL_IP"] == "127.0.0.1" and seen["archives"] is None


def test_cluster_master_ships_the_code_and_advertises_a_real_address(common, monkeypatch):
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    stage, seen = _stage(common, monkeypatch, "spark://spark-master:7077?deploy-mode=client")
    stage.execute({})
    assert "SPARK_LOCAL_IP" not in seen["env"]  # executors must reach the driver
    path, alias = seen["archives"].split("#")
    assert seen["conf"]["spark.executorEnv.PYTHONPATH"] == alias == common.CODE_ALIAS
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
    assert {"liger_jobs/spark.py", "liger_core/model/network.py", "liger_core/__init__.py"} <= names
    assert not any(name.startswith("jobs/") for name in names)  # executors import liger_jobs
    assert common.code_archive() == Path(path)  # same code, same archive


def test_exit_2_is_a_stage_input_error_and_other_codes_stay_retryable(common, monkeypatch):
    from airflow.sdk.exceptions import AirflowException

    stage, _ = _stage(common, monkeypatch, json.dumps(LOCAL_SPARK_CONN), returncode=2)
    with pytest.raises(common.StageInputError, match="rejected its config or input"):
        stage.execute({})
    stage, _ = _stage(common, monkeypatch, json.dumps(LOCAL_SPARK_CONN), returncode=1)
    with pytest.raises(AirflowException) as failure:
        stage.execute({})
    assert not isinstance(failure.value, common.StageInputError)


def _in_process_stage(common, monkeypatch, conn: str, *args: str):
    """A LigerStage for ``ingest`` with its templates rendered, in-process mode on, whose
    spark-submit fails the test if it is ever called."""
    from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", conn)
    monkeypatch.setenv(IN_PROCESS_ENV, "1")
    monkeypatch.setattr(SparkSubmitOperator, "execute", lambda self, context: pytest.fail("spark-submit was called"))
    stage = common.spark_stage("probe", "ingest", timeout=timedelta(minutes=1))
    stage.application_args = ["--ds", "2026-02-01", "--profile", "cpu", *args]
    stage.conf = {**stage.conf, "spark.driver.memory": "3g"}
    stage.env_vars = {**stage.env_vars, "LIGER_PROFILE": "cpu"}
    return stage


def test_in_process_stage_runs_the_job_here_with_the_connection_master(common, monkeypatch):
    import liger_jobs.ingest

    seen = {}

    def run(settings, ds, **options):
        seen.update(master=settings.spark.master, memory=settings.spark.driver_memory, ds=ds, ip=os.environ.get("SPARK_LOCAL_IP"))
        return {}

    monkeypatch.setattr(liger_jobs.ingest, "run", run)
    monkeypatch.delenv("SPARK_LOCAL_IP", raising=False)
    conn = {**LOCAL_SPARK_CONN, "host": "local[1]"}
    _in_process_stage(common, monkeypatch, json.dumps(conn)).execute({})
    assert seen == {"master": "local[1]", "memory": "3g", "ds": "2026-02-01", "ip": "127.0.0.1"}


@pytest.mark.parametrize("bad", [["--set", "source.no_such_key=1"], ["--mode", "nope"]])
def test_in_process_input_errors_are_stage_input_errors(common, monkeypatch, bad):
    """A config error (the job's exit 2) and arguments argparse rejects (its SystemExit,
    which must not end the Airflow process) both fail the task at once."""
    stage = _in_process_stage(common, monkeypatch, json.dumps(LOCAL_SPARK_CONN), *bad)
    with pytest.raises(common.StageInputError, match="rejected its config or input"):
        stage.execute({})


def test_a_cluster_master_is_always_submitted(common, monkeypatch):
    stage, seen = _stage(common, monkeypatch, "spark://spark-master:7077?deploy-mode=client")
    monkeypatch.setenv(IN_PROCESS_ENV, "1")
    stage.execute({})
    assert seen["archives"]  # went through spark-submit, with the code archive


def test_failure_callback_message(common, caplog):
    ti = SimpleNamespace(
        dag_id="liger_nightly",
        task_id="recommend",
        try_number=3,
        log_url="http://localhost:8080/dags/liger_nightly/runs/r1/tasks/recommend?try_number=3",
    )
    context = {
        "task_instance": ti,
        "ds": "2026-11-23",
        "exception": RuntimeError("Cannot execute: spark-submit ...\nError code is: 1."),
    }
    with caplog.at_level("ERROR", logger="liger.airflow"):
        message = common.log_task_failure(context)
    assert message == (
        "LIGER task failed: dag=liger_nightly task=recommend ds=2026-11-23 try=3 "
        "log=http://localhost:8080/dags/liger_nightly/runs/r1/tasks/recommend?try_number=3 "
        "error=RuntimeError: Cannot execute: spark-submit ... Error code is: 1."
    )
    assert "\n" not in message
    assert message in caplog.text


def test_failure_callback_tolerates_a_sparse_context(common):
    message = common.log_task_failure({"dag": SimpleNamespace(dag_id="liger_retrain"), "task": SimpleNamespace(task_id="train")})
    assert message == "LIGER task failed: dag=liger_retrain task=train ds=? try=? log=?"
    run = SimpleNamespace(run_after=datetime(2026, 11, 24, 3, tzinfo=timezone.utc))
    message = common.log_task_failure({"dag": SimpleNamespace(dag_id="liger_retrain"), "dag_run": run})
    assert " ds=2026-11-24 " in message


def test_parsing_sets_no_connection(dagbag):
    assert "AIRFLOW_CONN_LIGER_SPARK" not in os.environ  # created at setup, in the metastore


def test_setup_connection_is_local(common, monkeypatch):
    """The connection ``liger run`` creates resolves to local[*], client mode, through the provider."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", json.dumps(LOCAL_SPARK_CONN))
    hook = SparkSubmitHook(conn_id="liger_spark", spark_binary=common.spark_submit_binary())
    assert hook._connection["master"] == "local[*]"
    assert hook._connection["deploy_mode"] == "client"
    command = hook._build_spark_submit_command(str(ROOT / "jobs" / "ingest.py"))
    assert command[:3] == [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[*]"]


@pytest.mark.parametrize(
    "value, master",
    [
        ("spark://spark-master:7077?deploy-mode=client", "spark://spark-master:7077"),
        ('{"conn_type": "spark", "host": "spark://spark-master", "port": 7077}', "spark://spark-master:7077"),
        ('{"conn_type": "spark", "host": "local[2]"}', "local[2]"),
        ("yarn://resourcemanager", "yarn://resourcemanager"),
    ],
)
def test_connection_master_matches_the_provider(common, monkeypatch, value, master):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
    from airflow.sdk import BaseHook

    monkeypatch.setenv("AIRFLOW_CONN_LIGER_SPARK", value)
    assert SparkSubmitHook(conn_id="liger_spark")._connection["master"] == master
    conn = BaseHook.get_connection("liger_spark")
    assert common.connection_master(conn.conn_type, conn.host, conn.port) == master


def test_spark_task_ids_are_the_job_files_and_the_cli_stage_names(dagbag):
    from liger_jobs.cli import STAGES

    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if hasattr(task, "application"):
                assert Path(task.application).stem == task.task_id, (dag.dag_id, task.task_id)
                assert task.task_id in STAGES


def test_the_dag_folder_holds_only_dags(dagbag):
    """Astronomer's layout: every file in dags/ defines a DAG; support code is the importable
    ``liger_jobs.dag_factory``, so a helper module dropped into dags/ fails here."""
    files = {path.name for path in DAGS_DIR.iterdir() if not path.name.startswith("__")}
    assert files == {Path(dag.fileloc).name for dag in dagbag.dags.values()}


def test_dag_support_changes_nothing_at_import():
    """Importing the DAG factory (as every DAG file does at parse time) leaves the process
    environment and sys.path as it found them; Airflow's own imports come first."""
    import subprocess

    probe = (
        "import os, sys; import airflow.sdk, airflow.providers.apache.spark.operators.spark_submit; "
        "env, path = dict(os.environ), list(sys.path); import liger_jobs.dag_factory; "
        "assert dict(os.environ) == env, set(os.environ.items()) ^ set(env.items()); assert sys.path == path"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_LOCAL_IP", "LIGER_HOME")}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
