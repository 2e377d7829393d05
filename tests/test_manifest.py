"""The manifest contract, run on both backends: SQLite files and a real PostgreSQL.

The same checks for each (``catalog`` is parametrized): the live pointer, documents and
chunks round-tripping, the revision moving on every change, a document's chunks going
live in one transaction (all or nothing), stale generations dropped, and the ingest
lock held across processes and released when its holder is killed. Then what only
PostgreSQL has: a restarted server reconnected without an error, a dead one failing
fast, the password kept out of messages, and the settings that refuse a shared
manifest over embedded Chroma.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.documents.chunking import sentence_windows
from rag.errors import IndexCorruptError, IngestBusyError, InputError, StoreUnavailableError
from rag.index.catalog import open_catalog
from rag.index.manifest import Catalog
from rag.index.manifest_sqlite import SqliteCatalog
from rag.settings import load_settings
from rag.settings_report import describe
from rag.types import Document
from tests.helpers import REPO, clean_env, free_port

GEN_A = "index-20260101T000000-aaaaaaaa"
GEN_B = "index-20260102T000000-bbbbbbbb"
META = {"schema_version": "1", "embedding_model": "m", "revision": "0"}


def _doc(source: str, text: str) -> Document:
    return Document(source=source, path=f"/docs/{source}", title=source.upper(), text=text,
                    content_hash=f"hash-{len(text)}", kind="md")  # fmt: skip


def _commit(manifest: Any, doc: Document) -> set[str]:
    chunks = sentence_windows(doc, 1)
    return manifest.commit_document(doc, chunks, [f"e-{c.id}" for c in chunks])


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return load_settings(data_dir=tmp_path / "data")
    url = request.getfixturevalue("postgres_url")
    return load_settings(data_dir=tmp_path / "data", manifest_url=url, chroma_mode="http")


@pytest.fixture
def catalog(settings: Any) -> Iterator[Catalog]:
    catalog = open_catalog(settings)
    yield catalog
    catalog.close()


def test_the_live_pointer_starts_empty_and_switches(catalog: Catalog) -> None:
    assert catalog.live() is None
    catalog.create(GEN_A, META).close()
    assert catalog.live() is None, "a new generation is not live until switched to"
    catalog.switch(GEN_A)
    assert catalog.live() == GEN_A
    catalog.create(GEN_B, META).close()
    catalog.switch(GEN_B)
    assert catalog.live() == GEN_B
    assert catalog.generations() == [GEN_A, GEN_B]


def test_documents_round_trip_and_every_change_moves_the_revision(catalog: Catalog) -> None:
    manifest = catalog.create(GEN_A, META)
    assert manifest.revision == 0 and manifest.meta()["embedding_model"] == "m"
    first = _doc("a.md", "# A\n\nThe depot opens on Mondays. It closes at noon.\n")
    second = _doc("b.md", "# B\n\nPurple widgets ship from Oslo.\n")
    assert _commit(manifest, first) == set()
    assert _commit(manifest, second) == set()
    assert manifest.revision == 2
    assert [r.source for r in manifest.documents()] == ["a.md", "b.md"]
    assert manifest.document("a.md") == first
    assert manifest.document("missing.md") is None
    a_ids = {c.id for c in sentence_windows(first, 1)}
    assert manifest.live_chunk_ids("a.md") == a_ids
    assert manifest.counts() == {"documents": 2, "chunks": len(manifest.live_chunk_ids())}
    assert manifest.sources_of(a_ids) == {"a.md"}
    assert set(manifest.chunk_embed_hashes("a.md").values()) == a_ids
    assert {row[0] for row in manifest.chunk_rows()} == manifest.live_chunk_ids()

    edited = _doc("a.md", "# A\n\nThe depot opens on Tuesdays. It closes at noon.\n")
    assert _commit(manifest, edited) == a_ids  # the ids that were live before
    assert manifest.document("a.md") == edited and manifest.revision == 3
    assert manifest.forget_document("b.md") == {c.id for c in sentence_windows(second, 1)}
    assert manifest.revision == 4 and [r.source for r in manifest.documents()] == ["a.md"]
    manifest.set_meta("chunker_version", "7")
    assert manifest.meta()["chunker_version"] == "7"
    manifest.close()


def test_a_documents_chunks_go_live_in_one_transaction(catalog: Catalog) -> None:
    manifest = catalog.create(GEN_A, META)
    old = _doc("a.md", "# A\n\nThe depot opens on Mondays. It closes at noon.\n")
    _commit(manifest, old)
    revision = manifest.revision
    new = _doc("a.md", "# A\n\nThe depot opens on Fridays. It closes at one.\n")
    chunks = sentence_windows(new, 1)
    broken = [*chunks, chunks[-1]]  # the last insert fails (a duplicate id), mid-transaction
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        manifest.commit_document(new, broken, ["h"] * len(broken))
    # Nothing of the failed commit is visible: the old document, whole, and its revision.
    assert manifest.document("a.md") == old
    assert manifest.live_chunk_ids("a.md") == {c.id for c in sentence_windows(old, 1)}
    assert manifest.revision == revision
    _commit(manifest, new)  # and the manifest still takes the next commit
    assert manifest.document("a.md") == new
    manifest.close()


def test_stale_generations_are_dropped(catalog: Catalog) -> None:
    catalog.create(GEN_A, META).close()
    catalog.create(GEN_B, META).close()
    catalog.switch(GEN_B)
    catalog.drop(GEN_A)
    assert catalog.generations() == [GEN_B]
    with pytest.raises(IndexCorruptError, match="rag ingest --rebuild"):
        catalog.open(GEN_A)
    catalog.open(GEN_B).close()


HOLDER = """
import sys, time
from rag.settings import load_settings
from rag.index.catalog import open_catalog
url = sys.argv[2]
settings = load_settings(data_dir=sys.argv[1], manifest_url=url or None,
                         chroma_mode="http" if url else "embedded")
with open_catalog(settings).lock(wait=False):
    print("locked", flush=True)
    time.sleep(300)
"""


def test_the_ingest_lock_holds_across_processes_until_its_holder_dies(
    settings: Any, catalog: Catalog, tmp_path: Path
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(settings.data_dir), settings.manifest_url or ""],
        env=clean_env(tmp_path / "cache"), cwd=REPO, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with (
            pytest.raises(IngestBusyError, match="Another ingest is running"),
            catalog.lock(wait=False),
        ):
            pass
        holder.send_signal(signal.SIGKILL)  # no unlock: the server (or the OS) must notice
        holder.wait(10)
        deadline = time.monotonic() + 5
        while True:
            try:
                with catalog.lock(wait=False):
                    break
            except IngestBusyError:
                assert time.monotonic() < deadline, "the dead holder's lock was never released"
                time.sleep(0.05)
    finally:
        holder.kill()
        holder.wait(10)


# -- PostgreSQL only ---------------------------------------------------------------------------


def test_a_restarted_postgres_is_reconnected_without_an_error(
    postgres: Any, postgres_url: str, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path, manifest_url=postgres_url, chroma_mode="http")
    catalog = open_catalog(settings)
    try:
        manifest = catalog.create(GEN_A, META)
        catalog.switch(GEN_A)
        _commit(manifest, _doc("a.md", "# A\n\nOne fact.\n"))
        postgres.stop("fast")  # ends every session: the open connection is now broken
        with pytest.raises(StoreUnavailableError, match="not answering"):
            manifest.documents()
        postgres.start()
        assert catalog.live() == GEN_A  # the next use reconnects by itself
        assert [r.source for r in manifest.documents()] == ["a.md"]
        _commit(manifest, _doc("b.md", "# B\n\nAnother fact.\n"))
        assert manifest.revision == 2
    finally:
        catalog.close()


def test_an_ingest_that_lost_its_lock_writes_nothing(postgres_url: str, tmp_path: Path) -> None:
    """A server restart ends the lock's session; the ingest must not go on unlocked."""
    import psycopg

    settings = load_settings(data_dir=tmp_path, manifest_url=postgres_url, chroma_mode="http")
    catalog = open_catalog(settings)
    try:
        manifest = catalog.create(GEN_A, META)
        catalog.switch(GEN_A)
        with catalog.lock():
            _commit(manifest, _doc("a.md", "# A\n\nOne fact.\n"))
            with psycopg.connect(postgres_url, autocommit=True) as admin:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted"
                )
            with pytest.raises(StoreUnavailableError, match="lost its lock"):
                _commit(manifest, _doc("b.md", "# B\n\nAnother fact.\n"))
        assert [r.source for r in manifest.documents()] == ["a.md"]
        with catalog.lock():  # a new ingest takes the lock again and writes
            _commit(manifest, _doc("b.md", "# B\n\nAnother fact.\n"))
        assert [r.source for r in manifest.documents()] == ["a.md", "b.md"]
    finally:
        catalog.close()


def test_a_postgres_that_is_down_fails_fast_with_a_clear_error(tmp_path: Path) -> None:
    url = f"postgresql://rag:secret-password@127.0.0.1:{free_port()}/rag"
    settings = load_settings(data_dir=tmp_path, manifest_url=url, chroma_mode="http")
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="RAG_MANIFEST_URL") as info:
        open_catalog(settings).live()
    assert time.monotonic() - started < 3
    assert "secret-password" not in str(info.value)
    shown = {row.name: row.value for row in describe(settings)}["manifest_url"]
    assert "secret-password" not in shown and "127.0.0.1" in shown


def test_a_shared_manifest_needs_a_chroma_server(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="chroma_mode http"):
        load_settings(data_dir=tmp_path, manifest_url="postgresql://rag@db/rag")
    with pytest.raises(InputError, match="postgresql://"):
        load_settings(data_dir=tmp_path, manifest_url="mysql://db/rag", chroma_mode="http")
    assert isinstance(open_catalog(load_settings(data_dir=tmp_path)), SqliteCatalog)
