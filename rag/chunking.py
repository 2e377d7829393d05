"""Moved to ``rag.documents.chunking``; this name keeps working, with a warning.

``rag.chunking.SentenceSplitter`` is the import path the documentation gave for the
sentence splitter (use it with LangChain's document loaders); new code imports
``rag.documents.chunking``.
"""

from __future__ import annotations

import warnings

from rag.documents.chunking import *  # noqa: F403
from rag.documents.chunking import SentenceSplitter

__all__ = ["SentenceSplitter"]

warnings.warn(
    "rag.chunking moved to rag.documents.chunking; import it from there",
    DeprecationWarning,
    stacklevel=2,
)
