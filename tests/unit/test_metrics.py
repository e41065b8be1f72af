import math

import numpy as np
import pytest

from liger_core.retrieval.metrics import metric_name, ndcg_at_k, recall_at_k, target_rank
from liger_core.retrieval.retrieval_metrics import add_sums, finish

RANKED = np.array(
    [
        [7, 3, 9, -1],  # target 7 at rank 0
        [1, 2, 3, 4],  # target 4 at rank 3
        [5, 6, -1, -1],  # target 8 missing
    ]
)
TARGETS = np.array([7, 4, 8])


def test_target_rank_is_zero_based_and_minus_one_when_absent():
    assert target_rank(RANKED, TARGETS).tolist() == [0, 3, -1]


def test_padding_never_matches():
    assert target_rank(np.array([[-1, -1]]), np.array([0])).tolist() == [-1]


@pytest.mark.parametrize("k, expected", [(1, [1, 0, 0]), (3, [1, 0, 0]), (4, [1, 1, 0]), (10, [1, 1, 0])])
def test_recall_counts_targets_within_k(k, expected):
    assert recall_at_k(RANKED, TARGETS, k).tolist() == expected


def test_ndcg_discounts_by_log2_of_rank_plus_two():
    values = ndcg_at_k(RANKED, TARGETS, 4)
    assert values[0] == 1.0
    assert values[1] == pytest.approx(1 / math.log2(5))
    assert values[2] == 0.0
    assert ndcg_at_k(RANKED, TARGETS, 3)[1] == 0.0  # rank 3 is outside the top 3


def test_means_over_a_batch():
    assert recall_at_k(RANKED, TARGETS, 4).mean() == pytest.approx(2 / 3)
    assert ndcg_at_k(RANKED, TARGETS, 4).mean() == pytest.approx((1 + 1 / math.log2(5)) / 3)


def test_metric_names():
    assert metric_name("val", "hybrid", "ndcg", 10) == "val_hybrid_ndcg@10"
    assert metric_name("test", "dense", "recall", 5, "cold") == "test_dense_recall@5_cold"


def test_finish_reports_each_mean_with_its_standard_error_over_users():
    """Sums of two batches (as shards or DDP ranks add them) give the mean and the standard
    error sqrt(sample variance / n) of the pooled per-user values."""
    ranked = np.array([[5, 1], [7, 8], [2, 9], [3, 4], [6, 0]])
    targets = np.array([5, 8, 1, 3, 9])
    cold = np.array([False, False, True, False, True])
    sums: dict[str, float] = {}
    for rows in (slice(0, 2), slice(2, 5)):
        add_sums(sums, {"dense": ranked[rows]}, targets[rows], cold[rows], (1, 2), "test")
    out = finish(sums, "test")
    ndcg = ndcg_at_k(ranked, targets, 2)
    assert out["test_dense_ndcg@2"] == pytest.approx(ndcg.mean())
    assert out["test_dense_ndcg@2_se"] == pytest.approx(ndcg.std(ddof=1) / np.sqrt(5))
    inset = recall_at_k(ranked, targets, 1)[~cold]  # 1, 0, 1
    assert out["test_dense_recall@1_inset_se"] == pytest.approx(inset.std(ddof=1) / np.sqrt(3))
    assert out["test_dense_recall@1_cold"] == 0.0 and out["test_dense_recall@1_cold_se"] == 0.0
    assert not any(name.endswith("_squares") for name in out)


def test_finish_leaves_out_the_standard_error_of_a_single_user():
    sums: dict[str, float] = {}
    add_sums(sums, {"dense": np.array([[1, 2]])}, np.array([1]), np.array([False]), (1,), "val")
    out = finish(sums, "val")
    assert out["val_dense_recall@1"] == 1.0 and "val_dense_recall@1_se" not in out


def test_equal_scores_have_a_zero_standard_error_whatever_the_summation_order():
    """0.63^2 summed in any order minus n * mean^2 leaves rounding, which must not turn into
    a standard error of ~1e-9 that differs between shardings."""
    ranked = np.array([[9, 3]] * 7)
    targets = np.full(7, 3)  # every user's target at rank 1: NDCG 1 / log2(3) each
    sums: dict[str, float] = {}
    for rows in (slice(0, 3), slice(3, 7)):
        add_sums(sums, {"dense": ranked[rows]}, targets[rows], np.zeros(len(targets[rows]), dtype=bool), (2,), "val")
    assert finish(sums, "val")["val_dense_ndcg@2_se"] == 0.0
