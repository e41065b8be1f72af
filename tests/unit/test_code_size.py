"""House rule from the contributor guide: modules and functions small enough to read in one
sitting. Checked over every module of the library and the jobs, so a new long function fails
CI instead of waiting for a review to notice it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("liger_core", "jobs")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def oversized(source: str, module_limit: int, function_limit: int) -> list[str]:
    """What breaks the limits in one module's source: 'module (N lines)' and 'name (N lines)'."""
    found = []
    lines = len(source.splitlines())
    if lines > module_limit:
        found.append(f"module ({lines} lines)")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > function_limit:
                found.append(f"{node.name} ({length} lines)")
    return found


def test_the_checker_sees_a_long_function_and_a_long_module() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(5))
    source = f"def long():\n{body}\n\n\ndef short():\n    return 1\n"
    assert oversized(source, module_limit=100, function_limit=5) == ["long (6 lines)"]
    assert oversized(source, module_limit=3, function_limit=60) == [f"module ({len(source.splitlines())} lines)"]


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_or_function_is_too_long(package: str) -> None:
    modules = sorted((ROOT / package).rglob("*.py"))
    assert modules, f"no modules found under {package}/"
    problems = {
        str(path.relative_to(ROOT)): found
        for path in modules
        if (found := oversized(path.read_text(), MAX_MODULE_LINES, MAX_FUNCTION_LINES))
    }
    assert not problems, f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function: {problems}"
