"""Helpers shared by the ingest tests: clean subprocess environments, generated
corpora, a hand-written PDF, and the exhaustive index check.

The exhaustive check is the point of the integration tests: counts and sampled
queries can look healthy over a broken index (chroma-core/chroma#7678), so it
compares every id, every stored text and every vector, never a count alone.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import rag.index.ingest
from rag import _offline
from rag.documents.chunking import sentence_windows
from rag.documents.loading import load_file
from rag.index.store import Index
from rag.settings import Settings, load_settings
from rag.types import Chunk, Document
from server.sandbox import free_port as free_port  # the one copy, for the tests too

REPO = Path(__file__).resolve().parent.parent
# The answer JSON contract's keys (README), written out here so that a change to
# rag/types.py that drops or renames one fails the tests.
ANSWER_KEYS = {
    "question", "answer", "refused", "generator", "sentences", "citations", "evidence",
    "dropped", "timings_ms", "fallback",
}  # fmt: skip
CORPUS = REPO / "corpus"


# -- what ingest stores --------------------------------------------------------------------


def index_chunks(doc: Document, settings: Settings) -> list[Chunk]:
    """The chunks the index must hold for ``doc``: one sentence window per sentence and
    heading, with ``context_sentences`` sentences of context (what the README promises).

    Stated here rather than read from ``rag.index.ingest``, so that if ingest ever stores
    something else the exhaustive check fails instead of following it.
    """
    return sentence_windows(doc, settings.context_sentences)


def texts_to_embed(chunks: Sequence[Chunk]) -> list[str]:
    """The texts ``rag.index.ingest.embed_chunks`` sends to the model for ``chunks``."""
    sent: list[str] = []

    class Recorder:
        name = "recorder"

        def embed(self, texts: list[str]) -> np.ndarray:
            sent.extend(texts)
            return np.ones((len(texts), 4), dtype=np.float32)

    rag.index.ingest.embed_chunks(Recorder(), chunks)
    return sent


def corpus_files(*roots: Path) -> dict[str, Path]:
    """source -> path for every supported, visible file under ``roots`` (as ingest names them)."""
    files: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            rel = path.relative_to(root)
            if path.is_file() and not any(p.startswith(".") for p in rel.parts):
                files[rel.as_posix()] = path
    return files


# -- a scripted answer generator -------------------------------------------------------------


class ScriptedBackend:
    """An LLM backend that streams a fixed reply (a few characters at a time, as a model
    does) and records the prompts it was given. Registered as a generator through
    ``rag.generators`` by the ``scripted_generator`` fixture."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.prompts: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        self.prompts.append(messages)
        yield from (self.reply[i : i + 7] for i in range(0, len(self.reply), 7))


# -- subprocesses --------------------------------------------------------------------------


def clean_env(cache_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a user's shell: no RAG_* leaking in, no offline flags preset.

    The offline variables are removed so that a subprocess proves ``rag`` sets them
    itself (pytest's own process has them because it imported ``rag``).
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RAG_") and key not in _offline._OFFLINE_ENV
    }
    env["RAG_CONFIG"] = str(cache_dir.parent / "no-such-config.toml")
    env["RAG_CACHE_DIR"] = str(cache_dir)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_rag(
    *args: object, env: Mapping[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``python -m rag ARGS`` as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "rag", *map(str, args)],
        env=dict(env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# -- generated inputs ----------------------------------------------------------------------

_WORDS = (
    "amazon chip trainium cloud model data centre power cost network memory speed cluster "
    "training inference compiler kernel tensor vector latency throughput rack cooling "
    "silicon wafer design budget customer region"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 11))]
    return " ".join([words[0].capitalize(), *words[1:]]) + "."


def corpus_text(number: int, seed: int, edit: int = 0) -> str:
    """A small Markdown document; ``edit`` rewrites one sentence in its first section."""
    rng = random.Random(f"{seed}-{number}")
    first = [_sentence(rng) for _ in range(3)]
    second = [_sentence(rng) for _ in range(3)]
    if edit:
        first[1] = _sentence(random.Random(f"edit-{edit}-{number}"))
    return (
        f"# Document {number}\n\n"
        f"## Part A of document {number}\n\n{' '.join(first)}\n\n"
        f"## Part B of document {number}\n\n{' '.join(second)}\n"
    )


def write_corpus(root: Path, count: int, seed: int, edit: Mapping[int, int] | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        text = corpus_text(number, seed, (edit or {}).get(number, 0))
        (root / f"doc{number:02d}.md").write_text(text, encoding="utf-8")


def make_pdf(pages: Sequence[Sequence[str] | None], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica line per string; ``None`` is an image-only page."""
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    kids = []
    number = 4
    for lines in pages:
        page_id, content_id = number, number + 1
        number += 2
        kids.append(f"{page_id} 0 R")
        if lines is None:
            stream = b"0.5 g 72 72 200 200 re f"  # a grey box: a page with no text layer
        else:
            ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
            for line in lines:
                escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"({escaped}) Tj T*")
            ops.append("ET")
            stream = "\n".join(ops).encode("latin-1")
        objects[page_id] = (
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        ).encode()
        objects[content_id] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream)
    objects[2] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    info = None
    if title is not None:
        info = number
        objects[info] = f"<< /Title ({title}) >>".encode("latin-1")
        number += 1
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for obj in range(1, number):
        offsets[obj] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (obj, objects[obj])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % number
    for obj in range(1, number):
        out += b"%010d 00000 n \n" % offsets[obj]
    trailer = f"<< /Size {number} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "") + " >>"
    out += b"trailer\n" + trailer.encode() + b"\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def scanned_pdf(path: Path, pages: Sequence[Sequence[str]]) -> list[str]:
    """A PDF of page images (no text layer), as a scanner makes: each page the given
    paragraphs rendered at 300 dpi. Returns each page's text."""
    from evals.ocr_pages import render

    images, truths = zip(*(render(list(paragraphs)) for paragraphs in pages), strict=True)
    images[0].save(path, "PDF", resolution=300.0, save_all=True, append_images=list(images[1:]))
    return list(truths)


# -- the exhaustive check ------------------------------------------------------------------


@dataclass
class IndexState:
    stored: set[str]
    live: set[str]
    chunks: dict[str, Chunk]


def stored_records(index: Index, ids: list[str]) -> dict[str, tuple[str, dict, np.ndarray]]:
    """id -> (document, metadata, embedding) for ``ids``, read from Chroma in pages."""
    out: dict[str, tuple[str, dict, np.ndarray]] = {}
    for start in range(0, len(ids), 1000):
        got = index.collection.get(
            ids=ids[start : start + 1000], include=["documents", "metadatas", "embeddings"]
        )
        for chunk_id, text, meta, vector in zip(
            got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True
        ):
            out[chunk_id] = (text, dict(meta), np.asarray(vector, dtype=np.float32))
    return out


def assert_every_vector_finds_itself(index: Index, records: Mapping[str, tuple]) -> None:
    """Query Chroma with each stored vector: its own id must come back (ties aside).

    A wedged HNSW index keeps its counts and answers sampled queries; asking for
    every single chunk is what exposes it.
    """
    ids = sorted(records)
    if not ids:
        return
    vectors = np.stack([records[i][2] for i in ids])
    twins = Counter(v.tobytes() for v in vectors)
    by_k: dict[int, list[int]] = {}
    for row, vector in enumerate(vectors):
        by_k.setdefault(twins[vector.tobytes()], []).append(row)
    lost = []
    for k, rows in by_k.items():
        for start in range(0, len(rows), 500):
            part = rows[start : start + 500]
            hits = index.collection.query(
                query_embeddings=vectors[part], n_results=k, include=["distances"]
            )["ids"]
            lost += [ids[row] for row, got in zip(part, hits, strict=True) if ids[row] not in got]
    assert not lost, f"{len(lost)} of {len(ids)} stored chunks are not found by their own vector"


def assert_index_matches(settings: Settings, files: Mapping[str, Path]) -> IndexState:
    """The index holds exactly the chunks of ``files`` (source -> path), nothing else.

    Every id in Chroma is live in the manifest and vice versa, and both are exactly
    the chunks computed here from the files; every stored text is the file's text at
    its offsets; every stored vector finds its own chunk.
    """
    docs: dict[str, Document] = {}
    expected: dict[str, Chunk] = {}
    for source, path in files.items():
        docs[source] = doc = load_file(path, source)
        chunks = index_chunks(doc, settings)
        ids = [c.id for c in chunks]
        assert len(ids) == len(set(ids)), f"{source}: duplicate chunk ids"
        assert not set(ids) & set(expected), f"{source}: chunk ids shared with another file"
        expected.update((c.id, c) for c in chunks)

    index = Index.open(settings)
    try:
        records = index.documents()
        assert [r.source for r in records] == sorted(files), "one document row per file"
        for record in records:
            doc = docs[record.source]
            assert record.content_hash == doc.content_hash, record.source
            assert record.chunks == sum(1 for c in expected.values() if c.source == record.source)
            stored_doc = index.document(record.source)
            assert stored_doc is not None and stored_doc.text == doc.text, record.source

        rows = index.manifest.chunk_rows()
        live = {row[0] for row in rows}
        assert len(rows) == len(live), "duplicate chunk rows in the manifest"
        missing, extra = set(expected) - live, live - set(expected)
        assert not missing and not extra, f"manifest: {len(missing)} missing, {len(extra)} extra"
        for chunk_id, source, ordinal, start, end in rows:
            c = expected[chunk_id]
            assert (source, ordinal, start, end) == (c.source, c.ordinal, c.start, c.end)

        stored = index.stored_ids()
        assert index.collection.count() == len(stored), "duplicate ids in Chroma"
        assert stored == live, (
            f"Chroma vs manifest: {len(stored - live)} stored but not live, "
            f"{len(live - stored)} live but not stored"
        )

        found = stored_records(index, sorted(stored))
        assert set(found) == stored
        for chunk_id, (text, meta, vector) in found.items():
            c = expected[chunk_id]
            assert text == c.text == docs[c.source].text[meta["start"] : meta["end"]], chunk_id
            assert (meta["source"], meta["start"], meta["end"]) == (c.source, c.start, c.end)
            assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-3, f"{chunk_id}: not unit length"
        assert_every_vector_finds_itself(index, found)
        return IndexState(stored=stored, live=live, chunks=expected)
    finally:
        index.close()


def isolated_settings(config_dir: Path, **values: object) -> Settings:
    """Settings built as a clean environment would (no RAG_* variables, no config
    file), for fixtures wider than one test, where monkeypatch is not available."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("RAG_")}
    try:
        for key in saved:
            del os.environ[key]
        os.environ["RAG_CONFIG"] = str(config_dir / "no-such-config.toml")
        return load_settings(**values)
    finally:
        os.environ.pop("RAG_CONFIG", None)
        os.environ.update(saved)


def wait_for_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """Block until ``url`` answers 200; fail with the server's log if it dies or hangs."""
    import pytest

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{url} did not come up:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)


@contextmanager
def serving(
    command: Sequence[str], log: Path, ready_url: str, timeout: float, **popen: object
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` (output in ``log``), wait until ``ready_url`` answers 200, and
    stop it (terminate, then wait) when the block ends."""
    with open(log, "w") as out:
        process = subprocess.Popen(  # type: ignore[call-overload]
            list(command), stdout=out, stderr=subprocess.STDOUT, **popen
        )
    try:
        wait_for_http(ready_url, process, log, timeout)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)
