"""Which manifest backend an index uses: SQLite files in the data directory, or the
PostgreSQL database ``manifest_url`` names (imported only then: psycopg is optional).
"""

from __future__ import annotations

from rag.index.manifest import Catalog
from rag.index.manifest_sqlite import SqliteCatalog
from rag.settings import Settings


def is_shared(settings: Settings) -> bool:
    """True when the manifest lives in a database that several machines share."""
    return bool(settings.manifest_url)


def open_catalog(settings: Settings) -> Catalog:
    """The manifest backend ``settings.manifest_url`` names (SQLite files without one)."""
    if not settings.manifest_url:
        return SqliteCatalog(settings.data_dir)
    from rag.index.manifest_pg import PostgresCatalog  # psycopg only when asked for

    return PostgresCatalog(settings.manifest_url, settings.manifest_timeout_s)
