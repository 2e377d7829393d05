"""The manifest in PostgreSQL: what replicas with separate data directories share.

Each generation is a schema named after it (the same tables as a SQLite manifest);
the table ``rag_live`` names the live one, so the switch after a ``--rebuild`` is one
committed row, visible to every replica; ``pg_advisory_lock`` lets one ingest at a
time write, across machines, and the server releases it when its holder's connection
drops (a killed process included).

Connections fail fast (``manifest_timeout_s`` to connect and per statement) with a
``StoreUnavailableError`` (a 503 from ``rag serve``), and a connection broken by a
restarted server is replaced at its next use: the request after the restart works.
Imported only when ``manifest_url`` is set: psycopg is an optional extra.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from rag.errors import IndexCorruptError, IngestBusyError, InputError, StoreUnavailableError
from rag.index.manifest import GENERATION, REBUILD_HINT, Catalog, Manifest, Step, check_generation

try:
    import psycopg
    from psycopg import conninfo
except ImportError as exc:  # pragma: no cover - depends on the install
    raise InputError(
        "A PostgreSQL manifest (RAG_MANIFEST_URL) needs psycopg: "
        "pip install -e '.[postgres]' (or unset RAG_MANIFEST_URL for the SQLite manifest)."
    ) from exc

T = TypeVar("T")
# The ingest lock's key in pg_advisory_lock's one namespace per database: "rag-ing".
LOCK_KEY = int.from_bytes(b"rag-ing", "big")


def display_url(url: str) -> str:
    """The URL without its password (for messages)."""
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "RAG_MANIFEST_URL"
    user = f"{parts['user']}@" if parts.get("user") else ""
    port = f":{parts['port']}" if parts.get("port") else ""
    return f"postgresql://{user}{parts.get('host', '')}{port}/{parts.get('dbname', '')}"


class Connection:
    """One psycopg connection, re-established at its next use once it breaks."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._conn: psycopg.Connection[Any] | None = None
        self._guard = threading.Lock()
        # The server process holding this process's ingest lock, while it is held:
        # writes check that it still does (a restarted server dropped the lock).
        self.lock_pid: int | None = None

    def connect(self) -> psycopg.Connection[Any]:
        """A new connection (autocommit: reads never leave a transaction open, which
        would hold locks that a ``DROP SCHEMA`` of another replica waits for)."""
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(1, round(self.timeout_s)),
                options=f"-c statement_timeout={int(self.timeout_s * 1000)}",
                application_name="rag",
            )
        except psycopg.Error as exc:
            raise self.unavailable(exc) from exc

    def unavailable(self, exc: BaseException) -> StoreUnavailableError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return StoreUnavailableError(
            f"The manifest database at {display_url(self.url)} is not answering ({detail}). "
            "Start it, or check RAG_MANIFEST_URL."
        )

    def run(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """``work(connection)``, once more on a fresh connection if this one was broken.

        Retrying is safe: a transaction cut by a dropped connection was rolled back,
        and the manifest's writes are idempotent (a document's rows are replaced).
        """
        for attempt in (1, 2):
            with self._guard:
                if self._conn is None or self._conn.closed:
                    self._conn = self.connect()
                conn = self._conn
            try:
                return work(conn)
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if not (conn.broken or conn.closed) or attempt == 2:
                    raise self.unavailable(exc) from exc
                with self._guard:
                    if self._conn is conn:
                        self._conn = None
                conn.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._guard:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class PostgresManifest(Manifest):
    placeholder = "%s"

    def __init__(self, generation: str, connection: Connection) -> None:
        super().__init__(generation)
        self.prefix = f'"{generation}".'  # checked against GENERATION: nothing to escape
        self.connection = connection

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.connection.run(lambda conn: conn.execute(sql, tuple(params)).fetchall())

    def _transact(self, steps: Sequence[Step]) -> None:
        lock_pid = self.connection.lock_pid

        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction(), conn.cursor() as cursor:
                if lock_pid is not None:
                    # Inside the transaction that writes: a server restart (or a killed
                    # session) released the ingest lock, and another replica may now
                    # be ingesting; this writer stops before changing anything.
                    held = cursor.execute(
                        "SELECT count(*) FROM pg_locks "
                        "WHERE locktype = 'advisory' AND pid = %s AND granted",
                        (lock_pid,),
                    ).fetchone()
                    if not held or not held[0]:
                        raise StoreUnavailableError(
                            "This ingest lost its lock on the manifest database (did "
                            "it restart?), so it stopped without changing the index. "
                            "Run it again."
                        )
                for sql, rows in steps:
                    if len(rows) == 1:
                        cursor.execute(sql, tuple(rows[0]))
                    else:
                        cursor.executemany(sql, [tuple(r) for r in rows])

        self.connection.run(work)

    def close(self) -> None:
        pass  # the connection is the catalog's


class PostgresCatalog(Catalog):
    """Generations as schemas of one database; ``rag_live`` names the live one."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.connection = Connection(url, timeout_s)

    @property
    def location(self) -> str:
        return display_url(self.connection.url)

    def live(self) -> str | None:
        def read(conn: psycopg.Connection[Any]) -> str | None:
            # to_regclass: no error (and no logged one) before the first ingest made it.
            if conn.execute("SELECT to_regclass('rag_live')").fetchone() == (None,):
                return None
            row = conn.execute("SELECT generation FROM rag_live WHERE id = 1").fetchone()
            return None if row is None else str(row[0])

        generation = self.connection.run(read)
        if generation is None:
            return None
        return check_generation(generation, f"in {self.location} (table rag_live)")

    def switch(self, generation: str) -> None:
        def work(conn: psycopg.Connection[Any]) -> None:
            with conn.transaction():
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS rag_live ("
                    "id INTEGER PRIMARY KEY CHECK (id = 1), generation TEXT NOT NULL)"
                )
                conn.execute(
                    "INSERT INTO rag_live(id, generation) VALUES (1, %s) "
                    "ON CONFLICT (id) DO UPDATE SET generation = EXCLUDED.generation",
                    (generation,),
                )

        self.connection.run(work)

    def _exists(self, generation: str) -> bool:
        row = self.connection.run(
            lambda conn: conn.execute(
                "SELECT to_regclass(%s)", (f'"{generation}".meta',)
            ).fetchone()
        )
        return row is not None and row[0] is not None

    def open(self, generation: str) -> Manifest:
        if not GENERATION.match(generation) or not self._exists(generation):
            raise IndexCorruptError(
                f"The index generation {generation} in {self.location} is incomplete. "
                f"{REBUILD_HINT}"
            )
        return PostgresManifest(generation, self.connection)

    def create(self, generation: str, meta: dict[str, str]) -> Manifest:
        check_generation(generation, "(new generation)")
        manifest = PostgresManifest(generation, self.connection)
        # The schema and its tables in one transaction: a crash leaves none of them.
        manifest.write([(f'CREATE SCHEMA "{generation}"', [()])])
        manifest.initialise(meta)
        return manifest

    def generations(self) -> list[str]:
        rows = self.connection.run(
            lambda conn: conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s", ("index-%",)
            ).fetchall()
        )
        return sorted(r[0] for r in rows if GENERATION.match(r[0]))

    def drop(self, generation: str) -> None:
        check_generation(generation, "(stale generation)")
        self.connection.run(
            lambda conn: conn.execute(f'DROP SCHEMA IF EXISTS "{generation}" CASCADE')
        )

    def lock(self, wait: bool = True, notify: Any = None) -> AbstractContextManager[None]:
        return self._lock(wait, notify)

    @contextmanager
    def _lock(self, wait: bool, notify: Any) -> Iterator[None]:
        # A connection of its own: the lock belongs to a session, and the shared one
        # may be replaced after an error (which would release the lock unnoticed).
        conn = self.connection.connect()
        try:
            try:
                got = conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()
                if got != (True,):
                    if not wait:
                        raise IngestBusyError(
                            f"Another ingest is running on {self.location}. Wait for it "
                            "to finish and try again."
                        )
                    if notify:
                        notify(f"Another ingest is running on {self.location}; waiting...")
                    conn.execute("SET statement_timeout = 0")  # an ingest can take hours
                    conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            except psycopg.OperationalError as exc:
                raise self.connection.unavailable(exc) from exc
            self.connection.lock_pid = conn.info.backend_pid
            yield
        finally:
            self.connection.lock_pid = None
            conn.close()  # ends the session, and with it the lock

    def close(self) -> None:
        self.connection.close()
