"""Benchmark scripts: print a table and write JSON results; never run by CI."""
