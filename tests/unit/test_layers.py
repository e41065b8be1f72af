"""The import contract of DESIGN §2-3, checked over the source (no imports executed):

- ``liger_core`` never imports Spark or Airflow;
- only ``liger_core.platform`` imports the platform libraries (MLflow, Great Expectations,
  DuckDB, PostgreSQL, matplotlib), in the library and in the jobs alike;
- the layers import downward only: data < ids < model < retrieval < training < serving <
  platform, and the foundation modules at the top of the package (config, errors, secrets,
  progress, precision) import no layer;
- a pickled reference to the pre-split pyfunc module still resolves.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("data", "ids", "model", "retrieval", "training", "serving", "platform")
PLATFORM_LIBRARIES = {"mlflow", "great_expectations", "duckdb", "psycopg", "matplotlib"}
ENGINES = {"pyspark", "airflow", "liger_jobs"}  # the library never reaches up to Spark, Airflow or the jobs
SHIMS = {"liger_core/pyfunc_models.py"}  # old module paths kept for registered versions


def imported_modules(source: str) -> set[str]:
    """Every module an ``import`` or ``from ... import`` statement names, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def layer_of(path: Path) -> str | None:
    """The layer a liger_core module belongs to; None for the foundation modules."""
    parts = path.relative_to(ROOT / "liger_core").parts
    return parts[0] if len(parts) > 1 else None


def violations(path: Path, modules: set[str]) -> list[str]:
    """What ``path`` (under ROOT) imports against the contract."""
    relative = str(path.relative_to(ROOT))
    top = {module.split(".")[0] for module in modules}
    in_library = relative.startswith("liger_core/")
    layer = layer_of(path) if in_library else None
    found = []
    if layer != "platform" and relative not in SHIMS:
        found += [f"imports {name} outside liger_core.platform" for name in sorted(top & PLATFORM_LIBRARIES)]
    if not in_library:
        return found
    found += [f"imports {name}" for name in sorted(top & ENGINES)]
    for module in sorted(modules):
        parts = module.split(".")
        if parts[0] != "liger_core" or len(parts) < 3 or parts[1] not in LAYERS or relative in SHIMS:
            continue
        if layer is None:
            found.append(f"foundation module imports the {parts[1]} layer ({module})")
        elif LAYERS.index(parts[1]) > LAYERS.index(layer):
            found.append(f"{layer} imports the higher {parts[1]} layer ({module})")
    return found


def sources() -> list[Path]:
    return sorted(p for package in ("liger_core", "jobs") for p in (ROOT / package).rglob("*.py"))


def test_the_checker_sees_each_kind_of_violation() -> None:
    data_module = ROOT / "liger_core" / "data" / "example.py"
    assert violations(data_module, {"mlflow.tracking", "numpy"}) == ["imports mlflow outside liger_core.platform"]
    assert violations(data_module, {"pyspark.sql"}) == ["imports pyspark"]
    assert violations(data_module, {"liger_jobs.warehouse"}) == ["imports liger_jobs"]
    assert violations(data_module, {"liger_core.serving.recommender"}) == [
        "data imports the higher serving layer (liger_core.serving.recommender)"
    ]
    assert violations(ROOT / "liger_core" / "config.py", {"liger_core.data.text"}) == [
        "foundation module imports the data layer (liger_core.data.text)"
    ]
    assert violations(ROOT / "jobs" / "publish.py", {"duckdb"}) == ["imports duckdb outside liger_core.platform"]
    assert violations(ROOT / "liger_core" / "platform" / "report.py", {"duckdb", "liger_core.data.catalog"}) == []
    assert imported_modules("def f():\n    import mlflow.data\nfrom . import x\n") == {"mlflow.data"}


def test_every_layer_exists_as_a_package() -> None:
    for layer in LAYERS:
        assert (ROOT / "liger_core" / layer / "__init__.py").is_file(), layer
    flat = {p.stem for p in (ROOT / "liger_core").glob("*.py")} - {"__init__"}
    assert flat == {"config", "errors", "secrets", "progress", "precision", "pyfunc_models"}


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layers(path: Path) -> None:
    assert violations(path, imported_modules(path.read_text())) == []


def test_a_version_pickled_before_the_layer_split_still_finds_its_class() -> None:
    from liger_core.platform.pyfunc_models import RecommenderPyfunc, RQVAEPyfunc

    # protocol-0 pickles of the two classes under their old module path
    assert pickle.loads(b"cliger_core.pyfunc_models\nRecommenderPyfunc\n.") is RecommenderPyfunc
    assert pickle.loads(b"cliger_core.pyfunc_models\nRQVAEPyfunc\n.") is RQVAEPyfunc
