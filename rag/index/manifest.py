"""The manifest: which documents and chunks are live, in SQLite or in PostgreSQL.

The manifest is the truth of an index (``rag.index.store`` says why): each document with its
text, the ids of its live chunks, a few meta values (schema version, model, revision),
and beside the generations, which one is live and who may write. Two backends, chosen
by ``manifest_url``:

- SQLite (the default, no URL): one ``manifest.sqlite3`` per generation directory,
  ``index.json`` naming the live generation, a lock file for ingests. One machine.
- PostgreSQL (``postgresql://...``): one schema per generation, a one-row table naming
  the live one, and an advisory lock for ingests, so that replicas with separate,
  empty data directories share documents and uploads (vectors on a Chroma server).

Both backends run the same SQL (the placeholders aside), so each query is written
once, in ``Manifest``. A ``Catalog`` is the backend's view of all generations. This
module holds no vectors (``rag.index.store``) and does not decide what to ingest
(``rag.index.ingest``). The backends are ``rag.index.manifest_sqlite`` and
``rag.index.manifest_pg``; ``rag.index.catalog`` opens the one the settings name.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from rag.errors import IndexCorruptError
from rag.types import Chunk, Document, DocumentRecord, Page

POINTER = "index.json"
REBUILD_HINT = "Rebuild it with: rag ingest --rebuild"
# Generation names become directory names, Chroma collection names and (PostgreSQL)
# schema names: nothing that could escape a directory or a quoted identifier.
GENERATION = re.compile(r"^index-[0-9A-Za-z-]{1,64}$")

# ``{t}`` is the generation's table prefix: empty in its own SQLite file, the quoted
# schema name in PostgreSQL. ``?`` is the placeholder (rewritten for PostgreSQL).
SCHEMA = [
    "CREATE TABLE IF NOT EXISTS {t}meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS {t}documents (
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
    )""",
    """CREATE TABLE IF NOT EXISTS {t}chunks (
        id TEXT PRIMARY KEY,
        source TEXT NOT NULL REFERENCES {t}documents(source) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        start INTEGER NOT NULL,
        "end" INTEGER NOT NULL,
        embed_hash TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS chunks_source ON {t}chunks(source)",
    "CREATE INDEX IF NOT EXISTS chunks_embed_hash ON {t}chunks(embed_hash)",
]

# One write: statements and their rows, applied in one transaction.
Step = tuple[str, Sequence[Sequence[Any]]]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_generation(name: object, where: str) -> str:
    if not isinstance(name, str) or not GENERATION.match(name):
        raise IndexCorruptError(f"The index pointer {where} is invalid. {REBUILD_HINT}")
    return name


class Manifest(ABC):
    """One generation's manifest. Subclasses supply a connection; the SQL is here."""

    prefix = ""  # the table prefix that fills ``{t}``
    placeholder = "?"

    def __init__(self, generation: str) -> None:
        self.generation = generation

    # -- what a backend supplies -----------------------------------------------------------

    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one query (``sql`` already rewritten)."""

    @abstractmethod
    def _transact(self, steps: Sequence[Step]) -> None:
        """Apply ``steps`` (already rewritten) in one transaction: all or nothing."""

    @abstractmethod
    def close(self) -> None: ...

    def _sql(self, sql: str) -> str:
        sql = sql.replace("{t}", self.prefix)
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._read(self._sql(sql), params)

    def write(self, steps: Sequence[Step]) -> None:
        self._transact([(self._sql(sql), rows) for sql, rows in steps if rows])

    # -- the contract ------------------------------------------------------------------------

    def initialise(self, meta: dict[str, str]) -> None:
        """Create the tables and the meta values of a new generation (one transaction)."""
        self.write(
            [(statement, [()]) for statement in SCHEMA]
            + [("INSERT INTO {t}meta(key, value) VALUES (?, ?)", list(meta.items()))]
        )

    def meta(self) -> dict[str, str]:
        return {key: value for key, value in self.query("SELECT key, value FROM {t}meta")}

    def set_meta(self, key: str, value: str) -> None:
        self.write([
            ("DELETE FROM {t}meta WHERE key = ?", [(key,)]),
            ("INSERT INTO {t}meta(key, value) VALUES (?, ?)", [(key, value)]),
        ])  # fmt: skip

    @property
    def revision(self) -> int:
        rows = self.query("SELECT value FROM {t}meta WHERE key = 'revision'")
        return int(rows[0][0]) if rows else 0

    def documents(self) -> list[DocumentRecord]:
        rows = self.query(
            "SELECT source, path, title, kind, content_hash, chunks, ingested_at "
            "FROM {t}documents ORDER BY source"
        )
        return [DocumentRecord(*row) for row in rows]

    def document(self, source: str) -> Document | None:
        rows = self.query(
            "SELECT source, path, title, text, content_hash, kind, pages, body_start "
            "FROM {t}documents WHERE source = ?",
            (source,),
        )
        if not rows:
            return None
        row = rows[0]
        return Document(
            source=row[0],
            path=row[1],
            title=row[2],
            text=row[3],
            content_hash=row[4],
            kind=row[5],
            pages=tuple(Page(**p) for p in json.loads(row[6])),
            body_start=row[7],
        )

    def live_chunk_ids(self, source: str | None = None) -> set[str]:
        if source is None:
            return {r[0] for r in self.query("SELECT id FROM {t}chunks")}
        return {r[0] for r in self.query("SELECT id FROM {t}chunks WHERE source = ?", (source,))}

    def chunk_embed_hashes(self, source: str) -> dict[str, str]:
        rows = self.query("SELECT embed_hash, id FROM {t}chunks WHERE source = ?", (source,))
        return {embed: chunk_id for embed, chunk_id in rows}

    def chunk_rows(self) -> list[tuple[str, str, int, int, int]]:
        """(id, source, ordinal, start, end) of every live chunk (the exhaustive checks)."""
        rows = self.query('SELECT id, source, ordinal, start, "end" FROM {t}chunks')
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def sources_of(self, ids: set[str]) -> set[str]:
        sources: set[str] = set()
        for batch in batches(sorted(ids), 500):
            marks = ",".join("?" * len(batch))
            sql = f"SELECT DISTINCT source FROM {{t}}chunks WHERE id IN ({marks})"
            rows = self.query(sql, batch)
            sources.update(r[0] for r in rows)
        return sources

    def counts(self) -> dict[str, int]:
        documents = self.query("SELECT COUNT(*) FROM {t}documents")[0][0]
        chunks = self.query("SELECT COUNT(*) FROM {t}chunks")[0][0]
        return {"documents": int(documents), "chunks": int(chunks)}

    def commit_document(
        self, doc: Document, chunks: Sequence[Chunk], embed_hashes: Sequence[str]
    ) -> set[str]:
        """Make ``chunks`` the document's live chunks in one transaction; returns the
        ids that were live before."""
        before = self.live_chunk_ids(doc.source)
        pages = json.dumps(
            [
                {"number": p.number, "start": p.start, "end": p.end}
                | ({"ocr": True} if p.ocr else {})
                for p in doc.pages
            ]
        )
        row = (doc.source, doc.path, doc.title, doc.kind, doc.content_hash, doc.text, pages,
               doc.body_start, len(chunks), now())  # fmt: skip
        self.write([
            ("DELETE FROM {t}chunks WHERE source = ?", [(doc.source,)]),
            # Delete and insert rather than an upsert: the one spelling both dialects share.
            ("DELETE FROM {t}documents WHERE source = ?", [(doc.source,)]),
            ("INSERT INTO {t}documents(source, path, title, kind, content_hash, text, pages, "
             "body_start, chunks, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [row]),
            ('INSERT INTO {t}chunks(id, source, ordinal, start, "end", embed_hash) '
             "VALUES (?, ?, ?, ?, ?, ?)",
             [(c.id, c.source, c.ordinal, c.start, c.end, h)
              for c, h in zip(chunks, embed_hashes, strict=True)]),
            BUMP,
        ])  # fmt: skip
        return before

    def forget_document(self, source: str) -> set[str]:
        """Drop a document; returns its chunk ids (for Chroma deletion)."""
        ids = self.live_chunk_ids(source)
        self.write([
            ("DELETE FROM {t}chunks WHERE source = ?", [(source,)]),
            ("DELETE FROM {t}documents WHERE source = ?", [(source,)]),
            BUMP,
        ])  # fmt: skip
        return ids


# Every committed change moves the revision: other processes (and replicas) watch it.
BUMP: Step = (
    "UPDATE {t}meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'revision'",
    [()],
)


class Catalog(ABC):
    """A backend's view of every generation: which is live, creating, dropping, locking."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the manifest lives, for messages (a path, or a URL without password)."""

    @abstractmethod
    def live(self) -> str | None:
        """The live generation, or None before the first ingest."""

    @abstractmethod
    def switch(self, generation: str) -> None:
        """Make ``generation`` live, atomically."""

    @abstractmethod
    def open(self, generation: str) -> Manifest:
        """The manifest of an existing generation (``IndexCorruptError`` if it is not)."""

    @abstractmethod
    def create(self, generation: str, meta: dict[str, str]) -> Manifest:
        """A new, empty generation (not live until ``switch``)."""

    @abstractmethod
    def generations(self) -> list[str]:
        """Every generation this backend holds, live or not."""

    @abstractmethod
    def drop(self, generation: str) -> None:
        """Delete a generation's manifest (never the live one: callers check)."""

    @abstractmethod
    def lock(self, wait: bool = True, notify: Any = None) -> AbstractContextManager[None]:
        """The ingest lock: one writer at a time, released if the holder dies."""

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


def batches(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
