"""Benchmark helpers must be faithful: the naive inference baseline finds exactly what
production finds where the prefix index allows every code combination, and the main-job
timing counts every stage once."""

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import retrieval_paths as paths
from benchmarks.pipeline_stages import DAG_WALL, main_job_stages
from liger_jobs.pipeline import dag_done_line
from liger_core.config import ModelConfig
from liger_core.model.network import Items, LigerModel
from liger_core.retrieval.search import generative_topk

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = (3, 2, 2, 2)


def full_catalog() -> Items:
    """One item per possible semantic ID, in a shuffled order."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SIZES], indexing="ij"), -1).reshape(-1, len(SIZES))
    rng = np.random.default_rng(3)
    sid = grid[rng.permutation(len(grid))]
    return Items(torch.from_numpy(sid), torch.from_numpy(rng.normal(size=(len(sid), 6)).astype(np.float32)))


def seeded_model() -> LigerModel:
    torch.manual_seed(1)
    cfg = ModelConfig(mode="liger", d_model=8, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=16, dropout=0.0, max_history=4)
    return LigerModel(cfg, SIZES, 6).eval()


def test_items_by_scan_finds_each_id_across_chunks_and_flags_unknown_codes(monkeypatch):
    monkeypatch.setattr(paths, "SCAN_CHUNK", 5)  # several chunks for 12 rows
    sid = torch.tensor([[a, b] for a in range(4) for b in range(3)])
    item_idx = torch.arange(100, 112)
    codes = torch.tensor([[[3, 2], [0, 0], [9, 9]], [[1, 1], [0, 3], [2, 0]]])
    assert paths.items_by_scan(codes, sid, item_idx).tolist() == [[111, 100, -1], [104, -1, 106]]
    assert paths.invalid_rate(paths.items_by_scan(codes, sid, item_idx)) == pytest.approx(2 / 6)


def test_unconstrained_beam_equals_constrained_beam_when_every_id_is_an_item():
    items, model = full_catalog(), seeded_model()
    catalogue, _ = paths.Catalogue.build(model, items, np.ones(len(items.sid), dtype=bool))
    history = torch.tensor([[0, 5, 7, 2], [-1, -1, 9, 1]])
    encoded = model.encode(history, items)
    codes, scores = paths.unconstrained_beam(model, encoded, beams=6)
    mapped = paths.items_by_scan(codes, items.sid, torch.arange(len(items.sid)))
    constrained = generative_topk(model, encoded, catalogue.index.prefixes, beams=6)
    assert torch.equal(mapped, constrained.items)
    torch.testing.assert_close(scores, constrained.scores)
    assert paths.invalid_rate(mapped) == 0.0


def test_naive_hybrid_matches_production_on_a_full_catalog_and_loses_items_on_a_sparse_one():
    items, model = full_catalog(), seeded_model()
    everything = np.ones(len(items.sid), dtype=bool)
    catalogue, _ = paths.Catalogue.build(model, items, everything)
    history = torch.tensor([[0, 5, 7, 2], [-1, 3, 9, 1]])
    naive, _ = paths.naive(catalogue, history, k=4, beams=8)
    production = paths.production(catalogue, history, k=4, beams=8)
    assert torch.equal(naive.items, production.items)

    # Keep every other item: the free beam still spells the removed IDs, which map to nothing.
    kept = np.arange(0, len(items.sid), 2)
    sparse = Items(items.sid[kept], items.text[kept])
    catalogue, _ = paths.Catalogue.build(model, sparse, np.ones(len(kept), dtype=bool))
    history = torch.tensor([[7, 2], [9, 1]])
    _, mapped = paths.naive(catalogue, history, k=4, beams=8)
    assert paths.invalid_rate(mapped) > 0
    assert paths.invalid_rate(paths.constrained_candidates(catalogue, history, beams=8)) == 0


def test_main_job_stages_sum_per_dag_and_leave_out_only_training():
    runs = pd.DataFrame(
        {
            "stage": ["ingest", "train", "evaluate", "ingest", "recommend"],
            "seconds": [30.0, 400.5, 60.0, 20.0, 80.0],
            "tags.airflow.dag_id": ["liger_retrain"] * 3 + ["liger_nightly"] * 2,
        }
    )
    summary = main_job_stages(700.0, runs)
    assert summary["train_seconds"] == 400.5
    assert summary["non_training_seconds"] == 299.5  # Airflow's overhead (109 s here) counts as non-training
    assert summary["stage_seconds_by_dag"] == {"liger_retrain": 490.5, "liger_nightly": 100.0}
    assert [row["stage"] for row in summary["stages"]] == ["ingest", "train", "evaluate", "ingest", "recommend"]


def test_dag_wall_times_are_read_from_the_line_liger_run_prints():
    """The benchmark parses `liger run`'s own per-DAG line; a change of its wording must fail here."""
    log = "\n".join(["running liger_nightly ...", dag_done_line("liger_retrain", 1034.6), dag_done_line("liger_nightly", 95.4)])
    assert DAG_WALL.findall(log) == [("liger_retrain", "1035"), ("liger_nightly", "95")]
