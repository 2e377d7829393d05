"""The package boundaries the house style promises: ``rag/`` never imports ``ui/``,
``evals/`` or ``server/`` (they plug into it through entry points), and never reads files under
``evals/`` either (the suite schema, and the suites, belong to ``evals/``)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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


ROOT = RAG.parent
STAGES = ("documents", "index", "answering", "llm", "feedback")
# The store is the one module allowed past the limit (the issue that set it says so).
LONG_MODULE_EXCEPTIONS = {"rag/index/store.py"}
MAX_MODULE_LINES = 400


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_says_what_it_owns_and_what_it_must_not_import(stage: str) -> None:
    init = RAG / stage / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    assert "Owns" in doc and "Must not import" in doc, f"rag/{stage}/__init__.py"
    # What the docstring forbids is what the import-linter layers enforce: every stage
    # above this one in the list is named there.
    above = STAGES[STAGES.index(stage) + 1 :]
    forbidden = doc.split("Must not import", 1)[1]
    assert all(f"rag.{name}" in forbidden for name in above if name != stage), (
        f"rag/{stage}'s docstring does not forbid {above}"
    )


def test_no_module_is_over_400_lines() -> None:
    long = []
    for folder in ("rag", "ui", "server", "evals"):
        for path in (ROOT / folder).rglob("*.py"):
            name = str(path.relative_to(ROOT))
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > MAX_MODULE_LINES and name not in LONG_MODULE_EXCEPTIONS:
                long.append(f"{name} ({lines})")
    assert not long, f"split by job: {long}"


def _python_tree(destination: Path) -> None:
    """A copy of the four packages' Python files (no data) and the contracts."""
    import shutil

    for folder in ("rag", "ui", "server", "evals"):
        for path in (ROOT / folder).rglob("*.py"):
            target = destination / path.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    shutil.copyfile(ROOT / "pyproject.toml", destination / "pyproject.toml")


def _lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # an upward import between stages
        ("rag/documents/loading.py", "from rag.index import store", "layered"),
        # a stage reaching for the pipeline (how the chat-turn circle began)
        ("rag/answering/conversation.py", "from rag import pipeline", "never import the pipeline"),
        # the registry importing a backend
        ("rag/generators.py", "from rag.llm import generation", "registry needs neither"),
        # a circle inside a package
        ("rag/index/manifest.py", "from rag.index import manifest_pg", "No import circles"),
        # rag importing a way in built on it
        ("rag/text.py", "import ui.app", "rag never imports"),
    ],
)
def test_the_import_contracts_fail_when_broken(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    _python_tree(tmp_path)
    assert _lint_imports(tmp_path).returncode == 0  # the copy as it is keeps them
    path = tmp_path / module
    # Inside a function, as the hidden circles were: the contracts see those too.
    path.write_text(
        path.read_text(encoding="utf-8") + f"\n\ndef _broken() -> None:\n    {line}\n",
        encoding="utf-8",
    )
    broken = _lint_imports(tmp_path)
    assert broken.returncode != 0
    assert contract in broken.stdout and "BROKEN" in broken.stdout, broken.stdout


def test_the_old_module_names_still_import_with_a_warning() -> None:
    import importlib
    import warnings

    from rag._moved import MOVED

    for old, new in MOVED.items():
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = importlib.import_module(old)
        assert module is importlib.import_module(new), old
        assert any(
            issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught
        ), old
    # The documented path of the sentence splitter, by name.
    from rag.chunking import SentenceSplitter

    assert SentenceSplitter.__module__ == "rag.documents.chunking"
