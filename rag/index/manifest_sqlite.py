"""The SQLite manifest backend (the default): one ``manifest.sqlite3`` per generation
directory and ``index.json`` naming the live one; ``rag.index.manifest`` says what a
manifest holds and runs the SQL both backends share.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from rag.errors import IndexCorruptError
from rag.index.manifest import (
    POINTER,
    REBUILD_HINT,
    Catalog,
    Manifest,
    Step,
    check_generation,
)

# -- SQLite ------------------------------------------------------------------------------------


class SqliteManifest(Manifest):
    def __init__(self, generation: str, path: Path) -> None:
        super().__init__(generation)
        self.path = path
        try:
            self.db = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(
                f"The index manifest {path} is unreadable ({exc}). {REBUILD_HINT}"
            ) from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.db.execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise  # another writer, not damage
            raise IndexCorruptError(
                f"The index manifest {self.path} is unreadable ({exc}). {REBUILD_HINT}"
            ) from exc
        except sqlite3.DatabaseError as exc:
            raise IndexCorruptError(
                f"The index manifest {self.path} is unreadable ({exc}). {REBUILD_HINT}"
            ) from exc

    def _transact(self, steps: Sequence[Step]) -> None:
        with self.db:
            for sql, rows in steps:
                if len(rows) == 1:
                    self.db.execute(sql, tuple(rows[0]))  # DDL cannot go through executemany
                else:
                    self.db.executemany(sql, [tuple(r) for r in rows])

    def close(self) -> None:
        self.db.close()


class SqliteCatalog(Catalog):
    """Generations as directories of the data directory; ``index.json`` names the live one."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    @property
    def location(self) -> str:
        return str(self.data_dir)

    def live(self) -> str | None:
        pointer = self.data_dir / POINTER
        if not pointer.exists():
            return None
        try:
            generation = json.loads(pointer.read_text(encoding="utf-8"))["generation"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise IndexCorruptError(
                f"The index pointer {pointer} is unreadable. {REBUILD_HINT}"
            ) from exc
        return check_generation(generation, str(pointer))

    def switch(self, generation: str) -> None:
        # One atomic rename; the old generation stays until removed.
        tmp = self.data_dir / f".{POINTER}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"generation": generation}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.data_dir / POINTER)
        _fsync_dir(self.data_dir)

    def open(self, generation: str) -> Manifest:
        path = self.data_dir / generation / "manifest.sqlite3"
        if not path.is_file():
            raise IndexCorruptError(f"The index in {path.parent} is incomplete. {REBUILD_HINT}")
        return SqliteManifest(generation, path)

    def create(self, generation: str, meta: dict[str, str]) -> Manifest:
        directory = self.data_dir / generation
        directory.mkdir(parents=True, exist_ok=False)
        manifest = SqliteManifest(generation, directory / "manifest.sqlite3")
        manifest.initialise(meta)
        return manifest

    def generations(self) -> list[str]:
        return sorted(e.name for e in self.data_dir.glob("index-*") if e.is_dir())

    def drop(self, generation: str) -> None:
        shutil.rmtree(self.data_dir / generation, ignore_errors=True)

    def lock(self, wait: bool = True, notify: Any = None) -> AbstractContextManager[None]:
        from rag.documents.sources import (
            ingest_lock,  # rag.documents.sources imports rag.index.store, which imports us
        )

        return ingest_lock(self.data_dir, wait=wait, notify=notify)

    def close(self) -> None:
        pass  # each manifest holds its own SQLite connection


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
