"""Chroma as a server (``chroma_mode = "http"``): a real ``chroma run`` started by this
module; ingest, ask and the web chat's handlers against it in-process; the token on
every request (through a recording proxy, since Chroma 1.x does not check tokens
itself); stale generations' collections deleted; a dead or silent server failing fast;
and ``rag serve`` answering 503 while Chroma is away and recovering by itself. One
Chroma server for the module.
"""

from __future__ import annotations

import http.client
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.errors import StoreUnavailableError
from rag.index.ingest import ingest
from rag.index.store import Index, read_pointer
from rag.pipeline import build_pipeline
from rag.settings import Settings
from tests.helpers import CORPUS, REPO, assert_index_matches, corpus_files, free_port, serving

pytestmark = pytest.mark.slow

CHROMA = Path(sys.executable).parent / "chroma"
TOKEN = "chroma-test-token"
QUESTION = "Who makes Trainium?"


@pytest.fixture(scope="module")
def chroma_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    directory = tmp_path_factory.mktemp("chroma-server")
    port = free_port()
    log = directory / "chroma.log"
    command = [str(CHROMA), "run", "--path", str(directory / "db"), "--host", "127.0.0.1",
               "--port", str(port)]  # fmt: skip
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    with serving(command, log, f"http://127.0.0.1:{port}/api/v2/heartbeat", 60, env=env):
        yield port


class RecordingProxy:
    """Forwards HTTP to Chroma and records each request's Authorization header.

    Stands in for the authenticating proxy a real deployment puts in front of Chroma;
    ``stop``/``start`` on the same port play a Chroma server going away and coming back.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.seen: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def forward(self) -> None:
                proxy.seen.append(self.headers.get("Authorization"))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                upstream.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None


@pytest.fixture
def http_settings(make_settings: Any, chroma_port: int) -> Any:
    def make(name: str = "data", **overrides: Any) -> Settings:
        values = {"chroma_mode": "http", "chroma_port": chroma_port, "chroma_timeout_s": 2.0}
        return make_settings(name, **{**values, **overrides})

    return make


def collections(port: int) -> set[str]:
    url = f"http://127.0.0.1:{port}/api/v2/tenants/default_tenant/databases/default_database"
    return {c["name"] for c in httpx.get(f"{url}/collections", timeout=5).json()}


def test_ingest_and_ask_against_the_server(http_settings: Any, embedder: Any) -> None:
    settings = http_settings()
    report = ingest(settings, [CORPUS], embedder=embedder)
    assert report.chunks_added > 0
    generation = read_pointer(settings.data_dir)
    assert generation is not None
    # Vectors are on the server, in the generation's own collection; nothing embedded here.
    assert not (settings.data_dir / generation / "chroma").exists()
    assert generation in collections(settings.chroma_port)
    assert_index_matches(settings, corpus_files(CORPUS))

    answer = build_pipeline(settings).ask(QUESTION).to_json()
    assert not answer["refused"], answer
    assert answer["citations"] and answer["citations"][0]["source"].endswith(".md")

    again = ingest(settings, [CORPUS], embedder=embedder)  # incremental: nothing to redo
    assert again.chunks_embedded == 0 and again.documents_unchanged == 1


def test_rebuild_deletes_the_old_generations_collection(
    http_settings: Any, embedder: Any, chroma_port: int
) -> None:
    settings = http_settings()
    ingest(settings, [CORPUS], embedder=embedder)
    old = read_pointer(settings.data_dir)
    ingest(settings, [CORPUS], rebuild=True, embedder=embedder)
    new = read_pointer(settings.data_dir)
    assert old != new
    names = collections(chroma_port)
    assert new in names and old not in names
    assert not (settings.data_dir / str(old)).exists()


def test_the_token_is_sent_with_every_request(
    http_settings: Any, embedder: Any, chroma_port: int
) -> None:
    proxy = RecordingProxy(chroma_port)
    proxy.start()
    try:
        settings = http_settings(chroma_port=proxy.port, chroma_token=TOKEN)
        ingest(settings, [CORPUS], embedder=embedder)
        assert not build_pipeline(settings).ask(QUESTION).refused
    finally:
        proxy.stop()
    assert len(proxy.seen) > 5
    assert set(proxy.seen) == {f"Bearer {TOKEN}"}


def test_a_server_that_is_down_fails_fast_with_a_clear_error(
    http_settings: Any, embedder: Any
) -> None:
    settings = http_settings(chroma_port=free_port())  # nothing listens there
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="chroma run"):
        ingest(settings, [CORPUS], embedder=embedder)
    assert time.monotonic() - started < 3


def test_a_server_that_never_answers_times_out(http_settings: Any) -> None:
    # Accepts connections (the kernel's backlog) but never replies: a hung Chroma.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        settings = http_settings(chroma_port=silent.getsockname()[1], chroma_timeout_s=0.5)
        index = Index.create(settings, "index-20260101T000000-00000001", dim=384)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="not answering"):
            _ = index.collection
        assert time.monotonic() - started < 3
        index.close()


def test_rag_serve_answers_503_while_chroma_is_away_and_recovers(
    http_settings: Any, embedder: Any, chroma_port: int, model_cache_dir: Path, tmp_path: Path
) -> None:
    settings = http_settings()
    ingest(settings, [CORPUS], embedder=embedder)
    proxy = RecordingProxy(chroma_port)
    proxy.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_CACHE_DIR=str(model_cache_dir),
        RAG_CONFIG=str(tmp_path / "no-config.toml"),
        RAG_CHROMA_MODE="http",
        RAG_CHROMA_PORT=str(proxy.port),
        RAG_CHROMA_TIMEOUT_S="2",
    )
    log = tmp_path / "serve.log"
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rag", "--data-dir", str(settings.data_dir), "serve",
               "--port", str(port), "--no-chat"]  # fmt: skip
    try:
        with (
            serving(command, log, f"{url}/readyz", timeout=120, env=env, cwd=REPO),
            httpx.Client(base_url=url, timeout=30) as client,
        ):
            assert client.post("/api/ask", json={"question": QUESTION}).status_code == 200

            proxy.stop()
            started = time.monotonic()
            down = client.post("/api/ask", json={"question": QUESTION})
            assert time.monotonic() - started < 5
            assert down.status_code == 503, down.text
            assert "Chroma server" in down.json()["error"]["message"]
            assert client.get("/readyz").status_code == 503

            proxy.start()  # the same port: Chroma is back
            back = client.post("/api/ask", json={"question": QUESTION})
            assert back.status_code == 200, back.text
            assert not back.json()["refused"]
            assert client.get("/readyz").status_code == 200
    finally:
        if proxy._server is not None:
            proxy.stop()
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


def test_the_web_chat_uploads_answers_and_removes_over_the_server(
    http_settings: Any, embedder: Any, tmp_path: Path
) -> None:
    from ui.handlers import ChatService, Session

    settings = http_settings()
    ingest(settings, [CORPUS], embedder=embedder)
    service = ChatService(settings, build_pipeline(settings))
    upload = tmp_path / "zephyr-notes.md"
    upload.write_text(
        "# Zephyr notes\n\nThe Zephyr project paints its widgets purple in Oslo.\n",
        encoding="utf-8",
    )
    assert "1 new" in service.upload([str(upload)])
    *_, (markdown, answer) = service.respond("What colour are the Zephyr widgets?", Session())
    assert "purple" in markdown and not answer.refused
    assert "Removed zephyr-notes.md" in service.remove("zephyr-notes.md")
    generation = read_pointer(settings.data_dir)
    index = Index.open(settings)
    try:  # the removed document's vectors are gone from the server too
        assert index.collection.count() == index.counts()["chunks"]
    finally:
        index.close()
    assert generation in collections(settings.chroma_port)
