"""The replicated deployment ``rag bench faults`` plays its faults on, on loopback:
a private PostgreSQL (the shared manifest) and Chroma server from ``server.sandbox``, a
fake OpenAI-compatible server that misbehaves on demand, and ``rag serve`` replicas with
empty data directories, each given the bounds below on every wait; plus ``status``, the
one timed HTTP request every probe of them makes.

Separate from the faults themselves (``server.faults``): this starts, wires and stops
processes; the faults only break them and judge what the replicas answered.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import click

from rag.settings import Settings, load_settings
from server.sandbox import ChromaServer, PostgresServer, free_port

# Bounds given to the replicas: every wait on a dependency ends within these.
DEPENDENCY_TIMEOUT_S = 2.0
LLM_TIMEOUT_S = 3.0
# A request slower than this counts as hung (an upload's ingest is work, not a hang:
# it gets server.faults.UPLOAD_S).
HUNG_S = 10.0


class FakeLLM:
    """An OpenAI-compatible endpoint that misbehaves: ``hang`` (reads the request, never
    answers) or ``drop`` (closes the connection without a reply)."""

    def __init__(self) -> None:
        self.mode = "hang"
        self.release = threading.Event()
        llm = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if llm.mode == "hang":
                    llm.release.wait(600)
                self.close_connection = True
                self.connection.close()  # no status line: the client sees a dropped socket

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Replica:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Lab:
    """PostgreSQL, Chroma, the fake LLM and the index they hold, in one temp folder."""

    root: Path
    postgres: PostgresServer
    chroma: ChromaServer
    llm: FakeLLM
    settings: Settings
    replicas: list[Replica] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
        env.update(
            RAG_CONFIG=os.environ.get("RAG_CONFIG", str(self.root / "no-config.toml")),
            RAG_CACHE_DIR=str(self.settings.cache_dir),
            RAG_MANIFEST_URL=str(self.settings.manifest_url),
            RAG_MANIFEST_TIMEOUT_S=str(DEPENDENCY_TIMEOUT_S),
            RAG_CHROMA_MODE="http",
            RAG_CHROMA_PORT=str(self.chroma.port),
            RAG_CHROMA_TIMEOUT_S=str(DEPENDENCY_TIMEOUT_S),
            RAG_LLM_BASE_URL=self.llm.url,
            RAG_LLM_TIMEOUT_S=str(LLM_TIMEOUT_S),
            RAG_API_RATE_LIMIT="0",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start_replica(self, name: str, port: int | None = None) -> Replica:
        port = port or free_port()
        data_dir = self.root / name
        log = self.root / f"{name}.log"
        command = [sys.executable, "-m", "rag", "--data-dir", str(data_dir), "serve",
                   "--port", str(port), "--no-chat"]  # fmt: skip
        with open(log, "ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                       env=self.env())  # fmt: skip
        replica = Replica(name, f"http://127.0.0.1:{port}", process, log)
        self.replicas.append(replica)
        deadline = time.monotonic() + 180
        while status(replica.url, "GET", "/readyz")[0] != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise click.ClickException(f"{name} did not come up:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        return replica


@contextmanager
def lab(log: Callable[[str], None]) -> Iterator[Lab]:
    from rag.index.ingest import ingest

    root = Path(tempfile.mkdtemp(prefix="rag-faults-"))
    postgres = PostgresServer()
    llm = FakeLLM()
    try:
        with postgres, ChromaServer(root / "chroma" / "db") as chroma:
            settings = load_settings(
                data_dir=root / "seed", manifest_url=postgres.create_database("rag"),
                chroma_mode="http", chroma_port=chroma.port,
                chroma_timeout_s=DEPENDENCY_TIMEOUT_S, manifest_timeout_s=DEPENDENCY_TIMEOUT_S,
            )  # fmt: skip
            log(f"Indexing {settings.corpus_dir} into the shared manifest...")
            ingest(settings)
            here = Lab(root, postgres, chroma, llm, settings)
            try:
                yield here
            finally:
                for replica in here.replicas:
                    replica.stop()
    finally:
        llm.close()
        shutil.rmtree(root, ignore_errors=True)


def status(
    url: str, method: str, path: str, timeout: float = HUNG_S + 20, **kwargs: Any
) -> tuple[int, float, str]:
    """(status, seconds, error message or ''); status 0 when no response came."""
    import httpx

    started = time.monotonic()
    try:
        response = httpx.request(method, f"{url}{path}", timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        return 0, round(time.monotonic() - started, 3), f"{type(exc).__name__}: {exc}"
    seconds = round(time.monotonic() - started, 3)
    message = ""
    if response.status_code != 200:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
    return response.status_code, seconds, message
