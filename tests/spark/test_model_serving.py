"""The registered recommender scores a Spark DataFrame through ``mlflow.pyfunc.spark_udf``."""

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import local_mlflow
from tests.unit.test_model_registry import register_pair

pytestmark = pytest.mark.spark
RESULT = "item_id array<string>, item_idx array<bigint>, score array<double>, source array<string>"


def test_spark_udf_scores_histories_with_k(spark, tmp_path):
    with local_mlflow(tmp_path, "serving-test"):
        with mlflow.start_run():
            version, _ = register_pair(0)
        assert MlflowClient().get_model_version("recommender", version).description
        score = mlflow.pyfunc.spark_udf(
            spark, f"models:/recommender/{version}", result_type=RESULT, env_manager="local", params={"k": 4}
        )
        histories = spark.createDataFrame([([0, 1, 2],), ([3],), ([4, 5],)], "items array<bigint>")
        rows = histories.withColumn("top", score("items")).select("items", "top.*").collect()
    assert len(rows) == 3 and all(len(r.item_id) == 4 and len(r.score) == 4 for r in rows)
    assert all(list(r.score) == sorted(r.score, reverse=True) for r in rows)
    assert not set(rows[0].item_idx) & {0, 1, 2}
