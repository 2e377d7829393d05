"""Replicas over a shared manifest: a real PostgreSQL and a real Chroma server.

Ingest and ask with the manifest in PostgreSQL (nothing of the index on the local
disk; the exhaustive check still holds; a rebuild drops the old generation's schema
and collection), then two ``rag serve`` processes with separate, empty data
directories: an upload through one is answered through the other within a second,
and a removal through the other is gone from the first within a second.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from rag.feedback.store import open_feedback_store
from rag.index.catalog import open_catalog
from rag.index.ingest import ingest
from rag.pipeline import build_pipeline
from rag.settings import Settings
from server.sandbox import ChromaServer
from tests.helpers import (
    CORPUS,
    REPO,
    assert_index_matches,
    clean_env,
    corpus_files,
    free_port,
    serving,
)

pytestmark = pytest.mark.slow

NOTE = "# Zephyr notes\n\nThe Zephyr project paints its widgets purple in Oslo.\n"
QUESTION = "What colour are the Zephyr widgets?"


@pytest.fixture(scope="module")
def chroma(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("chroma") / "db") as server:
        yield server


@pytest.fixture
def shared(make_settings: Any, postgres_url: str, chroma: ChromaServer) -> Callable[..., Settings]:
    """Settings of one replica: its own data directory, the shared manifest and Chroma."""

    def make(name: str = "data") -> Settings:
        return make_settings(name, manifest_url=postgres_url, chroma_mode="http",
                             chroma_port=chroma.port, chroma_timeout_s=3.0)  # fmt: skip

    return make


def test_ingest_ask_and_rebuild_with_the_manifest_in_postgres(
    shared: Callable[..., Settings], embedder: Any
) -> None:
    settings = shared()
    report = ingest(settings, [CORPUS], embedder=embedder)
    assert report.documents_added == 1
    assert not list(settings.data_dir.glob("index*")), "nothing of the index on local disk"
    assert_index_matches(settings, corpus_files(CORPUS))

    # Another machine (a fresh data directory) sees the same index.
    answer = build_pipeline(shared("elsewhere")).ask("Who makes Trainium?")
    assert not answer.refused and answer.citations
    again = ingest(shared("elsewhere"), [CORPUS], embedder=embedder)
    assert again.documents_unchanged == 1 and again.chunks_embedded == 0

    catalog = open_catalog(settings)
    try:
        old = catalog.live()
        ingest(settings, [CORPUS], rebuild=True, embedder=embedder)
        new = catalog.live()
        assert old != new and catalog.generations() == [new]
    finally:
        catalog.close()
    assert_index_matches(settings, corpus_files(CORPUS))


def _until(check: Callable[[], bool], limit: float) -> float:
    """Seconds until ``check()`` holds; fails after ``limit``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < limit, f"not within {limit} s"
        time.sleep(0.05)
    return time.monotonic() - started


def test_two_replicas_share_uploads_and_removals(
    shared: Callable[..., Settings], embedder: Any, model_cache_dir: Path, tmp_path: Path
) -> None:
    ingest(shared("seed"), [CORPUS], embedder=embedder)  # so neither replica builds it
    urls = []
    with ExitStack() as stack:
        for name in ("replica-a", "replica-b"):
            settings = shared(name)
            port = free_port()
            env = clean_env(
                model_cache_dir,
                RAG_MANIFEST_URL=str(settings.manifest_url),
                RAG_CHROMA_MODE="http",
                RAG_CHROMA_PORT=str(settings.chroma_port),
            )
            command = [sys.executable, "-m", "rag", "--data-dir", str(settings.data_dir),
                       "serve", "--port", str(port), "--no-chat"]  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            stack.enter_context(serving(command, tmp_path / f"{name}.log", f"{url}/readyz",
                                        timeout=120, env=env, cwd=REPO))  # fmt: skip
            urls.append(url)
        a = stack.enter_context(httpx.Client(base_url=urls[0], timeout=60))
        b = stack.enter_context(httpx.Client(base_url=urls[1], timeout=60))

        def listed(client: httpx.Client) -> set[str]:
            return {d["source"] for d in client.get("/api/documents").json()}

        assert listed(a) == listed(b) == {"trainium-article.md"}
        upload = a.post("/api/documents", files={"files": ("zephyr.md", NOTE, "text/markdown")})
        assert upload.status_code == 200, upload.text

        def answered() -> bool:
            answer = b.post("/api/ask", json={"question": QUESTION}).json()
            return "purple" in answer["answer"] and answer["citations"][0]["source"] == "zephyr.md"

        seen = _until(answered, limit=1.0)
        assert "zephyr.md" in listed(b)

        # A rating sent to one replica is in the shared database: both list it.
        answer = a.post("/api/ask", json={"question": "Who makes Trainium?"}).json()
        rated = a.post(
            "/api/feedback", json={"question": "Who makes Trainium?", "answer": answer,
                                   "rating": "up"},
        )  # fmt: skip
        assert rated.status_code == 201, rated.text
        for name in ("replica-a", "replica-b"):
            store = open_feedback_store(shared(name))
            try:
                assert rated.json()["id"] in {r.id for r in store.records()}, name
            finally:
                store.close()

        removed = b.delete("/api/documents/zephyr.md")
        assert removed.status_code == 200 and removed.json()["chunks_removed"] > 0

        def forgotten() -> bool:
            scoped = a.post("/api/ask", json={"question": QUESTION, "documents": ["zephyr.md"]})
            return "No indexed document matches" in scoped.json()["answer"]

        gone = _until(forgotten, limit=1.0)
        assert "zephyr.md" not in listed(a)
        unscoped = a.post("/api/ask", json={"question": QUESTION}).json()
        assert all(c["source"] != "zephyr.md" for c in unscoped["citations"])
        print(f"upload answered by the other replica after {seen:.2f} s, removal {gone:.2f} s")
    for name in ("replica-a", "replica-b"):
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log, log[-3000:]


def test_a_replica_fails_fast_while_chroma_or_postgres_is_away_and_recovers(
    shared: Callable[..., Settings],
    embedder: Any,
    chroma: ChromaServer,
    postgres: Any,
    model_cache_dir: Path,
    tmp_path: Path,
) -> None:
    """Faults (a) and (b) of ``rag bench faults``, through a real ``rag serve``: Chroma
    SIGKILLed, PostgreSQL stopped; every request a quick 503, then answers again."""
    from server.faults import fault_chroma, fault_postgres

    settings = shared("seed")
    ingest(settings, [CORPUS], embedder=embedder)
    port = free_port()
    env = clean_env(
        model_cache_dir,
        RAG_MANIFEST_URL=str(settings.manifest_url),
        RAG_MANIFEST_TIMEOUT_S="2",
        RAG_CHROMA_MODE="http",
        RAG_CHROMA_PORT=str(chroma.port),
        RAG_CHROMA_TIMEOUT_S="2",
    )
    command = [sys.executable, "-m", "rag", "--data-dir", str(tmp_path / "replica"), "serve",
               "--port", str(port), "--no-chat"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    lab = SimpleNamespace(chroma=chroma, postgres=postgres, settings=settings)
    with serving(command, tmp_path / "serve.log", f"{url}/readyz", 120, env=env, cwd=REPO):
        for fault in (fault_chroma, fault_postgres):
            result = fault(lab, SimpleNamespace(url=url))  # type: ignore[arg-type]
            assert result["ok"], result
            assert all(r["status"] == 503 for r in result["during"]), result
            assert result["slowest_s"] < 5 and result["recovered_after_s"] < 5, result
    assert "Traceback" not in (tmp_path / "serve.log").read_text()
