"""What an install ships: every source package, and configs/ and sql/ as package data, so the
profiles and the SQL are found through the package, not through the checkout's layout."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from liger_core.config import load_settings, profile_path
from liger_core.platform import sql_catalog

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_packages() -> set[str]:
    """Dotted names of the folders with an ``__init__.py`` under the installed roots."""
    found = set()
    for root in ("jobs", "liger_core"):
        for init in (ROOT / root).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def test_every_source_package_is_listed_and_nothing_else():
    mapped = set(SETUPTOOLS["package-dir"])
    assert set(SETUPTOOLS["packages"]) == (_source_packages() - {"jobs"}) | mapped


def test_folders_map_to_packages_that_cannot_collide():
    """jobs/ installs as ``liger_jobs`` (a bare ``jobs`` would shadow, or be shadowed by, any
    other distribution's); configs/ and sql/ ship as package data of ``liger_core``."""
    assert SETUPTOOLS["package-dir"] == {"liger_jobs": "jobs", "liger_core.configs": "configs", "liger_core.sql": "sql"}
    assert "jobs" not in SETUPTOOLS["packages"]
    for folder in SETUPTOOLS["package-dir"].values():
        assert (ROOT / folder / "__init__.py").is_file(), f"{folder}/ needs an __init__.py to ship as a package"


def test_package_data_globs_cover_every_shipped_file():
    data = SETUPTOOLS["package-data"]
    profiles = sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))
    assert profiles == ["cpu.yaml", "gpu.yaml"] and data["liger_core.configs"] == ["*.yaml"]
    sql_files = [p for p in (ROOT / "sql").rglob("*") if p.is_file() and p.suffix != ".py" and "__pycache__" not in p.parts]
    assert sql_files, "sql/ holds no files"
    uncovered = [
        str(p.relative_to(ROOT))
        for p in sql_files
        if not any(p.relative_to(ROOT / "sql").match(g) for g in data["liger_core.sql"])
    ]
    assert uncovered == []


def test_a_wheel_install_finds_profiles_and_sql_without_the_checkout(tmp_path):
    """Build the wheel from a copy of the sources, unpack it elsewhere and load a profile and
    a query from there: this fails if either is looked up relative to the checkout."""
    source = tmp_path / "source"
    for folder in ("jobs", "liger_core", "configs", "sql"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    installed = tmp_path / "site"
    zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).extractall(installed)
    assert (installed / "liger_jobs" / "cli.py").is_file() and not (installed / "jobs").exists()
    probe = (
        "from liger_core.config import load_settings, profile_path; from liger_core.platform import sql_catalog;"
        "print(profile_path('cpu')); print(load_settings('cpu').train.max_epochs);"
        "print(sql_catalog.load('queries', 'user_top_k')[:6])"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(installed)}, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    path, max_epochs, query_head = run.stdout.splitlines()
    assert path == str(installed / "liger_core" / "configs" / "cpu.yaml")
    assert float(max_epochs) == load_settings("cpu").train.max_epochs
    assert query_head == sql_catalog.load("queries", "user_top_k")[:6]


def test_profiles_and_sql_resolve_through_the_package(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # nothing is found relative to the working directory
    assert profile_path("cpu") == ROOT / "configs" / "cpu.yaml"
    assert load_settings("gpu").train.device.startswith("cuda")
    assert sql_catalog.sql_dir() == ROOT / "sql"
    assert (sql_catalog.sql_dir() / "queries").is_dir()
