import math

from liger_core.evaluation import hybrid_sweep_table, promotion_gate, results_table


def test_gate_promotes_first_and_equal_or_better():
    first = promotion_gate(0.01, None, 0.0, "val_dense_ndcg@10")
    assert first.promote
    assert first.reason == ("champion has no recorded val_dense_ndcg@10 (none yet, or gated on another "
                            "metric): promoted (val_dense_ndcg@10=0.0100)")
    assert promotion_gate(0.05, 0.05, 0.0, "m").promote
    assert promotion_gate(0.049, 0.05, 0.002, "m").promote  # within tolerance


def test_gate_refuses_worse_and_non_finite():
    decision = promotion_gate(0.04, 0.05, 0.005, "val_hybrid_ndcg@10")
    assert not decision.promote
    assert decision.reason == ("val_hybrid_ndcg@10 0.0400 < champion 0.0500 - tolerance 0.005; "
                               "kept the champion")
    assert not promotion_gate(math.nan, 0.05, 0.0, "m").promote


def test_tables_pick_segments_methods_and_k():
    metrics = {"test_hybrid_recall@5_cold": 0.1, "test_hybrid_recall@10_cold": 0.2,
               "test_hybrid_ndcg@5_cold": 0.05, "test_hybrid_ndcg@10_cold": 0.07,
               "test_hybrid_K40_recall@10_cold": 0.3, "test_hybrid_K40_ndcg@10_cold": 0.1}
    table = results_table(metrics)
    assert table.to_dict(orient="records") == [
        {"segment": "cold-start", "method": "hybrid", "R@5": 0.1, "R@10": 0.2, "N@5": 0.05, "N@10": 0.07}]
    sweep = hybrid_sweep_table(metrics, [20, 40])
    assert sweep.to_dict(orient="records") == [{"K": 40, "segment": "cold-start", "R@10": 0.3, "N@10": 0.1}]
