#!/usr/bin/env bash
# Start `airflow standalone` with the project's DAGs in its own process group; Ctrl-C (or
# SIGTERM) stops the whole group, so no scheduler or api-server is left behind.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$root/var/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$root/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export PATH="$root/.venv/bin:$PATH"
airflow db migrate >/dev/null
python -m liger_jobs.airflow_objects  # the liger_spark connection and liger_warehouse pool
setsid airflow standalone &
group=$!
trap 'kill -TERM -- -$group 2>/dev/null; wait $group 2>/dev/null; echo "airflow standalone stopped"' INT TERM EXIT
echo "airflow standalone running (process group $group); UI on http://localhost:8080, password in $AIRFLOW_HOME/simple_auth_manager_passwords.json.generated"
wait $group
