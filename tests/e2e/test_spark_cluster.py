"""The stages on a real Spark cluster: a standalone master and worker started from the
pyspark wheel, the embed and recommend stages submitted to it by spark-submit as the DAGs
submit them (client mode, the project's code shipped to the executors as an archive), their
tables checked.

The champion models come from in-process stages on local Spark first (``served``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from liger_jobs import build_sequences, ingest, semantic_ids
from liger_jobs.spark import spark_session
from liger_jobs.warehouse import Warehouse

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TONIGHT = "2026-02-02"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "spark-class"), *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _alive_workers(ui_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except OSError:
        return 0


@pytest.fixture
def cluster(tmp_path):
    """``spark://127.0.0.1:<port>`` with one registered worker; both stopped afterwards."""
    port, ui_port = free_port(), free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable}  # finds the Spark home
    master = _start(
        ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)],
        tmp_path / "master.log",
        env,
    )
    worker = _start(
        [
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "2g",
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(tmp_path / "work"),
            f"spark://127.0.0.1:{port}",
        ],
        tmp_path / "worker.log",
        env,
    )
    try:
        deadline = time.monotonic() + 120
        while _alive_workers(ui_port) < 1:
            assert time.monotonic() < deadline, (tmp_path / "worker.log").read_text()[-2000:]
            assert master.poll() is None and worker.poll() is None, "a Spark daemon exited"
            time.sleep(1)
        yield f"spark://127.0.0.1:{port}"
    finally:
        for process in (worker, master):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)


def submit(master: str, job: str, ds: str, overrides: list[str], log: Path) -> float:
    """spark-submit one stage as ``LigerStage`` does for a cluster connection; its seconds."""
    from liger_jobs.dag_factory import executor_code_options

    archives, code_conf = executor_code_options()
    command = [
        str(BIN / "spark-submit"),
        "--master",
        master,
        "--deploy-mode",
        "client",
        "--archives",
        archives,
        *[arg for key, value in code_conf.items() for arg in ("--conf", f"{key}={value}")],
        "--driver-memory",
        "1g",
        "--conf",
        "spark.driver.extraJavaOptions=-Duser.timezone=UTC",
        "--conf",
        "spark.executor.memory=1g",
        str(ROOT / "jobs" / f"{job}.py"),
        "--ds",
        ds,
        "--profile",
        "cpu",
        *[arg for item in overrides for arg in ("--set", item)],
    ]
    env = {
        **os.environ,
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }  # one host: the driver's address is loopback here
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900)
    assert done.returncode == 0, log.read_text()[-4000:]
    return time.perf_counter() - started


def test_embed_and_recommend_run_on_a_standalone_cluster(tmp_path, served, cluster):
    settings = served.settings
    spark = spark_session(settings)
    ingest.run(settings, TONIGHT, spark)
    overrides = [item for item in served.overrides if not item.startswith("spark.")]  # spark-submit's master
    seconds = {"embed_items": submit(cluster, "embed_items", TONIGHT, overrides, tmp_path / "embed.log")}
    semantic_ids.run_assign(settings, TONIGHT, spark)
    build_sequences.run(settings, TONIGHT, spark)
    seconds["recommend"] = submit(cluster, "recommend", TONIGHT, overrides, tmp_path / "recommend.log")
    print(f"cluster stage seconds: {json.dumps({k: round(v, 1) for k, v in seconds.items()})}")

    # both applications ran executors on the worker (one work folder per application)
    assert len(list((tmp_path / "work").glob("app-*"))) == 2
    warehouse = Warehouse(spark, settings.paths.warehouse_uri)
    embedded = warehouse.read("item_embeddings", TONIGHT).toPandas()
    assert len(embedded) == 5 and embedded["embedding"].map(len).eq(384).all()
    rows = warehouse.read("recommendations", TONIGHT).toPandas()
    # u1 has seen every in-set item and history is excluded: only the others get rows
    assert set(rows["user_id"]) == {"u2", "u3", "u4"} and set(rows["model_version"]) == {served.champion}
