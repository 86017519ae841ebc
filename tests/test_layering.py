"""Imports flow one way: reports -> bench -> baselines -> samuel (also enforced by import-linter in `nox -s lint`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["reports", "bench", "baselines", "samuel"]  # each may import only those after it


def imported_top_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):  # every import, also the lazy ones inside functions
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(LAYERS)


def test_imports_flow_downwards():
    violations = []
    for rank, layer in enumerate(LAYERS):
        allowed = set(LAYERS[rank:])
        for path in sorted((ROOT / layer).rglob("*.py")):
            for bad in imported_top_packages(path) - allowed:
                violations.append(f"{path.relative_to(ROOT)} imports {bad} (a layer above {layer})")
    assert not violations, "\n".join(violations)


def test_checker_catches_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    import bench.harness\n")
    assert imported_top_packages(bad) == {"bench"}
