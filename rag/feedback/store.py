"""Where ratings live: SQLite in the data directory, or PostgreSQL beside the manifest.

Outside the index generations on purpose: ``rag ingest --rebuild`` replaces a
generation, and the ratings users gave must survive it (the SQLite file sits in the
data directory itself, the PostgreSQL table in the database's default schema). With
``manifest_url`` set, replicas write to one table, so a rating sent to one is listed by
all. A total-size cap (``feedback_max_mb``) keeps an open API from filling the disk;
reaching it, or any failed write, is an error the user sees, never a rating silently
lost. Both backends run the same SQL (the placeholders aside).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.errors import RagError
from rag.feedback.record import FeedbackRecord
from rag.settings import Settings

FILE = "feedback.sqlite3"
TABLE = "rag_feedback"
SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, created_at TEXT NOT NULL, "
    "rating TEXT NOT NULL, question TEXT NOT NULL, body TEXT NOT NULL)"
)


class FeedbackStoreError(RagError):
    """A rating that could not be saved or read (the storage is not answering)."""


class FeedbackFullError(FeedbackStoreError):
    """The storage holds ``feedback_max_mb`` of ratings already."""


class FeedbackStore(ABC):
    placeholder = "?"

    def __init__(self, max_bytes: int, where: str) -> None:
        self.max_bytes = max_bytes
        self.where = where

    @abstractmethod
    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement in its own transaction; the number of rows it changed."""

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.placeholder)

    def size_bytes(self) -> int:
        rows = self._read(f"SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM {TABLE}")
        return int(rows[0][0])

    def add(self, record: FeedbackRecord) -> str:
        body = json.dumps(record.to_json(), ensure_ascii=False, sort_keys=True)
        used = self.size_bytes()
        if used + len(body.encode()) > self.max_bytes:
            raise FeedbackFullError(
                f"The feedback storage is full ({used / 1e6:.1f} of "
                f"{self.max_bytes / 1e6:.1f} MB in {self.where}), so this rating was not "
                "saved. Export what is there (rag feedback export), then remove old ratings "
                "(rag feedback purge --before DATE), or raise RAG_FEEDBACK_MAX_MB."
            )
        self._write(
            self._sql(f"INSERT INTO {TABLE} (id, created_at, rating, question, body) "
                      "VALUES (?, ?, ?, ?, ?)"),
            (record.id, record.created_at, record.rating, record.question, body),
        )  # fmt: skip
        return record.id

    def records(self, since: str | None = None, before: str | None = None) -> list[FeedbackRecord]:
        """Ratings, oldest first; ``since``/``before`` are ISO dates or times (UTC)."""
        clauses, params = [], []
        if since:
            clauses.append("created_at >= ?")
            params.append(since)
        if before:
            clauses.append("created_at < ?")
            params.append(before)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._read(
            self._sql(f"SELECT body FROM {TABLE}{where} ORDER BY created_at, id"), params
        )
        return [FeedbackRecord.from_json(json.loads(body)) for (body,) in rows]

    def get(self, record_id: str) -> FeedbackRecord | None:
        rows = self._read(self._sql(f"SELECT body FROM {TABLE} WHERE id = ?"), (record_id,))
        return FeedbackRecord.from_json(json.loads(rows[0][0])) if rows else None

    def purge(self, before: str | None = None) -> int:
        """Remove ratings given before ``before`` (all of them without it)."""
        if before:
            return self._write(self._sql(f"DELETE FROM {TABLE} WHERE created_at < ?"), (before,))
        return self._write(f"DELETE FROM {TABLE}")

    @abstractmethod
    def close(self) -> None: ...


class SqliteFeedbackStore(FeedbackStore):
    def __init__(self, path: Path, max_bytes: int) -> None:
        super().__init__(max_bytes, str(path))
        self._guard = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode = WAL")
            with self.db:
                self.db.execute(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackStoreError(
                f"The feedback file {path} cannot be opened ({exc}): check that the data "
                "directory is writable (RAG_DATA_DIR)."
            ) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            with self._guard:
                return self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.Error as exc:
            raise FeedbackStoreError(f"Cannot read the feedback in {self.where} ({exc}).") from exc

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            with self._guard, self.db:
                return self.db.execute(sql, tuple(params)).rowcount
        except sqlite3.Error as exc:
            raise FeedbackStoreError(
                f"The rating could not be saved in {self.where} ({exc}): check the disk and "
                "that the data directory is writable."
            ) from exc

    def close(self) -> None:
        with self._guard:
            self.db.close()


class PostgresFeedbackStore(FeedbackStore):
    placeholder = "%s"

    def __init__(self, url: str, timeout_s: float, max_bytes: int) -> None:
        from rag.index.manifest_pg import Connection, display_url

        super().__init__(max_bytes, display_url(url))
        self.connection = Connection(url, timeout_s)
        self._write(SCHEMA)

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.connection.run(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    def _write(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.connection.run(lambda conn: conn.execute(sql, tuple(params)).rowcount)

    def size_bytes(self) -> int:
        # LENGTH counts characters in PostgreSQL; the cap is about bytes on disk.
        rows = self._read(f"SELECT COALESCE(SUM(OCTET_LENGTH(body)), 0) FROM {TABLE}")
        return int(rows[0][0])

    def close(self) -> None:
        self.connection.close()


def open_feedback_store(settings: Settings) -> FeedbackStore:
    """The store ``settings`` name: the shared database with ``manifest_url``, else a
    SQLite file in the data directory."""
    max_bytes = int(settings.feedback_max_mb * 1_000_000)
    if settings.manifest_url:
        return PostgresFeedbackStore(settings.manifest_url, settings.manifest_timeout_s, max_bytes)
    return SqliteFeedbackStore(settings.data_dir / FILE, max_bytes)
