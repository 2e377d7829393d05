"""The package boundaries the house style promises: ``rag/`` never imports ``ui/``,
``evals/`` or ``server/`` (they plug into it through entry points), and never reads files under
``evals/`` either (the suite schema, and the suites, belong to ``evals/``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RAG = Path(__file__).resolve().parent.parent / "rag"


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("path", sorted(RAG.rglob("*.py")), ids=lambda p: str(p.relative_to(RAG)))
def test_rag_depends_on_neither_ui_nor_evals_nor_server(path: Path) -> None:
    outside = {m for m in imported_modules(path) if m.split(".")[0] in {"ui", "evals", "server"}}
    assert not outside, f"{path.name} imports {sorted(outside)}"
    strings = [
        node.value
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]
    assert not [s for s in strings if s in {"evals", "suites"}], f"{path.name} reads evals/ files"
