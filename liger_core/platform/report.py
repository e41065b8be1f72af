"""The closing report of a pipeline run, assembled from MLflow runs and the output tables."""

from __future__ import annotations

from pathlib import Path

import duckdb
import mlflow
import pandas as pd

from liger_core.config import Settings
from liger_core.serving.evaluation import hybrid_sweep_table, results_table
from liger_core.secrets import redact_uri
from liger_core.platform.sql_catalog import query, register_duckdb_views
from liger_core.platform.tracking import configure


def stage_runs(settings: Settings, ds: str, since_ms: int) -> pd.DataFrame:
    """Stage runs for ``ds`` started after ``since_ms``: stage, status, seconds, metrics."""
    configure(settings)
    runs = mlflow.search_runs(
        experiment_names=[settings.tracking.experiment],
        filter_string=f"tags.ds = '{ds}' and tags.stage != 'pipeline' and attributes.start_time >= {since_ms}",
        order_by=["attributes.start_time ASC"],
    )
    if runs.empty:
        return runs
    seconds = (runs["end_time"] - runs["start_time"]).dt.total_seconds()
    return runs.assign(stage=runs["tags.stage"], seconds=seconds.round(1))


def evaluation_metrics(runs: pd.DataFrame) -> dict[str, float]:
    """The last evaluate run's metrics, with MLflow's ``_at_`` turned back into ``@``."""
    if runs.empty:
        return {}
    evaluated = runs[runs["stage"] == "evaluate"]
    if evaluated.empty:
        return {}
    row = evaluated.iloc[-1]
    return {k[len("metrics.") :].replace("_at_", "@"): v for k, v in row.items() if k.startswith("metrics.") and pd.notna(v)}


def gate_reason(runs: pd.DataFrame) -> str | None:
    """Why the last evaluate run did or did not promote its recommender."""
    if runs.empty or "params.gate_reason" not in runs:
        return None
    reasons = runs.loc[runs["stage"] == "evaluate", "params.gate_reason"].dropna()
    return reasons.iloc[-1] if len(reasons) else None


LOCAL_UI = "http://127.0.0.1:5000"
DATA_DOCS = "gx/uncommitted/data_docs/local_site/index.html"  # under the state folder


def where_to_look(settings: Settings, runs: pd.DataFrame) -> list[str]:
    """How to open each stage's MLflow run page, and where its plots are."""
    uri = settings.tracking_uri
    server = uri.rstrip("/") if uri.startswith(("http://", "https://")) else LOCAL_UI
    lines = ["", "Where to look:"]
    if server == LOCAL_UI:
        lines.append(f"  MLflow UI: .venv/bin/mlflow ui --backend-store-uri {settings.tracking_uri_shown}  (then the links)")
    client = mlflow.MlflowClient()
    for row in runs.itertuples():
        lines.append(f"  {row.stage:<22} {redact_uri(server)}/#/experiments/{row.experiment_id}/runs/{row.run_id}")
        plots = [a.path for a in client.list_artifacts(row.run_id, "plots") if a.path.endswith(".png")]
        lines += [f"    plot: {row.artifact_uri}/{path}" for path in plots]
    docs = Path(settings.paths.state_dir) / DATA_DOCS
    if docs.is_file():
        lines.append(f"  Great Expectations Data Docs: {docs}")
    return lines


def render_report(settings: Settings, ds: str, runs: pd.DataFrame, beam_sweep: list[int]) -> str:
    lines = [f"LIGER pipeline report, ds={ds}, profile={settings.profile}", "", "Stage timings (s):"]
    for row in runs.itertuples():
        lines.append(f"  {row.stage:<22} {row.seconds:>8.1f}  {row.status}")
    lines += where_to_look(settings, runs)
    metrics = evaluation_metrics(runs)
    if metrics:
        lines += ["", "Evaluation (test split):", results_table(metrics).to_string(index=False, float_format="%.4f")]
        sweep = hybrid_sweep_table(metrics, beam_sweep)
        if not sweep.empty:
            lines += ["", "Hybrid by beams K:", sweep.to_string(index=False, float_format="%.4f")]
    warehouse = settings.paths.warehouse_uri
    lines += ["", f"Recommendations: {warehouse}/recommendations/ds={ds}/"]
    if "://" in warehouse:
        lines.append("(remote warehouse: query it with the Spark views in sql/spark/)")
        return "\n".join(lines)
    warehouse = warehouse.removeprefix("file:")
    if not any((Path(warehouse) / "recommendations" / f"ds={ds}").glob("*.parquet")):
        # The nightly run skips itself until a recommender has been promoted.
        reason = gate_reason(runs)
        lines += [
            "  none: no recommender has been promoted, so the nightly run served nothing."
            + (f"\n  Last promotion gate: {reason}." if reason else "")
        ]
        return "\n".join(lines)
    con = duckdb.connect()
    register_duckdb_views(con, warehouse, ds)
    sql = query("source_mix")
    lines += ["", "Example query (sql/queries/source_mix.sql, DuckDB):", sql, "", con.execute(sql).df().to_string(index=False)]
    user = con.execute("SELECT min(user_id) FROM recommendations").fetchall()[0][0]
    top = query("user_top_k", user_id=user)
    lines += [
        "",
        f"Top recommendations of user {user} (sql/queries/user_top_k.sql):",
        con.execute(top).df().head(10).to_string(index=False),
    ]
    return "\n".join(lines)
