"""Spark applications, one per pipeline stage: read tables, call liger_core, write tables."""
