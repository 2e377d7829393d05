"""Removal: a document out of the index, and the vectors an interrupted ingest left.

Both take the ingest lock (the manifest backend's), as an ingest does: a removal
never interleaves with an ingest, here or on another replica.
"""

from __future__ import annotations

from rag.errors import IngestBusyError, InputError
from rag.index.catalog import open_catalog
from rag.index.store import Index
from rag.settings import Settings


def remove_document(settings: Settings, source: str, wait: bool = True) -> int:
    """Remove one document by source; returns how many chunks went with it."""
    catalog = open_catalog(settings)
    try:
        with catalog.lock(wait=wait):
            return _remove(settings, source)
    finally:
        catalog.close()


def _remove(settings: Settings, source: str) -> int:
    index = Index.open(settings)
    try:
        if index.document(source) is None:
            known = ", ".join(d.source for d in index.documents()[:10]) or "none"
            raise InputError(
                f"No document {source!r} in the index (indexed: {known}). See: rag docs"
            )
        ids = index.forget_document(source)
        index.delete_vectors(ids)
        return len(ids)
    finally:
        index.close()


def reconcile(settings: Settings) -> int | None:
    """Delete the vectors an interrupted ingest left in Chroma (ids no manifest row lists).

    Queries ignore them anyway; this frees them at a server's start instead of at the
    next ingest. Returns how many went, or None when another ingest (here or on another
    replica) holds the lock: the vectors it is adding are not leftovers.
    """
    catalog = open_catalog(settings)
    try:
        with catalog.lock(wait=False):
            index = Index.open(settings)
            try:
                return index.delete_vectors(index.stored_ids() - index.live_chunk_ids())
            finally:
                index.close()
    except IngestBusyError:
        return None
    finally:
        catalog.close()
