"""Figures logged with training runs. Built as plain ``Figure`` objects, not through pyplot:
no backend to choose, no display needed and no global figure registry to clean up."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from liger_core.ids.rqvae import RQVAETrainResult


def rqvae_figures(report: RQVAETrainResult, codes: np.ndarray, codebook_size: int) -> dict[str, Figure]:
    """``loss_curve``: training loss per epoch; ``code_usage``: items per code, one panel per level."""
    loss = Figure(figsize=(6, 3.5))
    ax = loss.subplots()
    ax.plot(range(1, len(report.losses) + 1), report.losses)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="RQ-VAE training loss")
    levels = codes.shape[1]
    usage = Figure(figsize=(4 * levels, 3.2))
    axes = usage.subplots(1, levels, squeeze=False)
    for level, axis in enumerate(axes[0]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        axis.bar(np.arange(codebook_size), counts, width=1.0)
        axis.set(title=f"level {level + 1}: {(counts > 0).mean():.0%} of codes used", xlabel="code", ylabel="items")
    usage.tight_layout()
    return {"loss_curve": loss, "code_usage": usage}


def hybrid_sweep_figure(sweep) -> Figure:
    """Hybrid Recall@10 / NDCG@10 against the number of beams K, per target segment."""
    figure = Figure(figsize=(9, 3.5))
    axes = figure.subplots(1, 2)
    for axis, metric in zip(axes, ("R@10", "N@10")):
        for segment, rows in sweep.groupby("segment"):
            axis.plot(rows["K"], rows[metric], marker="o", label=segment)
        axis.set(xlabel="beams K", ylabel=metric, title=f"LIGER hybrid {metric}")
        axis.legend()
    figure.tight_layout()
    return figure


def training_curve_figure(curve: list[dict], metric: str) -> Figure:
    """The watched validation metric at every evaluation of a recommender training run."""
    figure = Figure(figsize=(6, 3.5))
    axis = figure.subplots()
    axis.plot([point["step"] for point in curve], [point[metric] for point in curve], marker="o")
    axis.set(xlabel="step", ylabel=metric, title="Recommender validation during training")
    figure.tight_layout()
    return figure
