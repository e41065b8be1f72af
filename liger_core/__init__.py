"""LIGER core library: pure Python/torch logic, no Spark or Airflow imports (DESIGN §3)."""

__version__ = "0.1.0"
