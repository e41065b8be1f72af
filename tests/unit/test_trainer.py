from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from liger_core.config import ModelConfig, TrainConfig
from liger_core.errors import ConfigError
from liger_core.retrieval.metrics import recall_at_k
from liger_core.model.network import LigerModel
from liger_core.data.sequences import build_split
from liger_core.data.synthetic import make_synthetic
from liger_core.training.schedule import LoopState, lr_factor, progress, step_budget, stop_reason
from liger_core.training.trainer import CHECKPOINT, train


pytestmark = pytest.mark.usefixtures("one_thread")


MODEL = ModelConfig(d_model=32, heads=2, encoder_layers=1, decoder_layers=1, ff_dim=64, dropout=0.1)
TRAIN = TrainConfig(
    batch_size=64,
    max_steps=12,
    lr=3e-3,
    warmup_fraction=0.05,
    eval_every=4,
    checkpoint_every=4,
    log_every=4,
    beams=10,
    eval_users=60,
    device="cpu",
)


@pytest.fixture(scope="module")
def data():
    catalog, sequences = make_synthetic(n_clusters=8, items_per_cluster=10, n_users=500, seed=0)
    return catalog, build_split(sequences, max_len=20, n_items=catalog.n_items)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_lr_warms_up_then_decays_to_zero():
    assert lr_factor(0.01, 0.05) == pytest.approx(0.2)
    assert lr_factor(0.05, 0.05) == 1.0
    assert lr_factor(0.525, 0.05) == pytest.approx(0.5)
    assert lr_factor(1.0, 0.05) == pytest.approx(0.0) and lr_factor(0.0, 0.0) == 1.0
    assert lr_factor(1.7, 0.05) == pytest.approx(0.0)  # past the end stays at 0


def test_schedule_follows_whichever_budget_ends_first():
    assert progress(49, 100, elapsed=0.0, budget_seconds=0) == pytest.approx(0.5)
    assert progress(49, 100, elapsed=90.0, budget_seconds=100.0) == pytest.approx(0.9)
    assert progress(89, 100, elapsed=10.0, budget_seconds=100.0) == pytest.approx(0.9)
    # a run stopped by its 20-minute budget has annealed to ~0, whatever max_steps says
    assert lr_factor(progress(3_500, 20_000, 1_199.0, 1_200.0), 0.05) < 1e-5


def test_stop_policy_puts_patience_before_the_step_and_time_budgets():
    cfg = TRAIN.model_copy(update=dict(patience=3, max_steps=100, time_budget_minutes=1.0))
    assert stop_reason(LoopState(step=99, bad_evals=2), cfg, elapsed=59.0, max_steps=100) is None
    assert stop_reason(LoopState(step=100, bad_evals=3), cfg, elapsed=60.0, max_steps=100) == "early_stop"
    assert stop_reason(LoopState(step=100, bad_evals=2), cfg, elapsed=60.0, max_steps=100) == "max_steps"
    assert stop_reason(LoopState(step=50), cfg, elapsed=60.0, max_steps=100) == "time_budget"
    no_budget = cfg.model_copy(update=dict(time_budget_minutes=0.0))
    assert stop_reason(LoopState(step=50), no_budget, elapsed=1e9, max_steps=100) is None
    assert stop_reason(LoopState(step=50), no_budget, elapsed=0.0, max_steps=50) == "max_steps"


def test_an_epoch_cap_shrinks_the_step_budget_never_grows_it():
    cfg = TRAIN.model_copy(update=dict(batch_size=100, max_steps=1_000))
    assert step_budget(cfg, targets_per_epoch=1_050) == 1_000  # no cap
    assert step_budget(cfg.model_copy(update=dict(max_epochs=2.0)), 1_050) == 21  # ceil(2 x 1,050 / 100)
    assert step_budget(cfg.model_copy(update=dict(max_epochs=500.0)), 1_050) == 1_000  # max_steps still binds
    assert step_budget(cfg.model_copy(update=dict(max_epochs=0.01)), 10) == 1  # at least one step


def test_training_stops_after_max_epochs_with_the_schedule_annealed(data, tmp_path):
    catalog, split = data
    cfg = TRAIN.model_copy(update=dict(max_steps=10_000, max_epochs=1.0, eval_every=1_000, log_every=1))
    logged: dict[int, dict] = {}
    result = train(MODEL, cfg, catalog, split, tmp_path, log=lambda metrics, step: logged.setdefault(step, metrics))
    expected = -(-len(split.train) // cfg.batch_size)
    assert result.stopped_reason == "max_steps" and result.step == expected
    assert 0.9 < result.epochs < 1.2  # the causal loader packs whole sequences, so a batch holds about batch_size targets
    assert logged[expected]["lr"] < 0.01 * cfg.lr  # annealed at the cap, not at max_steps


def test_learns_the_planted_structure_far_better_than_popularity(data, tmp_path):
    catalog, split = data
    popular = np.argsort(-np.bincount(split.train.targets, minlength=catalog.n_items))[:10]
    popularity = recall_at_k(np.tile(popular, (len(split.valid), 1)), split.valid.targets, 10).mean()
    cfg = TRAIN.model_copy(update=dict(max_steps=300, eval_every=300, eval_users=0))
    result = train(MODEL, cfg, catalog, split, tmp_path)
    metrics = result.best_metrics
    assert result.stopped_reason == "max_steps" and result.step == 300
    assert metrics["val_users"] == len(split.valid)
    assert metrics["val_generative_recall@10"] > popularity + 0.3, (metrics, popularity)
    assert metrics["val_hybrid_recall@10"] > popularity + 0.3, (metrics, popularity)
    assert result.samples_per_second > 0 and not result.model.training


class Killed(Exception):
    pass


def test_killed_run_resumes_from_its_checkpoint_and_ends_identical(data, tmp_path):
    catalog, split = data
    full = train(MODEL, TRAIN, catalog, split, tmp_path / "full")

    def kill_at_8(metrics, step):
        if step == 8:  # before step 8's checkpoint is written: last.pt holds step 4
            raise Killed

    with pytest.raises(Killed):
        train(MODEL, TRAIN, catalog, split, tmp_path / "killed", kill_at_8)
    assert torch.load(tmp_path / "killed" / CHECKPOINT, weights_only=True)["state"]["step"] == 4

    logged = []
    resumed = train(MODEL, TRAIN, catalog, split, tmp_path / "killed", lambda m, s: logged.append(s))
    assert resumed.start_step == 4 and resumed.step == 12
    assert logged == [8, 12]
    a, b = weights(tmp_path / "full" / CHECKPOINT), weights(tmp_path / "killed" / CHECKPOINT)
    assert all(torch.equal(a[k], b[k]) for k in a)  # bitwise, dropout RNG included
    assert all(torch.equal(x, y) for x, y in zip(full.model.state_dict().values(), resumed.model.state_dict().values()))
    assert resumed.history == full.history and resumed.best_metrics == full.best_metrics

    again = train(MODEL, TRAIN, catalog, split, tmp_path / "killed")  # finished: nothing to do
    assert again.start_step == again.step == 12 and again.history == full.history


def test_time_budget_stops_early_and_still_evaluates(data, tmp_path):
    catalog, split = data
    cfg = TRAIN.model_copy(update=dict(max_steps=100_000, time_budget_minutes=0.5 / 60))
    result = train(MODEL, cfg, catalog, split, tmp_path)
    assert result.stopped_reason == "time_budget" and 0 < result.step < 100_000
    assert result.history[-1]["step"] == result.step and result.seconds >= 0.5


def test_early_stopping_after_patience_evaluations_without_improvement(data, tmp_path):
    catalog, split = data
    frozen = TRAIN.model_copy(update=dict(lr=1e-12, eval_every=2, patience=2, max_steps=100))
    result = train(MODEL, frozen, catalog, split, tmp_path)
    assert result.stopped_reason == "early_stop" and result.step == 6
    assert [h["step"] for h in result.history] == [2, 4, 6]
    assert result.best_metrics == {k: v for k, v in result.history[0].items() if k != "step"}


def test_configuration_mistakes_fail_fast(data, tmp_path):
    catalog, split = data
    with pytest.raises(ConfigError, match="early_stop_metric.*tiger"):
        tiger = MODEL.model_copy(update=dict(mode="tiger"))
        train(tiger, TRAIN.model_copy(update=dict(early_stop_metric="val_hybrid_ndcg@10")), catalog, split, tmp_path)
    train(MODEL, TRAIN.model_copy(update=dict(max_steps=1)), catalog, split, tmp_path)
    with pytest.raises(ConfigError, match="another model config"):
        train(MODEL.model_copy(update=dict(d_model=64)), TRAIN, catalog, split, tmp_path)


def _ddp_data():
    catalog, sequences = make_synthetic(n_users=200, seed=1)
    return catalog, build_split(sequences, n_items=catalog.n_items)


def _ddp_worker(rank: int, world: int, init_file: str, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        catalog, split = _ddp_data()
        cfg = TRAIN.model_copy(update=dict(max_steps=6, eval_every=3, checkpoint_every=3))
        result = train(MODEL, cfg, catalog, split, Path(folder) / "checkpoints")
        torch.save(
            {"model": result.model.state_dict(), "metrics": result.best_metrics, "step": result.step},
            Path(folder) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_end_with_identical_weights(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["step"] == r1["step"] == 6
    assert all(torch.equal(r0["model"][k], r1["model"][k]) for k in r0["model"])
    assert r0["metrics"] == r1["metrics"] and r0["metrics"]["val_users"] > 0
    checkpoint = torch.load(tmp_path / "checkpoints" / CHECKPOINT, weights_only=True)
    assert checkpoint["state"]["step"] == 6 and len(checkpoint["rng"]) == 2
    catalog, _ = _ddp_data()
    torch.manual_seed(TRAIN.seed)  # the trainer's initial weights; training moved them
    initial = LigerModel(MODEL, catalog.code_sizes, catalog.text_dim).state_dict()
    assert initial.keys() == r0["model"].keys()
    assert not any(torch.equal(initial[k], r0["model"][k]) for k in initial if "weight" in k)
