"""The old import paths of modules that moved into the stage packages keep working.

Until 2026-12 every module sat directly in ``rag/`` (``rag.chunking``, ``rag.selector``,
...). Scripts and notebooks written against those names still import: the finder below
answers an old name with the module at its new home (the same module object, so
monkeypatching either name patches both) and warns once with a ``DeprecationWarning``
naming the new path. Nothing inside the package uses the old names (import-linter
and the tests see only the new ones).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

_STAGES = {
    "documents": ("loading", "blocks", "chunking", "sources", "safety"),
    "index": (
        "embedding", "store", "manifest", "manifest_pg", "ingest", "live_index", "watch",
        "retrieval",
    ),
    "answering": (
        "question", "answer", "selector", "selector_features", "reader", "verify",
        "conversation",
    ),
    "llm": ("generation", "models", "judge", "answerers"),
}  # fmt: skip
MOVED = {f"rag.{name}": f"rag.{stage}.{name}" for stage, names in _STAGES.items() for name in names}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        # The module itself, already initialised: its own __spec__ and __name__ stay.
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        pass  # create_module returned the loaded module


def install() -> None:
    # First in line: ``rag/models/`` (the packaged weights, no ``__init__``) would
    # otherwise answer ``rag.models`` as a namespace package.
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
