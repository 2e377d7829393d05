"""Ingest, end to end in-process: the real packaged model and a real on-disk Chroma.

Covers first ingest, unchanged re-ingest, changed files and vector reuse, prune,
remove, rebuild, bad files, and the ingest lock. Every test ends with the exhaustive
check (``assert_index_matches``): ids, texts and vectors, not counts.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.documents.chunking import CHUNKER_VERSION
from rag.documents.loading import load_file
from rag.errors import IndexCorruptError, IngestBusyError, InputError
from rag.index.ingest import (
    embed_chunks,
    embed_hash,
    ensure_index,
    ingest,
    ingest_lock,
)
from rag.index.removal import remove_document
from rag.index.retrieval import CorpusView
from rag.index.store import Index, read_pointer
from tests.helpers import (
    CORPUS,
    assert_index_matches,
    corpus_files,
    index_chunks,
    make_pdf,
    texts_to_embed,
)

pytestmark = pytest.mark.slow


def _copy_corpus(tmp_path: Path, name: str = "corpus") -> Path:
    root = tmp_path / name
    shutil.copytree(CORPUS, root)
    return root


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_ingest_the_bundled_corpus(make_settings, counting) -> None:
    settings = make_settings()
    embedder = counting()
    report = ingest(settings, embedder=embedder)  # no paths: the bundled corpus

    doc = load_file(CORPUS / "trainium-article.md", "trainium-article.md")
    chunks = index_chunks(doc, settings)
    assert report.files == 1
    assert report.documents_added == 1
    assert report.chunks_added == report.chunks_embedded == len(chunks) > 10
    assert (report.chunks_unchanged, report.chunks_removed, report.recovered) == (0, 0, 0)
    assert report.skipped == [] and report.warnings == []
    assert report.seconds > 0

    index = Index.open(settings)
    try:
        assert index.counts() == {"documents": 1, "chunks": len(chunks)}  # what `rag info` shows
        assert index.collection.count() == len(chunks)
        record = index.documents()[0]
        assert record.title == "Amazon's AI initiative in the US is centered in Texas"
        assert record.path == str((CORPUS / "trainium-article.md").resolve())
        assert index.revision >= 1
    finally:
        index.close()
    assert_index_matches(settings, corpus_files(CORPUS))
    # The dimension probe aside, each chunk's texts were embedded once.
    embedded = sorted(t for t in embedder.texts if t != "dimension probe")
    assert embedded == sorted(texts_to_embed(chunks))


def test_reingest_of_unchanged_files_embeds_and_writes_nothing(make_settings, counting) -> None:
    settings = make_settings()
    ingest(settings, [CORPUS], embedder=counting())
    index = Index.open(settings)
    manifest = index.directory / "manifest.sqlite3"
    revision, ids, docs = index.revision, index.stored_ids(), index.documents()
    index.close()
    before = _sha(manifest)

    embedder = counting()
    report = ingest(settings, [CORPUS], embedder=embedder)

    assert embedder.texts == [], "nothing was embedded"
    assert report.chunks_embedded == report.chunks_added == report.chunks_removed == 0
    assert report.documents_unchanged == 1 and report.chunks_unchanged == len(ids)
    index = Index.open(settings)
    try:
        assert index.revision == revision
        assert index.stored_ids() == ids
        assert index.documents() == docs, "ingested_at is untouched too"
    finally:
        index.close()
    assert _sha(manifest) == before, "the manifest was not written"


def test_changed_file_replaces_its_chunks_and_reuses_vectors(
    make_settings, counting, embedder, tmp_path: Path
) -> None:
    settings = make_settings()
    root = _copy_corpus(tmp_path)
    (root / "second.md").write_text("# Second\n\nAnother document. It stays the same.\n")
    ingest(settings, [root], embedder=counting())
    article = root / "trainium-article.md"
    old_doc = load_file(article, "trainium-article.md")
    old_chunks = index_chunks(old_doc, settings)
    index = Index.open(settings)
    old_ids = index.live_chunk_ids("trainium-article.md")
    second_ids = index.live_chunk_ids("second.md")
    index.close()
    assert old_ids == {c.id for c in old_chunks}

    # One paragraph early in the file changes; everything after it shifts.
    text = article.read_text(encoding="utf-8")
    paragraph = "Amazon says reliability is very important."
    assert paragraph in text
    article.write_text(
        text.replace(paragraph, "Amazon says that reliability matters more than anything."),
        encoding="utf-8",
    )
    new_doc = load_file(article, "trainium-article.md")
    new_chunks = index_chunks(new_doc, settings)
    counter = counting()
    report = ingest(settings, [root], embedder=counter)

    assert report.documents_updated == 1 and report.documents_unchanged == 1
    assert report.files == 2
    new_ids = {c.id for c in new_chunks}
    assert report.chunks_added == len(new_ids - old_ids)
    assert report.chunks_removed == len(old_ids - new_ids) > 0
    # Only chunks whose embed text is new get embedded; the rest reuse stored vectors.
    old_hashes = {embed_hash(c) for c in old_chunks}
    must_embed = [c for c in new_chunks if c.id not in old_ids and embed_hash(c) not in old_hashes]
    assert 0 < report.chunks_embedded == len(must_embed) < len(new_chunks)
    assert sorted(counter.texts) == sorted(texts_to_embed(must_embed))

    state = assert_index_matches(settings, corpus_files(root))
    assert not (old_ids - new_ids) & state.stored, "retired chunk ids are gone from Chroma"
    assert second_ids <= state.stored

    # Reused vectors are the right vectors: equal to embedding the chunk's text now.
    index = Index.open(settings)
    try:
        stored = index.vectors([c.id for c in new_chunks])
    finally:
        index.close()
    fresh = embed_chunks(embedder, new_chunks)
    cosines = [float(np.dot(stored[c.id], v)) for c, v in zip(new_chunks, fresh, strict=True)]
    assert min(cosines) > 0.999


def test_prune_removes_deleted_files_only_under_the_given_paths(
    make_settings, counting, tmp_path: Path
) -> None:
    settings = make_settings()
    first, second = tmp_path / "first", tmp_path / "second"
    for root, name in ((first, "alpha"), (second, "beta")):
        (root / "sub").mkdir(parents=True)
        for n in range(3):
            (root / "sub" / f"{name}{n}.md").write_text(f"# {name} {n}\n\nAbout {name} {n}.\n")
    ingest(settings, [first, second], embedder=counting())
    assert len(Index.open(settings).documents()) == 6

    (first / "sub" / "alpha0.md").unlink()
    (second / "sub" / "beta0.md").unlink()
    report = ingest(settings, [first], embedder=counting())
    assert report.documents_removed == 0, "without --prune nothing is removed"

    report = ingest(settings, [first], prune=True, embedder=counting())
    assert report.documents_removed == 1
    assert report.chunks_removed > 0
    index = Index.open(settings)
    sources = [d.source for d in index.documents()]
    index.close()
    assert "sub/alpha0.md" not in sources
    assert "sub/beta0.md" in sources, "a file outside the given paths is kept"

    report = ingest(settings, [second / "sub"], prune=True, embedder=counting())
    assert report.documents_removed == 1
    expected = corpus_files(first)
    expected.update({f"sub/{p.name}": p for p in (second / "sub").iterdir()})
    # Reached through its "sub" folder this time, each file keeps its source name:
    # one file is one document, whatever root it is ingested from.
    index = Index.open(settings)
    sources = sorted(d.source for d in index.documents())
    index.close()
    assert sources == ["sub/alpha1.md", "sub/alpha2.md", "sub/beta1.md", "sub/beta2.md"]
    assert_index_matches(settings, expected)


def test_a_file_reached_through_two_paths_is_indexed_once(
    make_settings, counting, tmp_path: Path
) -> None:
    settings = make_settings()
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "top.md").write_text("# Top\n\nAt the top.\n")
    (root / "sub" / "deep.md").write_text("# Deep\n\nDeeper down.\n")
    report = ingest(settings, [root, root / "sub", root / "sub" / "deep.md"], embedder=counting())
    assert report.files == report.documents_added == 2
    report = ingest(settings, [root / "sub"], embedder=counting())
    assert (report.documents_added, report.documents_unchanged) == (0, 1)
    assert_index_matches(settings, corpus_files(root))


def test_remove_document(make_settings, counting, tmp_path: Path) -> None:
    settings = make_settings()
    root = _copy_corpus(tmp_path)
    (root / "other.md").write_text("# Other\n\nA second document. With two sentences.\n")
    ingest(settings, [root], embedder=counting())
    index = Index.open(settings)
    ids = index.live_chunk_ids("other.md")
    index.close()

    assert remove_document(settings, "other.md") == len(ids) > 0
    index = Index.open(settings)
    try:
        assert [d.source for d in index.documents()] == ["trainium-article.md"]
        assert not ids & index.stored_ids()
    finally:
        index.close()
    assert_index_matches(settings, {"trainium-article.md": root / "trainium-article.md"})

    with pytest.raises(InputError) as info:
        remove_document(settings, "other.md")
    assert "trainium-article.md" in str(info.value) and "rag docs" in str(info.value)


def test_rebuild_switches_to_a_new_generation(make_settings, counting) -> None:
    settings = make_settings()
    ingest(settings, [CORPUS], embedder=counting())
    old = read_pointer(settings.data_dir)
    assert old and (settings.data_dir / old).is_dir()

    report = ingest(settings, [CORPUS], rebuild=True, embedder=counting())
    new = read_pointer(settings.data_dir)
    assert new and new != old
    assert not (settings.data_dir / old).exists(), "the old generation is removed"
    assert [p.name for p in settings.data_dir.glob("index-*")] == [new]
    assert report.documents_added == 1 and report.chunks_embedded == report.chunks_added
    assert_index_matches(settings, corpus_files(CORPUS))


def test_bad_files_are_skipped_with_reasons_and_the_rest_ingested(
    make_settings, counting, tmp_path: Path
) -> None:
    import docx

    root = tmp_path / "mixed"
    (root / "nested").mkdir(parents=True)
    (root / "good.md").write_text("# Good\n\nThis file is fine. It has two sentences.\n")
    (root / "nested" / "notes.txt").write_text("Plain notes\n\nA plain text file. It is fine.\n")
    (root / "legacy.txt").write_bytes(
        "Le café est très bon. Il est déjà célèbre.\n".encode("cp1252")
    )
    (root / "page.html").write_text("<html><body><h1>Page</h1><p>An HTML page.</p></body></html>")
    (root / "report.pdf").write_bytes(make_pdf([["A PDF with a text layer."]]))
    document = docx.Document()
    document.add_paragraph("A Word document. It is fine too.")
    document.save(str(root / "memo.docx"))
    (root / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(500))
    (root / "data.xyz").write_text("unsupported")
    (root / "empty.md").write_text("")
    (root / "scan.pdf").write_bytes(make_pdf([None]))
    (root / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (root / "fake.docx").write_bytes(b"not a zip")
    (root / ".hidden.md").write_text("# Hidden\n\nDot files are not ingested.\n")

    settings = make_settings()
    report = ingest(settings, [root], embedder=counting())

    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {
        "binary.txt", "data.xyz", "empty.md", "scan.pdf", "broken.pdf", "fake.docx"
    }  # fmt: skip
    assert "binary" in reasons["binary.txt"]
    assert "unsupported" in reasons["data.xyz"]
    assert "no text" in reasons["empty.md"]
    assert "OCR" in reasons["scan.pdf"]
    assert "unreadable PDF" in reasons["broken.pdf"]
    assert "unreadable DOCX" in reasons["fake.docx"]
    good = ["good.md", "legacy.txt", "memo.docx", "nested/notes.txt", "page.html", "report.pdf"]
    assert report.files == report.documents_added == len(good)

    index = Index.open(settings)
    try:
        assert [d.source for d in index.documents()] == good
        legacy = index.document("legacy.txt")
        assert legacy is not None and "Le café est très bon." in legacy.text
    finally:
        index.close()
    assert_index_matches(settings, {s: root / s for s in good})


def test_missing_path_is_an_input_error_and_a_partial_miss_a_warning(
    make_settings, counting, tmp_path: Path
) -> None:
    settings = make_settings()
    with pytest.raises(InputError, match="not found"):
        ingest(settings, [tmp_path / "nowhere"], embedder=counting())
    report = ingest(settings, [CORPUS, tmp_path / "nowhere"], embedder=counting())
    assert report.files == 1
    assert any("nowhere" in w for w in report.warnings)


def test_second_ingest_fails_at_once_with_no_wait(make_settings, counting) -> None:
    settings = make_settings()
    ingest(settings, [CORPUS], embedder=counting())
    with ingest_lock(settings.data_dir):
        with pytest.raises(IngestBusyError, match="Another ingest is running"):
            ingest(settings, [CORPUS], rebuild=True, wait=False, embedder=counting())
        with pytest.raises(IngestBusyError):
            remove_document(settings, "trainium-article.md", wait=False)
    assert_index_matches(settings, corpus_files(CORPUS))


def test_second_ingest_waits_and_says_so(make_settings, counting) -> None:
    settings = make_settings()
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with ingest_lock(settings.data_dir):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(30)
    messages: list[str] = []

    def notify(message: str) -> None:
        messages.append(message)
        threading.Timer(0.3, release.set).start()

    started = time.perf_counter()
    report = ingest(settings, [CORPUS], embedder=counting(), notify=notify)
    thread.join(30)
    assert any("Another ingest is running" in m and "waiting" in m for m in messages)
    assert time.perf_counter() - started >= 0.3
    assert report.documents_added == 1
    assert_index_matches(settings, corpus_files(CORPUS))


def _mark_chunked_by_version(settings, version: int) -> None:
    index = Index.open(settings)
    try:
        index.manifest.set_meta("chunker_version", str(version))
    finally:
        index.close()


def test_an_index_split_by_another_splitter_version_is_rechunked(
    make_settings, counting, tmp_path: Path
) -> None:
    settings = make_settings()
    extra = tmp_path / "notes" / "notes.md"
    extra.parent.mkdir()
    extra.write_text("# Notes\n\nThe depot opens on Mondays. It closes at noon.\n")
    ingest(settings, [CORPUS, extra.parent], embedder=counting())
    extra.unlink()  # like an upload: only the manifest still holds its text
    _mark_chunked_by_version(settings, 1)

    # Until it is re-chunked, queries refuse the index with the command that fixes it.
    index = Index.open(settings)
    try:
        with pytest.raises(IndexCorruptError, match="rag ingest"):
            CorpusView(index, settings.context_sentences)
    finally:
        index.close()

    messages: list[str] = []
    embedder = counting()
    assert ensure_index(settings, notify=messages.append, embedder=embedder)
    assert any("text splitter changed" in m for m in messages)
    assert embedder.texts == []  # the same sentences keep their vectors
    index = Index.open(settings)
    try:
        assert index.chunker_version == CHUNKER_VERSION and not index.needs_rechunk
        view = CorpusView(index, settings.context_sentences)
        assert {c.source for c in view.chunks.values()} == {"trainium-article.md", "notes.md"}
        assert any(c.text == "The depot opens on Mondays." for c in view.chunks.values())
    finally:
        index.close()
    assert not ensure_index(settings, embedder=embedder)  # nothing left to do

    # A plain ingest says why it re-chunks files that did not change.
    _mark_chunked_by_version(settings, 1)
    report = ingest(settings, embedder=counting())
    assert any("text splitter changed" in w for w in report.warnings)
    assert report.documents_unchanged == 0 and report.chunks_embedded == 0
