"""Indexing: an index generation, its manifest (the truth) and its Chroma vectors.

Layout, with the default SQLite manifest::

    DATA_DIR/index.json          {"generation": "index-..."}: the live index, switched atomically
    DATA_DIR/index-<id>/chroma/  embedded Chroma (vectors, chunk text, metadata)
                                 or, with chroma_mode http, the collection "index-<id>"
                                 on a Chroma server (one collection per generation)
    DATA_DIR/index-<id>/manifest.sqlite3
                                 documents (text, title, hash) and their live chunk ids

With ``manifest_url`` (PostgreSQL) the manifests and the pointer live in the database
instead (``rag.index.manifest_pg``) and the vectors on a Chroma server: the data directory
keeps only uploads and locks, so replicas can each have their own, empty one.

Crash safety rests on one rule: the manifest is the truth, Chroma is a cache of
vectors. A chunk is live only once its document's manifest rows are committed (one
transaction), and Chroma ids are never rewritten (no upsert: see
chroma-core/chroma#7678), only added when absent and deleted when no longer live.
Chroma ids that are not live are leftovers of an interrupted ingest; the next ingest
(or ``rag.index.ingest.reconcile`` at a server's start) removes them, and queries ignore
them meanwhile. ``--rebuild`` builds a new generation beside the old one and switches
the pointer in one step.

Does not decide what to ingest (``rag.index.ingest``) or how to rank (``rag.index.retrieval``);
the manifest's SQL is ``rag.index.manifest``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.documents.chunking import CHUNKER_VERSION
from rag.errors import IndexCorruptError, IndexMissingError, RagError, StoreUnavailableError
from rag.index.catalog import open_catalog
from rag.index.manifest import (
    POINTER as POINTER,
)
from rag.index.manifest import (
    REBUILD_HINT,
    Catalog,
    Manifest,
    batches,
    now,
)
from rag.index.manifest_sqlite import SqliteCatalog
from rag.settings import Settings
from rag.types import Chunk, Document
from rag.types import DocumentRecord as DocumentRecord

SCHEMA_VERSION = 1
COLLECTION = "chunks"


def read_pointer(data_dir: Path) -> str | None:
    """The live generation of a SQLite-manifest data directory (``index.json``)."""
    return SqliteCatalog(data_dir).live()


def write_pointer(data_dir: Path, generation: str) -> None:
    """Switch a SQLite-manifest data directory's live index in one atomic rename."""
    SqliteCatalog(data_dir).switch(generation)


def new_generation_name() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"index-{stamp}-{uuid.uuid4().hex[:8]}"


def chroma_client(path: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.PersistentClient(
        path=str(path),
        settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
    )


def chroma_url(settings: Settings) -> str:
    scheme = "https" if settings.chroma_ssl else "http"
    return f"{scheme}://{settings.chroma_host}:{settings.chroma_port}"


def _chroma_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.chroma_token}"} if settings.chroma_token else {}


def _unavailable(settings: Settings, exc: BaseException) -> StoreUnavailableError:
    detail = str(exc) or type(exc).__name__
    return StoreUnavailableError(
        f"The Chroma server at {chroma_url(settings)} is not answering ({detail}). Start it "
        f"(chroma run --path DIR --host {settings.chroma_host} --port {settings.chroma_port}) "
        "or check RAG_CHROMA_HOST, RAG_CHROMA_PORT, RAG_CHROMA_SSL and RAG_CHROMA_TOKEN."
    )


def chroma_heartbeat(settings: Settings) -> None:
    """Fail fast (within ``chroma_timeout_s``) with a clear error if the server is not up."""
    import httpx

    try:
        response = httpx.get(
            f"{chroma_url(settings)}/api/v2/heartbeat",
            headers=_chroma_headers(settings),
            timeout=settings.chroma_timeout_s,
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise _unavailable(settings, exc) from exc


def chroma_http_client(settings: Settings) -> Any:
    """A client of the Chroma server, every request bounded by ``chroma_timeout_s``."""
    import chromadb
    import httpx
    from chromadb.config import Settings as ChromaSettings

    # chromadb's HttpClient talks to the server while it is built, with no timeout
    # (httpx timeout=None): a bounded heartbeat first turns a dead server into an error.
    chroma_heartbeat(settings)
    try:
        client: Any = chromadb.HttpClient(
            host=settings.chroma_host,
            port=settings.chroma_port,
            ssl=settings.chroma_ssl,
            headers=_chroma_headers(settings),
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
        )
    except (httpx.HTTPError, ValueError) as exc:
        raise _unavailable(settings, exc) from exc
    # The same reason: without a timeout, a server that stops answering hangs a request.
    client._server._session.timeout = httpx.Timeout(settings.chroma_timeout_s)
    return client


class _Guarded:
    """A Chroma collection (or client) whose transport failures are ``StoreUnavailableError``.

    In http mode any call can meet a server that died, restarted or stopped answering;
    callers (ingest, retrieval, the server's 503) should see one user-facing error,
    not httpx's.
    """

    def __init__(self, inner: Any, settings: Settings) -> None:
        self._inner = inner
        self._settings = settings

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            import httpx

            try:
                return attribute(*args, **kwargs)
            except httpx.TransportError as exc:
                raise _unavailable(self._settings, exc) from exc
            except httpx.HTTPStatusError as exc:
                # A proxy in front of Chroma refusing (401/403) or failing (502/503).
                raise _unavailable(self._settings, exc) from exc

        return call


class Index:
    """One index generation: the manifest (truth) and the Chroma collection (vectors)."""

    def __init__(self, settings: Settings, catalog: Catalog, manifest: Manifest) -> None:
        self.settings = settings
        self.catalog = catalog
        self.manifest = manifest
        self.generation = manifest.generation
        # Embedded Chroma's home; with a Chroma server and a PostgreSQL manifest it is
        # never created (the name still names the collection).
        self.directory = settings.data_dir / manifest.generation
        self._collection: Any = None
        self._batch_limit = 5000

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings) -> Index:
        """The live index; raises ``IndexMissingError`` / ``IndexCorruptError``."""
        catalog = open_catalog(settings)
        try:
            generation = catalog.live()
            if generation is None:
                raise IndexMissingError(
                    f"No index in {catalog.location} yet. Build it with: rag ingest [PATH ...]"
                )
            index = cls(settings, catalog, catalog.open(generation))
            index._check_compatible()
        except BaseException:
            catalog.close()
            raise
        return index

    @classmethod
    def create(cls, settings: Settings, generation: str, dim: int) -> Index:
        """A new, empty generation (not live until the catalog switches to it)."""
        catalog = open_catalog(settings)
        meta = {
            "schema_version": str(SCHEMA_VERSION),
            "chunker_version": str(CHUNKER_VERSION),
            "embedding_model": settings.embedding_model,
            "dim": str(dim),
            "created_at": now(),
            "revision": "0",
        }
        try:
            return cls(settings, catalog, catalog.create(generation, meta))
        except BaseException:
            catalog.close()
            raise

    def _check_compatible(self) -> None:
        meta = self.meta
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise IndexCorruptError(
                f"The index in {self.directory} has format {meta.get('schema_version')!r}; "
                f"this version reads format {SCHEMA_VERSION}. {REBUILD_HINT}"
            )
        if meta.get("embedding_model") != self.settings.embedding_model:
            raise IndexCorruptError(
                f"The index was built with embedding model {meta.get('embedding_model')!r} but "
                f"the settings ask for {self.settings.embedding_model!r}. {REBUILD_HINT}"
            )

    @property
    def meta(self) -> dict[str, str]:
        return self.manifest.meta()

    @property
    def chunker_version(self) -> int:
        """The splitter version the live chunks were made by (1: before it was recorded)."""
        return int(self.meta.get("chunker_version", "1"))

    @property
    def needs_rechunk(self) -> bool:
        return self.chunker_version != CHUNKER_VERSION

    def mark_rechunked(self) -> None:
        self.manifest.set_meta("chunker_version", str(CHUNKER_VERSION))

    @property
    def revision(self) -> int:
        """Bumped by every committed change; lets a long-lived reader notice new documents."""
        return self.manifest.revision

    @property
    def collection(self) -> Any:
        if self._collection is None and self.settings.chroma_mode == "http":
            # One collection per generation, named after it: a rebuild fills a new one
            # beside the live one, as the embedded mode does with a new directory.
            client = _Guarded(chroma_http_client(self.settings), self.settings)
            self._batch_limit = int(client.get_max_batch_size())
            self._collection = _Guarded(
                client.get_or_create_collection(
                    self.directory.name,
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                ),
                self.settings,
            )
        if self._collection is None:
            try:
                client = chroma_client(self.directory / "chroma")
                self._batch_limit = int(client.get_max_batch_size())
                self._collection = client.get_or_create_collection(
                    COLLECTION,
                    embedding_function=None,
                    configuration={"hnsw": {"space": "cosine"}},
                )
            except RagError:
                raise
            except Exception as exc:  # chromadb raises many unrelated types on bad files
                raise IndexCorruptError(
                    f"The vector store in {self.directory / 'chroma'} cannot be opened ({exc}). "
                    f"{REBUILD_HINT}"
                ) from exc
        return self._collection

    def check_store(self) -> None:
        """Raise ``StoreUnavailableError`` if the vectors cannot be reached (http mode)."""
        if self.settings.chroma_mode == "http":
            chroma_heartbeat(self.settings)

    def close(self) -> None:
        self.manifest.close()
        self.catalog.close()
        self._collection = None

    # -- reading -------------------------------------------------------------------------

    def documents(self) -> list[DocumentRecord]:
        return self.manifest.documents()

    def document(self, source: str) -> Document | None:
        return self.manifest.document(source)

    def live_chunk_ids(self, source: str | None = None) -> set[str]:
        return self.manifest.live_chunk_ids(source)

    def chunk_embed_hashes(self, source: str) -> dict[str, str]:
        """embed_hash -> chunk id for a document's live chunks (to reuse their vectors)."""
        return self.manifest.chunk_embed_hashes(source)

    def sources_of(self, ids: set[str]) -> set[str]:
        return self.manifest.sources_of(ids)

    def counts(self) -> dict[str, int]:
        return self.manifest.counts()

    def stored_ids(self) -> set[str]:
        """Every id Chroma holds, live or not (an exhaustive listing, in pages)."""
        ids: set[str] = set()
        offset = 0
        page = 5000
        while True:
            got = self.collection.get(include=[], limit=page, offset=offset)["ids"]
            ids.update(got)
            if len(got) < page:
                return ids
            offset += page

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for batch in batches(list(ids), 2000):
            got = self.collection.get(ids=batch, include=["embeddings"])
            for chunk_id, vector in zip(got["ids"], got["embeddings"], strict=True):
                out[chunk_id] = np.asarray(vector, dtype=np.float32)
        return out

    # -- writing -------------------------------------------------------------------------

    def add_vectors(
        self, chunks: Sequence[Chunk], vectors: np.ndarray, titles: dict[str, str]
    ) -> None:
        """Add chunks that Chroma does not hold yet. Callers never pass a present id."""
        if not chunks:
            return
        collection = self.collection  # opening it reads the client's batch limit
        limit = max(1, min(5000, self._batch_limit))
        for start in range(0, len(chunks), limit):
            part = chunks[start : start + limit]
            collection.add(
                ids=[c.id for c in part],
                embeddings=vectors[start : start + limit],
                documents=[c.text for c in part],
                metadatas=[
                    {
                        "source": c.source,
                        "title": titles.get(c.source, ""),
                        "ordinal": c.ordinal,
                        "start": c.start,
                        "end": c.end,
                        "heading": c.heading,
                        "is_heading": c.is_heading,
                    }
                    for c in part
                ],
            )

    def delete_vectors(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        for batch in batches(ids, 5000):
            self.collection.delete(ids=batch)
        return len(ids)

    def commit_document(
        self, doc: Document, chunks: Sequence[Chunk], embed_hashes: Sequence[str]
    ) -> set[str]:
        """Make ``chunks`` the document's live chunks in one transaction.

        Returns the ids that were live before. Those no longer live are the caller's
        to delete from Chroma after this commit (a crash in between leaves only
        harmless, ignored leftovers).
        """
        return self.manifest.commit_document(doc, chunks, embed_hashes)

    def forget_document(self, source: str) -> set[str]:
        """Drop a document from the manifest; returns its chunk ids for Chroma deletion."""
        return self.manifest.forget_document(source)


def forget_chroma_clients() -> None:
    """Drop chromadb's per-process client cache so the next open reads the disk afresh.

    An embedded Chroma client keeps its vector index in memory and does not see
    vectors that another process added (measured on chromadb 1.5.9: the count
    updates, queries do not). A long-running reader reopens after each change.
    """
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def remove_stale_generations(settings: Settings, keep: str | None) -> list[str]:
    """Delete index generations that are not live (after a rebuild, or a killed one).

    With a Chroma server, a generation's collection goes first and its manifest
    after: a manifest left behind (the server was down) is what names the collection
    to delete next time. Returns the generations that could not be removed. Callers
    hold the ingest lock: a generation being built is never stale to another writer.
    """
    catalog = open_catalog(settings)
    try:
        stale = [g for g in catalog.generations() if g != keep]
        if stale and settings.chroma_mode == "http":
            try:
                client = _Guarded(chroma_http_client(settings), settings)
                existing = {c.name for c in client.list_collections()}
                for generation in stale:
                    if generation in existing:
                        client.delete_collection(generation)
            except StoreUnavailableError:
                return stale
        for generation in stale:
            catalog.drop(generation)
        return []
    finally:
        catalog.close()
