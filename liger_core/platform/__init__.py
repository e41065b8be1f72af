"""Adapters to the platform: MLflow tracking and registry, Great Expectations suites,
DuckDB/PostgreSQL SQL, plots and the closing report. The only layer that imports mlflow,
great_expectations, duckdb, psycopg or matplotlib; nothing here acts at import time.
"""
