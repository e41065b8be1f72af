"""Figures logged with training runs (headless: the Agg backend, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from liger_core.rqvae import TrainReport  # noqa: E402


def rqvae_figures(report: TrainReport, codes: np.ndarray, codebook_size: int) -> dict[str, plt.Figure]:
    """``loss_curve``: training loss per epoch; ``code_usage``: items per code, one panel per level."""
    loss, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(range(1, len(report.losses) + 1), report.losses)
    ax.set(xlabel="epoch", ylabel="loss", yscale="log", title="RQ-VAE training loss")
    levels = codes.shape[1]
    usage, axes = plt.subplots(1, levels, figsize=(4 * levels, 3.2), squeeze=False)
    for level, axis in enumerate(axes[0]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        axis.bar(np.arange(codebook_size), counts, width=1.0)
        axis.set(title=f"level {level + 1}: {(counts > 0).mean():.0%} of codes used",
                 xlabel="code", ylabel="items")
    usage.tight_layout()
    return {"loss_curve": loss, "code_usage": usage}


def hybrid_sweep_figure(sweep) -> plt.Figure:
    """Hybrid Recall@10 / NDCG@10 against the number of beams K, per target segment."""
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, metric in zip(axes, ("R@10", "N@10")):
        for segment, rows in sweep.groupby("segment"):
            axis.plot(rows["K"], rows[metric], marker="o", label=segment)
        axis.set(xlabel="beams K", ylabel=metric, title=f"LIGER hybrid {metric}")
        axis.legend()
    figure.tight_layout()
    return figure


def training_curve_figure(curve: list[dict], metric: str) -> plt.Figure:
    """The watched validation metric at every evaluation of a recommender training run."""
    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot([point["step"] for point in curve], [point[metric] for point in curve], marker="o")
    axis.set(xlabel="step", ylabel=metric, title="Recommender validation during training")
    figure.tight_layout()
    return figure
