"""Crash safety: ``rag ingest`` killed with SIGKILL at different moments.

After each kill the previous index must open and answer queries, and the next
ingest must leave exactly the corpus's chunks: no duplicate, no lost chunk, no
stale vector. The check is exhaustive (every id, text and vector; see
``assert_index_matches``) because chroma-core/chroma#7678 wedges Chroma in a way
that counts and sampled queries do not show.

Kills are timed by progress, not by the clock (a clock-timed kill sometimes came
after the ingest had finished): right after the k-th manifest commit of the run (the
commit/delete path), or a fraction of the measured per-document time later (inside
embedding and Chroma writes), during re-ingests of replaced or half-edited files
and during a ``--rebuild``.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from rag.documents.loading import load_file
from rag.index.ingest import ingest
from rag.index.store import Index, read_pointer
from rag.settings import Settings, load_settings
from tests.helpers import (
    REPO,
    assert_index_matches,
    clean_env,
    corpus_files,
    index_chunks,
    write_corpus,
)

pytestmark = pytest.mark.slow

FILES = 40
# Small embedding groups interleave embedding, Chroma writes and manifest commits,
# so a kill has many different places to land.
BATCH = "4"


@dataclass
class Lab:
    corpus: Path
    baseline: Path  # a data dir holding the full corpus, built by a subprocess
    per_document: float  # seconds that run spent per document once the model was up


def _start(data_dir: Path, corpus: Path, cache_dir: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rag", "--data-dir", str(data_dir), "ingest", *flags, str(corpus)],
        env=clean_env(cache_dir, RAG_EMBED_BATCH_SIZE=BATCH),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _revision(data_dir: Path, building: bool = False) -> int | None:
    """The live manifest's revision (or the one being built beside it), or None.

    Read the way a second process would, while the ingest runs.
    """
    try:
        live = json.loads((data_dir / "index.json").read_text())["generation"]
        if building:
            generation = next(p.name for p in data_dir.glob("index-*") if p.name != live)
        else:
            generation = live
        db = sqlite3.connect(f"file:{data_dir / generation / 'manifest.sqlite3'}?mode=ro", uri=True)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        finally:
            db.close()
        return None if row is None else int(row[0])  # None: the manifest is being created
    except (OSError, ValueError, KeyError, StopIteration, sqlite3.Error):
        return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder) -> Lab:
    root = tmp_path_factory.mktemp("crash")
    corpus, baseline = root / "corpus", root / "baseline"
    write_corpus(corpus, FILES, seed=0)
    started = time.perf_counter()
    process = _start(baseline, corpus, model_cache_dir, "--json")
    ready = None
    while process.poll() is None:
        if ready is None and any(baseline.glob("index-*")):
            ready = time.perf_counter() - started  # the generation appears once the model is up
        time.sleep(0.01)
    total = time.perf_counter() - started
    out, err = process.communicate()
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["documents_added"] == FILES
    per_document = (total - (ready or 0.0)) / FILES
    return Lab(corpus=corpus, baseline=baseline, per_document=per_document)


def _settings(data_dir: Path, cache_dir: Path) -> Settings:
    return load_settings(data_dir=data_dir, cache_dir=cache_dir)


def _versions(corpus: Path, settings: Settings, texts: dict[str, str]) -> dict[str, set[str]]:
    """source -> chunk ids of that file's text as given (without touching the files)."""
    out = {}
    for source, text in texts.items():
        path = corpus / source
        original = path.read_bytes()
        path.write_text(text, encoding="utf-8")
        try:
            out[source] = {c.id for c in index_chunks(load_file(path, source), settings)}
        finally:
            path.write_bytes(original)
    return out


def _assert_usable_after_kill(settings: Settings, embedder, allowed: dict[str, list[set[str]]]):
    """The index a kill left behind opens, answers, and holds only whole documents.

    ``allowed``: for each source, the chunk-id sets of the versions it may hold (the
    version before the interrupted ingest, or the one it was writing).
    """
    index = Index.open(settings)
    try:
        live, stored = index.live_chunk_ids(), index.stored_ids()
        assert live <= stored, f"{len(live - stored)} live chunks have no vector"
        for record in index.documents():
            ids = index.live_chunk_ids(record.source)
            assert record.chunks == len(ids)
            assert ids in allowed[record.source], f"{record.source}: a half-written document"
        hits = index.collection.query(
            query_embeddings=embedder.embed(["trainium chip latency"]), n_results=5
        )["ids"][0]
        assert len(hits) == 5 and set(hits) <= stored
    finally:
        index.close()


def _kill_after(process: subprocess.Popen, commits, delay: float) -> None:
    """SIGKILL ``process`` ``delay`` seconds after ``commits()`` is true, mid-run."""
    while not commits():
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"the ingest ended (rc {process.returncode}) before the kill: {err!r}")
        time.sleep(0.002)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    assert process.returncode == -signal.SIGKILL, "the ingest had finished: not a crash test"


SCENARIOS = {
    # name: (how the corpus changes, ingest flags, commits before the kill, then how many
    # documents' worth of time to wait)
    "replace-all-first-commit": ("replace", (), 1, 0.0),
    "replace-all-mid-embedding": ("replace", (), FILES // 4, 1.5),
    "edit-half-first-commit": ("edit-half", (), 1, 0.0),
    "edit-half-mid": ("edit-half", (), FILES // 8, 0.5),
    "rebuild-half-way": ("none", ("--rebuild",), FILES // 2, 0.3),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_sigkill_leaves_a_usable_index_and_the_next_ingest_repairs_it(
    lab: Lab, scenario: str, tmp_path: Path, model_cache_dir: Path, embedder
) -> None:
    change, flags, commits, documents = SCENARIOS[scenario]
    data_dir = tmp_path / "data"
    shutil.copytree(lab.baseline, data_dir)
    write_corpus(lab.corpus, FILES, seed=0)
    settings = _settings(data_dir, model_cache_dir)
    before = {s: p.read_text(encoding="utf-8") for s, p in corpus_files(lab.corpus).items()}
    if change == "replace":
        write_corpus(lab.corpus, FILES, seed=1 + len(scenario))
    elif change == "edit-half":
        write_corpus(lab.corpus, FILES, seed=0, edit={n: 1 for n in range(0, FILES, 2)})
    after = {s: p.read_text(encoding="utf-8") for s, p in corpus_files(lab.corpus).items()}
    old_ids, new_ids = (
        _versions(lab.corpus, settings, before),
        _versions(lab.corpus, settings, after),
    )
    allowed = {s: [old_ids[s], new_ids[s]] for s in before}
    changed = sum(before[s] != after[s] for s in before)
    base_revision = _revision(data_dir)
    assert base_revision is not None

    building = "--rebuild" in flags
    target = commits if building else base_revision + commits
    process = _start(data_dir, lab.corpus, model_cache_dir, *flags)
    _kill_after(
        process,
        lambda: (_revision(data_dir, building) or 0) >= target,
        delay=documents * lab.per_document,
    )

    # The previous index (or a mix of whole old and new documents) is usable at once.
    _assert_usable_after_kill(settings, embedder, allowed)
    if building:
        assert len(list(data_dir.glob("index-*"))) == 2, "the half-built generation is left"

    report = ingest(settings, [lab.corpus], embedder=embedder)
    if not building:
        # The kill came mid-way: some documents were done, the rest are finished now.
        assert 0 < report.documents_updated < changed
        assert report.documents_unchanged == FILES - report.documents_updated
    assert report.skipped == []
    assert [p.name for p in data_dir.glob("index-*")] == [read_pointer(data_dir)]
    assert not list(data_dir.glob(".index.json.*")), "no stray pointer files"
    assert_index_matches(settings, corpus_files(lab.corpus))

    # And the repaired index is stable: one more ingest finds nothing to do.
    again = ingest(settings, [lab.corpus], embedder=embedder)
    assert again.chunks_embedded == again.chunks_added == again.chunks_removed == 0
    assert again.recovered == 0
