"""Semantic IDs: the RQ-VAE, its saved form, and stable ID assignment with collision codes."""
