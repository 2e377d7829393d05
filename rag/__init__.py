"""rag: answers questions only from your documents, with verified citations.

Importing the package switches every library it uses to offline, no-telemetry mode
before any of them is imported (see ``rag._offline``).
"""

from rag import _offline as _offline

__version__ = "0.1.0"
