"""SQL files by engine, shipped as package data ``liger_core.sql`` (see README.md)."""
