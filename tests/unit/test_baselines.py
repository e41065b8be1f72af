import numpy as np
import pytest

from liger_core.retrieval.baselines import TransitionCounts, evaluate_baselines, floor_metric
from liger_core.data.sequences import build_split

# Users' sequences (item_idx); with max_len 20 the last two items of each are val/test.
SEQUENCES = [[0, 1, 2, 9, 9], [0, 1, 3, 9, 9], [4, 0, 2, 9, 9], [5, 6, 1, 9, 9], [1, 2, 0, 1, 2]]


@pytest.fixture
def split():
    return build_split([np.array(s) for s in SEQUENCES], max_len=20, n_items=10)


def test_counts_come_from_training_portions_only(split):
    counts = TransitionCounts.from_split(split)
    following = {
        a: dict(zip(counts.following[counts.ptr[a] : counts.ptr[a + 1]], counts.counts[counts.ptr[a] : counts.ptr[a + 1]]))
        for a in range(10)
    }
    assert following[0] == {1: 2.0, 2: 1.0}  # 0->1 twice, 0->2 once (users 0, 1, 2)
    assert following[1] == {2: 2.0, 3: 1.0}  # users 0 and 4, user 1
    assert following[2] == {0: 1.0}  # user 4: 1, 2, 0 (then val 1, test 2)
    assert 9 not in counts.following  # 9 only occurs as validation/test targets
    assert counts.popularity[9] == 0 and counts.popularity[1] == 4


def test_weighted_last_items_then_popularity_fill(split):
    counts = TransitionCounts.from_split(split)
    history = np.array([[-1, 0, 1]])  # last item 1 (weight 1), then 0 (weight 0.5)
    top = counts.topk(history, 5, (1.0, 0.5))[0].tolist()
    # 2: 2*1 + 0.5*1 = 2.5; 1: 0.5*2 = 1; 3: 1*1 = 1 (1 more popular than 3); then popularity
    assert top[:3] == [2, 1, 3]
    assert counts.topk(history, 5, (1.0, 0.5), exclude_history=True)[0].tolist()[:2] == [2, 3]
    popular = counts.topk(history, 3, ())[0].tolist()
    assert set(popular[:2]) == {0, 1} and popular[2] == 2  # 0 and 1 occur 4 times, 2 three times


def test_metrics_are_named_like_the_models_and_hit_where_expected(split):
    metrics = evaluate_baselines(split, split.valid, 20, split_name="val", ks=(1,))
    # validation histories end in 2, 3, 2, 1, 0; next items after those in training: 0, -, 0, 2, 1
    assert metrics["val_users"] == 5 and metrics["val_users_cold"] == 4  # target 9 is cold
    assert metrics["val_transition1_recall@1_inset"] == 1.0  # user 4: after 0 comes 1
    assert metrics["val_popularity_recall@1_cold"] == 0.0
    served = evaluate_baselines(split, split.valid, 20, split_name="val", ks=(1,), exclude_history=True)
    assert "val_transition3_ndcg@1_served" not in served and "val_transition3_served_ndcg@1" in served
    assert floor_metric("val_hybrid_ndcg@10") == "val_transition3_ndcg@10"
    assert floor_metric("val_generative_recall@5_inset") == "val_transition3_recall@5_inset"
