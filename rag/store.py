"""Indexing: the on-disk index, a Chroma collection plus a SQLite manifest.

Layout of a data directory::

    DATA_DIR/index.json          {"generation": "index-..."}: the live index, switched atomically
    DATA_DIR/index-<id>/chroma/  embedded Chroma (vectors, chunk text, metadata)
                                 or, with chroma_mode http, the collection "index-<id>"
                                 on a Chroma server (one collection per generation)
    DATA_DIR/index-<id>/manifest.sqlite3
                                 documents (text, title, hash) and their live chunk ids

Crash safety rests on one rule: the manifest is the truth, Chroma is a cache of
vectors. A chunk is live only once its document's manifest row is committed (one
SQLite transaction), and Chroma ids are never rewritten (no upsert: see
chroma-core/chroma#7678), only added when absent and deleted when no longer live.
Chroma ids that are not live are leftovers of an interrupted ingest; ``reconcile``
removes them, and queries ignore them meanwhile. ``--rebuild`` builds a new
generation beside the old one and switches ``index.json`` with ``os.replace``.

Does not decide what to ingest (``rag.ingest``) or how to rank (``rag.retrieval``).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from rag.chunking import CHUNKER_VERSION
from rag.errors import IndexCorruptError, IndexMissingError, RagError, StoreUnavailableError
from rag.settings import Settings
from rag.types import Chunk, Document, Page

SCHEMA_VERSION = 1
COLLECTION = "chunks"
POINTER = "index.json"
REBUILD_HINT = "Rebuild it with: rag ingest --rebuild"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    source TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    title TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    text TEXT NOT NULL,
    pages TEXT NOT NULL,
    body_start INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL REFERENCES documents(source) ON DELETE CASCADE,
    ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    embed_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE INDEX IF NOT EXISTS chunks_embed_hash ON chunks(embed_hash);
"""


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the manifest holds it (``rag docs`` rows)."""

    source: str
    path: str
    title: str
    kind: str
    content_hash: str
    chunks: int
    ingested_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "title": self.title,
            "kind": self.kind,
            "chunks": self.chunks,
            "ingested_at": self.ingested_at,
            "path": self.path,
        }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_pointer(data_dir: Path) -> str | None:
    pointer = data_dir / POINTER
    if not pointer.exists():
        return None
    try:
        generation = json.loads(pointer.read_text(encoding="utf-8"))["generation"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(
            f"The index pointer {pointer} is unreadable. {REBUILD_HINT}"
        ) from exc
    if not isinstance(generation, str) or "/" in generation or not generation:
        raise IndexCorruptError(f"The index pointer {pointer} is invalid. {REBUILD_HINT}")
    return generation


def write_pointer(data_dir: Path, generation: str) -> None:
    """Switch the live index in one atomic rename (the old generation stays until removed)."""
    tmp = data_dir / f".{POINTER}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump({"generation": generation}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, data_dir / POINTER)
    _fsync_dir(data_dir)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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

    def __init__(self, settings: Settings, directory: Path, db: sqlite3.Connection) -> None:
        self.settings = settings
        self.directory = directory
        self.db = db
        self._collection: Any = None
        self._batch_limit = 5000

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: Settings) -> Index:
        """The live index; raises ``IndexMissingError`` / ``IndexCorruptError``."""
        generation = read_pointer(settings.data_dir)
        if generation is None:
            raise IndexMissingError(
                f"No index in {settings.data_dir} yet. Build it with: rag ingest [PATH ...]"
            )
        directory = settings.data_dir / generation
        manifest = directory / "manifest.sqlite3"
        if not manifest.is_file():
            raise IndexCorruptError(f"The index in {directory} is incomplete. {REBUILD_HINT}")
        index = cls(settings, directory, _connect(manifest))
        index._check_compatible()
        return index

    @classmethod
    def create(cls, settings: Settings, generation: str, dim: int) -> Index:
        """A new, empty generation directory (not live until ``write_pointer``)."""
        directory = settings.data_dir / generation
        directory.mkdir(parents=True, exist_ok=False)
        db = _connect(directory / "manifest.sqlite3")
        with db:
            db.executescript(_SCHEMA)
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("chunker_version", str(CHUNKER_VERSION)),
                    ("embedding_model", settings.embedding_model),
                    ("dim", str(dim)),
                    ("created_at", _now()),
                    ("revision", "0"),
                ],
            )
        return cls(settings, directory, db)

    def _check_compatible(self) -> None:
        try:
            meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(
                f"The index manifest in {self.directory} is unreadable ({exc}). {REBUILD_HINT}"
            ) from exc
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
        return dict(self.db.execute("SELECT key, value FROM meta").fetchall())

    @property
    def chunker_version(self) -> int:
        """The splitter version the live chunks were made by (1: before it was recorded)."""
        return int(self.meta.get("chunker_version", "1"))

    @property
    def needs_rechunk(self) -> bool:
        return self.chunker_version != CHUNKER_VERSION

    def mark_rechunked(self) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('chunker_version', ?)",
                (str(CHUNKER_VERSION),),
            )

    @property
    def revision(self) -> int:
        """Bumped by every committed change; lets a long-lived reader notice new documents."""
        return int(self.meta.get("revision", "0"))

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
        self.db.close()
        self._collection = None

    # -- reading -------------------------------------------------------------------------

    def documents(self) -> list[DocumentRecord]:
        rows = self.db.execute(
            "SELECT source, path, title, kind, content_hash, chunks, ingested_at "
            "FROM documents ORDER BY source"
        ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def document(self, source: str) -> Document | None:
        row = self.db.execute(
            "SELECT source, path, title, text, content_hash, kind, pages, body_start "
            "FROM documents WHERE source = ?",
            (source,),
        ).fetchone()
        if row is None:
            return None
        pages = tuple(Page(**p) for p in json.loads(row[6]))
        return Document(
            source=row[0],
            path=row[1],
            title=row[2],
            text=row[3],
            content_hash=row[4],
            kind=row[5],
            pages=pages,
            body_start=row[7],
        )

    def live_chunk_ids(self, source: str | None = None) -> set[str]:
        if source is None:
            rows = self.db.execute("SELECT id FROM chunks").fetchall()
        else:
            rows = self.db.execute("SELECT id FROM chunks WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def chunk_embed_hashes(self, source: str) -> dict[str, str]:
        """embed_hash -> chunk id for a document's live chunks (to reuse their vectors)."""
        rows = self.db.execute(
            "SELECT embed_hash, id FROM chunks WHERE source = ?", (source,)
        ).fetchall()
        return dict(rows)

    def sources_of(self, ids: set[str]) -> set[str]:
        sources: set[str] = set()
        for batch in _batches(sorted(ids), 500):
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                f"SELECT DISTINCT source FROM chunks WHERE id IN ({marks})", batch
            ).fetchall()
            sources.update(r[0] for r in rows)
        return sources

    def counts(self) -> dict[str, int]:
        documents = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
        chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return {"documents": documents, "chunks": chunks}

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
        for batch in _batches(list(ids), 2000):
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
        for batch in _batches(ids, 5000):
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
        before = self.live_chunk_ids(doc.source)
        pages = json.dumps(
            [{"number": p.number, "start": p.start, "end": p.end} for p in doc.pages]
        )
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE source = ?", (doc.source,))
            self.db.execute(
                "INSERT OR REPLACE INTO documents(source, path, title, kind, content_hash, text, "
                "pages, body_start, chunks, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    doc.source,
                    doc.path,
                    doc.title,
                    doc.kind,
                    doc.content_hash,
                    doc.text,
                    pages,
                    doc.body_start,
                    len(chunks),
                    _now(),
                ),
            )
            self.db.executemany(
                'INSERT INTO chunks(id, source, ordinal, start, "end", embed_hash) '
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (c.id, c.source, c.ordinal, c.start, c.end, h)
                    for c, h in zip(chunks, embed_hashes, strict=True)
                ],
            )
            self._bump_revision()
        return before

    def forget_document(self, source: str) -> set[str]:
        """Drop a document from the manifest; returns its chunk ids for Chroma deletion."""
        ids = self.live_chunk_ids(source)
        with self.db:
            self.db.execute("DELETE FROM chunks WHERE source = ?", (source,))
            self.db.execute("DELETE FROM documents WHERE source = ?", (source,))
            self._bump_revision()
        return ids

    def _bump_revision(self) -> None:
        self.db.execute(
            "UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
            "WHERE key = 'revision'"
        )


def forget_chroma_clients() -> None:
    """Drop chromadb's per-process client cache so the next open reads the disk afresh.

    An embedded Chroma client keeps its vector index in memory and does not see
    vectors that another process added (measured on chromadb 1.5.9: the count
    updates, queries do not). A long-running reader reopens after each change.
    """
    from chromadb.api.client import SharedSystemClient

    SharedSystemClient.clear_system_cache()


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(
            f"The index manifest {path} is unreadable ({exc}). {REBUILD_HINT}"
        ) from exc
    return db


def _batches(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def remove_stale_generations(
    data_dir: Path, keep: str | None, settings: Settings | None = None
) -> list[str]:
    """Delete index generations that are not live (after a rebuild, or a killed one).

    With a Chroma server, a generation's collection goes first and its directory
    after: a directory left behind (the server was down) is what names the collection
    to delete next time. Returns the generations that could not be removed.
    """
    stale = [e for e in data_dir.glob("index-*") if e.is_dir() and e.name != keep]
    if stale and settings is not None and settings.chroma_mode == "http":
        try:
            client = _Guarded(chroma_http_client(settings), settings)
            existing = {c.name for c in client.list_collections()}
            for entry in list(stale):
                if entry.name in existing:
                    client.delete_collection(entry.name)
        except StoreUnavailableError:
            return [e.name for e in stale]
    for entry in stale:
        shutil.rmtree(entry, ignore_errors=True)
    return []
