#!/usr/bin/env bash
# Entry point of the LIGER image: the first argument picks the program.
#
#   airflow ...        Airflow CLI (api-server, scheduler, dag-processor, db migrate, dags test, ...)
#   liger ...          the pipeline CLI (liger config | ingest | embed_items | run ...)
#   spark-submit ...   a Spark application, e.g. spark-submit jobs/ingest.py --ds 2026-11-23
#   spark-master       Spark standalone master (foreground)
#   spark-worker       Spark standalone worker registered with $SPARK_MASTER_URL (foreground)
#   mlflow ...         MLflow CLI (mlflow server ...)
#   help               this text
#   anything else      executed as given (bash, python, ...)
#
# Works outside the image too, with the project's venv on PATH:
#   PATH=.venv/bin:$PATH bash docker/entrypoint.sh liger config
set -euo pipefail

usage() {
    sed -n '2,11s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

# The pip-installed Spark launchers find their Spark home with $PYSPARK_PYTHON (python3 on
# PATH otherwise), and executors must run the same interpreter as the driver.
if [[ -z "${PYSPARK_PYTHON:-}" ]]; then
    PYSPARK_PYTHON="$(command -v python || command -v python3 || true)"
fi
export PYSPARK_PYTHON
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-${PYSPARK_PYTHON}}"

command_name="${1:-help}"
case "${command_name}" in
    airflow | liger | spark-submit | mlflow)
        exec "$@"
        ;;
    spark-master)
        shift
        exec spark-class org.apache.spark.deploy.master.Master \
            --host "${SPARK_MASTER_HOST:-${HOSTNAME:-localhost}}" \
            --port "${SPARK_MASTER_PORT:-7077}" \
            --webui-port "${SPARK_MASTER_WEBUI_PORT:-8080}" "$@"
        ;;
    spark-worker)
        shift
        worker_args=(--webui-port "${SPARK_WORKER_WEBUI_PORT:-8081}"
                     --work-dir "${SPARK_WORKER_DIR:-/tmp/spark-worker}")
        [[ -n "${SPARK_WORKER_CORES:-}" ]] && worker_args+=(--cores "${SPARK_WORKER_CORES}")
        [[ -n "${SPARK_WORKER_MEMORY:-}" ]] && worker_args+=(--memory "${SPARK_WORKER_MEMORY}")
        exec spark-class org.apache.spark.deploy.worker.Worker "${worker_args[@]}" "$@" \
            "${SPARK_MASTER_URL:-spark://spark-master:7077}"
        ;;
    help | -h | --help)
        usage
        ;;
    *)
        exec "$@"
        ;;
esac
