import math

from liger_core.serving.evaluation import hybrid_sweep_table, promotion_gate, results_table


def test_gate_promotes_first_and_equal_or_better():
    first = promotion_gate(0.01, None, 0.0, "val_dense_ndcg@10")
    assert first.promote
    assert first.reason == (
        "val_dense_ndcg@10 0.0100; champion has no finite record (none yet, or gated on another metric): promoted"
    )
    assert promotion_gate(0.05, 0.05, 0.0, "m").promote
    assert promotion_gate(0.049, 0.05, 0.002, "m").promote  # within tolerance


def test_gate_refuses_worse_and_non_finite_even_without_a_champion():
    decision = promotion_gate(0.04, 0.05, 0.005, "val_hybrid_ndcg@10")
    assert not decision.promote
    assert decision.reason == ("val_hybrid_ndcg@10 0.0400 < champion 0.0500 - tolerance 0.005; kept the champion")
    assert not promotion_gate(math.nan, 0.05, 0.0, "m").promote
    first_nan = promotion_gate(math.nan, None, 0.0, "m")  # finiteness comes before "no champion"
    assert not first_nan.promote and "not finite" in first_nan.reason


def test_gate_refuses_a_model_below_the_transition_baseline_floor():
    below = promotion_gate(0.040, None, 0.0, "val_hybrid_ndcg@10", floor=0.045)
    assert not below.promote
    assert below.reason == (
        "val_hybrid_ndcg@10 0.0400 does not beat the transition-count baseline 0.0450 on the same users; not promoted"
    )
    assert not promotion_gate(0.045, None, 0.0, "m", floor=0.045).promote  # must beat, not tie
    assert not promotion_gate(0.040, 0.01, 0.0, "m", floor=0.045).promote  # even over a weak champion
    assert promotion_gate(0.050, None, 0.0, "m", floor=0.045).promote


def test_a_nan_champion_record_never_blocks_promotion():
    assert promotion_gate(0.05, math.nan, 0.0, "m", floor=0.01).promote


def test_tables_pick_segments_methods_and_k():
    metrics = {
        "test_hybrid_recall@5_cold": 0.1,
        "test_hybrid_recall@10_cold": 0.2,
        "test_hybrid_ndcg@5_cold": 0.05,
        "test_hybrid_ndcg@10_cold": 0.07,
        "test_hybrid_recall@10_cold_se": 0.02,
        "test_hybrid_ndcg@10_cold_se": 0.01,
        "test_hybrid_K40_recall@10_cold": 0.3,
        "test_hybrid_K40_ndcg@10_cold": 0.1,
    }
    table = results_table(metrics)
    assert table.to_dict(orient="records") == [
        {
            "segment": "cold-start",
            "method": "hybrid",
            "R@5": 0.1,
            "R@10": 0.2,
            "N@5": 0.05,
            "N@10": 0.07,
            "R@10 SE": 0.02,
            "N@10 SE": 0.01,
        }
    ]
    sweep = hybrid_sweep_table(metrics, [20, 40])
    assert sweep.to_dict(orient="records") == [{"K": 40, "segment": "cold-start", "R@10": 0.3, "N@10": 0.1}]
