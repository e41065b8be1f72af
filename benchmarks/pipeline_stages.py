"""Wall time and peak memory of every pipeline stage on the real catalog, then the nightly
DAG's wall time and peak memory through ``airflow dags test``. With ``--main-job`` it times
the main job instead (``liger run``, what ``make run`` runs: both DAGs through Airflow) as one
process, with every stage's seconds read back from its MLflow run and the total of everything
but the train task. ``--compare-launch`` times the main job twice from fresh homes, back to
back: stages submitted one ``spark-submit`` per task, then run in the ``dags test`` process
(``liger_jobs.in_process``, ``liger run``'s default).

Each stage runs as its own ``liger <stage>`` process, as Airflow runs it (one Spark
application per task). A sampler sums the resident set of the whole process tree (Python
driver, Spark JVM, Python workers) every 0.2 s, so a stage's peak includes Spark's JVM;
shared pages count once per process, so the sum is an upper bound. Writes
benchmarks/results/pipeline_stages_<profile>.json.

    python -m benchmarks.pipeline_stages --ds 2026-11-23 [--set train.max_steps=300 ...]
    python -m benchmarks.pipeline_stages --ds 2026-12-04 --main-job
    python -m benchmarks.pipeline_stages --ds 2026-12-07 --compare-launch --set train.max_epochs=2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import psutil

from benchmarks.machine import machine_info, previous_result, write_result
from liger_jobs.common import today
from liger_jobs.in_process import IN_PROCESS_ENV, main_job_in_process
from liger_jobs.pipeline import airflow_env
from liger_core.config import Settings, load_settings
from liger_core.platform.report import stage_runs

# label -> ``liger`` arguments (the stage names are the DAG task ids)
RETRAIN = {
    "ingest": ["ingest"],
    "embed_items": ["embed_items"],
    "semantic_ids-train": ["semantic_ids", "--mode", "train"],
    "build_sequences": ["build_sequences"],
    "train": ["train"],
    "evaluate": ["evaluate"],
}
NIGHTLY_ONLY = {"semantic_ids-assign": ["semantic_ids", "--mode", "assign"], "recommend": ["recommend"], "publish": ["publish"]}
SAMPLE_SECONDS = 0.2
DAG_WALL = re.compile(r"^(liger_\w+) succeeded in (\d+) s$", re.MULTILINE)  # liger run's line per DAG


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its descendants (0 for any that just exited)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            pass
    return total


def measured(command: Sequence[str], env: dict[str, str] | None, log_path: Path) -> dict:
    """Run ``command`` to completion; wall seconds, peak tree RSS (MiB) and exit code."""
    peak = 0
    with log_path.open("w") as log:
        started = time.perf_counter()
        child = subprocess.Popen(list(command), env=env, stdout=log, stderr=subprocess.STDOUT)
        process = psutil.Process(child.pid)
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(SAMPLE_SECONDS):
                peak = max(peak, tree_rss(process))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = child.wait()
        done.set()
        sampler.join()
    return {"seconds": round(time.perf_counter() - started, 1), "peak_rss_mib": round(peak / 2**20), "exit_code": code}


def main_job(settings: Settings, liger: str, common: list[str], ds: str, log_path: Path, in_process: bool) -> dict:
    """``liger run`` timed whole, its stages run in the ``dags test`` process or submitted
    (``liger_jobs.in_process``); its stages (in start order, with the DAG that ran them) and
    the seconds of everything but training: the main job's wall time less its train task."""
    since_ms = int(time.time() * 1000)
    result = measured([liger, "run", *common], {**os.environ, IN_PROCESS_ENV: str(int(in_process))}, log_path)
    result["stages_in_process"] = in_process
    if result["exit_code"] != 0:
        return result
    walls = {dag: float(seconds) for dag, seconds in DAG_WALL.findall(log_path.read_text(errors="replace"))}
    return {**result, "dag_wall_seconds": walls, **main_job_stages(result["seconds"], stage_runs(settings, ds, since_ms))}


def launch_comparison(liger: str, args: argparse.Namespace, logs: Path) -> dict[str, dict]:
    """The main job once per way of launching its stages, each from a fresh home of its own
    with the same data and overrides, back to back on the same machine."""
    base = load_settings(args.profile, args.overrides)
    source = base.paths.resolve(base.source.path)
    runs = {}
    for label, in_process in (("spark_submit_per_task", False), ("in_dags_test_process", True)):
        home = Path(tempfile.mkdtemp(prefix=f"liger-{label}-"))
        overrides = [*args.overrides, f"paths.home={home}", f"source.path={source}"]
        common = ["--ds", args.ds, "--profile", base.profile, *[part for item in overrides for part in ("--set", item)]]
        runs[label] = main_job(
            load_settings(args.profile, overrides), liger, common, args.ds, logs / f"main-job-{label}.log", in_process
        )
        print(label, json.dumps({k: v for k, v in runs[label].items() if k != "stages"}), flush=True)
        shutil.rmtree(home)
    return runs


def main_job_stages(wall_seconds: float, runs: pd.DataFrame) -> dict:
    """The main job's stages from their MLflow runs (``report.stage_runs``): each with its DAG,
    the seconds per DAG, and the non-training total, the job's wall time less its train tasks
    (Airflow's own overhead counts as non-training)."""
    dags = runs["tags.airflow.dag_id"] if "tags.airflow.dag_id" in runs else [None] * len(runs)
    stages = [
        {"dag": dag, "stage": stage, "seconds": float(seconds)}
        for dag, stage, seconds in zip(dags, runs["stage"], runs["seconds"])
    ]
    by_dag: dict[str, float] = {}
    for row in stages:
        if row["dag"]:
            by_dag[row["dag"]] = round(by_dag.get(row["dag"], 0.0) + row["seconds"], 1)
    train = round(sum(row["seconds"] for row in stages if row["stage"] == "train"), 1)
    return {
        "stages": stages,
        "stage_seconds_by_dag": by_dag,
        "train_seconds": train,
        "non_training_seconds": round(wall_seconds - train, 1),
    }


def stage_by_stage(
    settings: Settings, args: argparse.Namespace, liger: str, common: list[str], logs: Path, previous: dict
) -> int:
    """Every stage as its own ``liger <stage>`` process, then the nightly DAG through ``airflow
    dags test`` (its stages submitted or in process as ``LIGER_SPARK_IN_PROCESS`` says, unset
    meaning submitted, as under a scheduler); writes the result, keeping the main-job blocks."""
    name = f"pipeline_stages_{settings.profile}"
    stages: dict[str, dict] = {}
    for stage, command in {**RETRAIN, **NIGHTLY_ONLY}.items():
        result = measured([liger, *command, *common], None, logs / f"{stage}.log")
        stages[stage] = result
        print(f"{stage:<20}{result['seconds']:>9.1f} s{result['peak_rss_mib']:>9} MiB  exit {result['exit_code']}", flush=True)
        if result["exit_code"] != 0:
            print(f"stage {stage} failed; see {logs / f'{stage}.log'}", file=sys.stderr)
            return 1

    nightly = None
    if not args.skip_nightly_dag:
        env = airflow_env(settings, args.overrides)
        airflow = str(Path(sys.executable).with_name("airflow"))
        migrated = measured([airflow, "db", "migrate"], env, logs / "airflow-db-migrate.log")
        if migrated["exit_code"] != 0:
            print(f"airflow db migrate failed; see {logs / 'airflow-db-migrate.log'}", file=sys.stderr)
            return 1
        nightly = measured(
            [airflow, "dags", "test", "liger_nightly", args.ds, "--conf", json.dumps({"profile": settings.profile})],
            env,
            logs / "liger_nightly.log",
        )
        nightly["stages_in_process"] = env.get(IN_PROCESS_ENV) == "1"
        print(
            f"{'liger_nightly DAG':<14}{nightly['seconds']:>9.1f} s{nightly['peak_rss_mib']:>9} MiB  exit {nightly['exit_code']}",
            flush=True,
        )
        if nightly["exit_code"] != 0:
            print(f"liger_nightly failed; see {logs / 'liger_nightly.log'}", file=sys.stderr)
            return 1

    path = write_result(
        name,
        {
            **{key: previous[key] for key in ("main_job", "launch_comparison") if key in previous},
            **stamp(settings, args),
            "spark_master": settings.spark.master,
            "spark_driver_memory": settings.spark.driver_memory,
            "stages": stages,
            "nightly_dag": nightly,
        },
    )
    print(f"wrote {path}")
    return 0


def stamp(settings: Settings, args: argparse.Namespace) -> dict:
    """Machine, versions and run settings of a result."""
    return {**machine_info(), "profile": settings.profile, "ds": args.ds, "overrides": args.overrides}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", default=today())
    parser.add_argument("--profile", default=None)
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], help="config override passed to every stage and to the DAG run"
    )
    parser.add_argument("--skip-nightly-dag", action="store_true")
    parser.add_argument("--main-job", action="store_true", help="time `liger run` whole instead of stage by stage")
    parser.add_argument(
        "--compare-launch",
        action="store_true",
        help="time `liger run` twice, from fresh homes: stages submitted per task, then run in the dags test process",
    )
    args = parser.parse_args(argv)
    settings = load_settings(args.profile, args.overrides)
    logs = Path(settings.paths.state_dir) / "logs" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    liger = str(Path(sys.executable).with_name("liger"))
    common = ["--ds", args.ds, "--profile", settings.profile, *[part for item in args.overrides for part in ("--set", item)]]
    name = f"pipeline_stages_{settings.profile}"
    previous = previous_result(name)  # each mode keeps the other's block
    if args.compare_launch:
        runs = launch_comparison(liger, args, logs)
        print(f"wrote {write_result(name, {**previous, 'launch_comparison': {**stamp(settings, args), **runs}})}")
        return int(any(run["exit_code"] for run in runs.values()))
    if args.main_job:
        job = main_job(settings, liger, common, args.ds, logs / "main-job.log", main_job_in_process(os.environ))
        print(json.dumps(job, indent=1), flush=True)
        if job["exit_code"] != 0:
            print(f"liger run failed; see {logs / 'main-job.log'}", file=sys.stderr)
            return 1
        print(f"wrote {write_result(name, {**previous, 'main_job': {**stamp(settings, args), **job}})}")
        return 0

    return stage_by_stage(settings, args, liger, common, logs, previous)


if __name__ == "__main__":
    sys.exit(main())
