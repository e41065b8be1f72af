"""Ranking: constrained beam search, dense and hybrid top-k, metrics per method and segment,
the hybrid blend chosen on validation and the training-free baselines.
"""
