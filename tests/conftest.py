"""Shared fixtures: a tiny tabular catalog and settings that keep all state under tmp."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from liger_core.config import Settings, load_settings

# py4j logs at INFO while the interpreter shuts down, after pytest has closed its capture
# streams; that prints a "Logging error" traceback below pytest's summary line.
logging.getLogger("py4j").setLevel(logging.WARNING)

ITEMS = [
    ("item_id", "title", "brand", "categories", "price"),
    ("A1", "Red Nail Polish", "OPI", "Beauty > Makeup > Nails", "5.99"),
    ("A2", "Blue Nail Polish", "OPI", "Beauty > Makeup > Nails", "6.49"),
    ("A3", "", "", "Beauty > Skin Care > Face", ""),  # no title: rendered from categories
    ("A4", "Hair Spray Extra Hold", "Aqua", "Beauty > Hair Care", "3.10"),
    ("A5", "Mascara Black", "Blinc", "Beauty > Makeup > Eyes", "12.00"),
]
EVENTS = [
    ("user_id", "item_id", "timestamp"),
    ("u1", "A1", "1300000000"),
    ("u1", "A2", "1300000000"),
    ("u1", "A4", "1300086400"),
    ("u2", "A2", "1300000000"),
    ("u2", "A3", "1300172800"),
    ("u2", "A5", "1300172800"),
    ("u3", "A4", "1310000000"),
    ("u3", "A1", "1310000000"),
    ("u3", "A5", "1320000000"),
]


# An RQ-VAE small enough for a five-item catalog: 2 levels x 4 codes + collision code.
SMALL_RQVAE = [
    "rqvae.hidden_dims=[32]",
    "rqvae.latent_dim=8",
    "rqvae.levels=2",
    "rqvae.codebook_size=4",
    "rqvae.epochs=30",
    "rqvae.batch_size=8",
    "rqvae.eval_every=10",
    "rqvae.reseed_every=5",
    "semantic_ids.max_collisions=8",
]


# A tiny model and training budget for job tests on the five-item catalog.
TINY_MODEL = [
    "model.d_model=16",
    "model.heads=2",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "model.ff_dim=32",
    "train.batch_size=4",
    "train.max_steps=6",
    "train.warmup_fraction=0.05",
    "train.eval_every=3",
    "train.checkpoint_every=3",
    "train.beams=4",
    "train.time_budget_minutes=0",
    "evaluate.beam_sweep=[4, 5]",
    "evaluate.baseline_floor=false",
    "recommend.k=2",
]
# Five events per user, so every user has training examples; A3 and A5 occur only as
# validation/test targets, which makes them cold-start items.
SEQUENCES = {"u1": "A1 A2 A4 A5 A3", "u2": "A2 A4 A1 A2 A5", "u3": "A4 A1 A2 A4 A5", "u4": "A1 A4 A2 A1 A4"}


def write_tsv(path: Path, rows: list[tuple[str, ...]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\t".join(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.fixture
def tiny_source(tmp_path: Path) -> Path:
    """A five-item catalog and nine events in the generic TSV shape."""
    folder = tmp_path / "source"
    write_tsv(folder / "items.tsv", ITEMS)
    write_tsv(folder / "events.tsv", EVENTS)
    return folder


def write_trainable_source(folder: Path) -> Path:
    """The tiny catalog with the SEQUENCES events (one day apart) in ``folder``."""
    rows = [
        (user, item, str(1300000000 + 86400 * n)) for user, items in SEQUENCES.items() for n, item in enumerate(items.split())
    ]
    write_tsv(folder / "items.tsv", ITEMS)
    write_tsv(folder / "events.tsv", [EVENTS[0], *rows])
    return folder


@pytest.fixture
def trainable_source(tiny_source: Path) -> Path:
    return write_trainable_source(tiny_source)


def settings_overrides(home: Path, source: Path, *extra: str) -> list[str]:
    """The ``--set`` overrides of a test stage: its own home (warehouse, MLflow) and the tiny source."""
    return [
        f"paths.home={home}",
        f"source.path={source}",
        "source.format=tabular",
        "source.events_file=events.tsv",
        "source.items_file=items.tsv",
        "source.item_columns={}",
        "spark.master=local[2]",
        "spark.driver_memory=1g",
        *extra,
    ]


def make_settings(home: Path, source: Path, *extra: str) -> Settings:
    return load_settings("cpu", settings_overrides(home, source, *extra), environ={})


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_source: Path) -> Settings:
    return make_settings(tmp_path / "home", tiny_source)


@contextmanager
def local_mlflow(folder: Path, experiment: str) -> Iterator[None]:
    """A throwaway SQLite MLflow store with its artifacts in ``folder``: MLflow's own default
    for a database store is ``./mlruns`` of the working directory, the checkout."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder}/m.db")
    mlflow.set_experiment(experiment_id=mlflow.create_experiment(experiment, artifact_location=(folder / "artifacts").as_uri()))
    try:
        yield
    finally:
        mlflow.set_tracking_uri(None)
