"""A missing, corrupt or incompatible index: a clear error that names ``rag ingest --rebuild``,
and ``--rebuild`` really does recover from it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rag.errors import IndexCorruptError, IndexMissingError
from rag.index.ingest import ingest
from rag.index.store import Index, read_pointer
from rag.settings import Settings
from tests.helpers import CORPUS, assert_index_matches, corpus_files

pytestmark = pytest.mark.slow

REBUILD = "rag ingest --rebuild"


@pytest.fixture
def built(make_settings, embedder) -> Settings:
    settings = make_settings()
    ingest(settings, [CORPUS], embedder=embedder)
    return settings


def _generation(settings: Settings) -> Path:
    generation = read_pointer(settings.data_dir)
    assert generation
    return settings.data_dir / generation


def _overwrite(path: Path, offset: int = 0, size: int = 4096) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xde\xad\xbe\xef" * (size // 4))


def test_no_index_yet(make_settings) -> None:
    settings = make_settings()
    with pytest.raises(IndexMissingError) as info:
        Index.open(settings)
    assert "rag ingest" in str(info.value)
    assert str(settings.data_dir) in str(info.value)


def _corrupt_pointer(settings: Settings) -> None:
    (settings.data_dir / "index.json").write_text("{not json")


def _pointer_to_nowhere(settings: Settings) -> None:
    (settings.data_dir / "index.json").write_text('{"generation": "index-gone"}')


def _pointer_escaping(settings: Settings) -> None:
    (settings.data_dir / "index.json").write_text('{"generation": "../../etc"}')


def _corrupt_manifest(settings: Settings) -> None:
    manifest = _generation(settings) / "manifest.sqlite3"
    assert manifest.stat().st_size > 4096
    _overwrite(manifest)  # the SQLite header and first page


def _truncated_manifest(settings: Settings) -> None:
    (_generation(settings) / "manifest.sqlite3").write_bytes(b"SQLite format 3\x00 but cut")


def _missing_manifest(settings: Settings) -> None:
    (_generation(settings) / "manifest.sqlite3").unlink()


def _old_schema(settings: Settings) -> None:
    index = Index.open(settings)
    index.manifest.set_meta("schema_version", "0")
    index.close()


CORRUPTIONS: dict[str, Callable[[Settings], None]] = {
    "pointer-not-json": _corrupt_pointer,
    "pointer-to-missing-generation": _pointer_to_nowhere,
    "pointer-escaping-data-dir": _pointer_escaping,
    "manifest-overwritten": _corrupt_manifest,
    "manifest-truncated": _truncated_manifest,
    "manifest-missing": _missing_manifest,
    "manifest-old-schema": _old_schema,
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_index_is_reported_and_rebuild_recovers(built: Settings, embedder, corruption):
    CORRUPTIONS[corruption](built)

    with pytest.raises(IndexCorruptError) as info:
        index = Index.open(built)
        index.documents()  # in case the damage only shows on first read
    assert REBUILD in str(info.value)
    with pytest.raises(IndexCorruptError, match=REBUILD):
        ingest(built, [CORPUS], embedder=embedder)  # a plain ingest refuses, clearly

    report = ingest(built, [CORPUS], rebuild=True, embedder=embedder)
    assert report.documents_added == 1
    assert len(list(built.data_dir.glob("index-*"))) == 1
    assert_index_matches(built, corpus_files(CORPUS))


def test_corrupt_vector_store_is_reported_and_rebuild_recovers(built: Settings, embedder):
    _overwrite(_generation(built) / "chroma" / "chroma.sqlite3")
    index = Index.open(built)  # the manifest is fine; the vectors are not
    try:
        with pytest.raises(IndexCorruptError, match=REBUILD):
            _ = index.collection
    finally:
        index.close()
    with pytest.raises(IndexCorruptError, match=REBUILD):
        ingest(built, [CORPUS], embedder=embedder)
    ingest(built, [CORPUS], rebuild=True, embedder=embedder)
    assert_index_matches(built, corpus_files(CORPUS))


@pytest.mark.parametrize(
    "model",
    [
        "sentence-transformers/all-MiniLM-L6-v2",  # the same weights under another name
        "/models/some-other-model",
    ],
)
def test_index_built_with_another_model_is_incompatible(built: Settings, make_settings, model):
    other = make_settings(embedding_model=model)
    assert other.data_dir == built.data_dir
    with pytest.raises(IndexCorruptError) as info:
        Index.open(other)
    message = str(info.value)
    assert "all-MiniLM-L6-v2" in message and model in message and REBUILD in message
    Index.open(built).close()  # the index itself is untouched


def test_rebuild_with_another_model_name(built: Settings, make_settings) -> None:
    from rag.index.embedding import resolve_model_path

    # A local model folder is a valid model setting; --rebuild switches the index to it.
    other = make_settings(embedding_model=str(resolve_model_path("all-MiniLM-L6-v2")))
    with pytest.raises(IndexCorruptError):
        ingest(other, [CORPUS])
    ingest(other, [CORPUS], rebuild=True)
    index = Index.open(other)
    try:
        assert index.meta["embedding_model"] == other.embedding_model
    finally:
        index.close()
    with pytest.raises(IndexCorruptError):
        Index.open(built)
    assert_index_matches(other, corpus_files(CORPUS))
