"""rag: answers questions only from your documents, with verified citations.

Importing the package switches every library it uses to offline, no-telemetry mode
before any of them is imported (see ``rag._offline``). The pipeline's stages are
subpackages: ``rag.documents``, ``rag.index``, ``rag.answering`` and ``rag.llm``; the
names their modules had before the move still import, with a warning (``rag._moved``).
"""

from rag import _moved
from rag import _offline as _offline

_moved.install()

__version__ = "0.1.0"
