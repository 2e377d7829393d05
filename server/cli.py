"""The ``rag serve`` command, plugged into the ``rag`` CLI as a ``rag.commands`` entry
point, and the exposure rule it enforces before binding."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import threading
from pathlib import Path

import click

from rag.cli import CliProgress, echo_err, settings_from
from rag.cli_common import watch_option
from rag.errors import RagError
from rag.index.embedding import SentenceTransformerEmbedder
from rag.index.watch import (
    FolderWatcher,
    Pending,
    Sync,
    describe_sync,
    ingest_sync,
    load_failures,
    watch,
)
from rag.settings import Settings
from rag.types import IngestReport


class ExposureError(click.ClickException):
    """Refusing to bind: a usage error (exit 2), like a bad flag."""

    exit_code = 2


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_exposure(settings: Settings) -> None:
    """Off loopback the API needs keys, and the web chat a password (or --no-chat)."""
    host = settings.api_host
    if is_loopback(host):
        return
    if not settings.api_key_list:
        raise ExposureError(
            f"Binding to {host} exposes the API to the network, and RAG_API_KEYS is not "
            "set. Set RAG_API_KEYS=key1,key2 (bearer tokens clients must send), or bind "
            "to 127.0.0.1."
        )
    if settings.api_chat and not settings.ui_auth:
        raise ExposureError(
            f"Binding to {host} exposes the web chat at / to the network, and RAG_UI_AUTH "
            "is not set. Set RAG_UI_AUTH=user:password, or pass --no-chat to serve the "
            "API only."
        )


def check_port(host: str, port: int) -> None:
    """Fail with a next step before the index is opened, rather than with uvicorn's
    exit code 3 after it, when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise RagError(
                f"Cannot serve on {host}:{port} ({exc.strerror or exc}). Choose another "
                "port with --port or RAG_API_PORT."
            ) from None


def start_watching(settings: Settings, root: Path, sync: Sync, stop: threading.Event) -> None:
    """Folder sync on a daemon thread, one line per sync on stderr."""

    def on_sync(pending: Pending, report: IngestReport) -> None:
        for failure in load_failures(report):
            echo_err(f"warning: skipped {failure}")
        echo_err(describe_sync(root, pending, report))

    def on_error(exc: RagError) -> None:
        echo_err(f"warning: sync of {root} failed, retrying: {exc}")

    watcher = FolderWatcher(root, settings.watch_debounce_s, images=settings.ocr == "all")
    thread = threading.Thread(
        target=watch,
        args=(watcher, sync, settings.watch_interval_s, on_sync, on_error, stop),
        name="folder-sync",
        daemon=True,  # a sync interrupted at exit is crash-safe like any ingest
    )
    thread.start()
    echo_err(f"Watching {root} (every {settings.watch_interval_s:g}s).")


@click.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8080).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Server processes (default 1); each opens the index and counts its own rate limit.",
)
@click.option("--no-chat", is_flag=True, help="Serve the API only, without the web chat at /.")
@watch_option
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None, no_chat: bool,
    watch_dir: Path | None,
) -> None:  # fmt: skip
    """Serve the HTTP API (OpenAI-compatible) and the web chat on http://127.0.0.1:8080.

    Docs at /docs. Builds the index from the bundled corpus first if there is none.
    """
    import uvicorn

    from rag.index.ingest import ensure_index
    from rag.index.removal import reconcile

    settings = settings_from(
        ctx, api_host=host, api_port=port, api_workers=workers, api_chat=False if no_chat else None
    )
    check_exposure(settings)
    check_port(settings.api_host, settings.api_port)
    progress = CliProgress(enabled=sys.stderr.isatty())
    try:
        ensure_index(settings, notify=echo_err, progress=progress)
    finally:
        progress.close()
    # A server killed during an upload leaves vectors no manifest row lists: harmless
    # (queries ignore them) but not free; they go now rather than at the next ingest.
    recovered = reconcile(settings)
    if recovered:
        echo_err(f"Removed {recovered} vector(s) left by an interrupted ingest.")
    where = f"http://{settings.api_host}:{settings.api_port}"
    chat = f"web chat on {where}/, " if settings.api_chat else ""
    echo_err(f"Serving {chat}API docs on {where}/docs (Ctrl+C to stop)")
    options = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_level": "warning",
        "access_log": False,  # one line per request would cost more than an answer
        "timeout_graceful_shutdown": 5,
    }
    if settings.api_workers == 1:
        from rag.pipeline import build_pipeline
        from server.app import create_app

        pipeline = build_pipeline(settings)
        stop = threading.Event()
        try:
            pipeline.ask("warm up")  # load the vector index and ONNX kernels first
            if watch_dir is not None:
                # Through the open index's lock: an embedded Chroma must not be reopened
                # under a sync (or a query under a sync's reopen).
                live = pipeline.live
                embedder = SentenceTransformerEmbedder(
                    settings.embedding_model, settings.embed_batch_size
                )

                def sync(pending: Pending) -> IngestReport:
                    return live.ingest(
                        [watch_dir], prune=True, only=list(pending.changed), embedder=embedder
                    )

                start_watching(settings, watch_dir, sync, stop)
            app = create_app(settings, pipeline, chat=settings.api_chat)
            uvicorn.run(app, **options)  # type: ignore[arg-type]
        finally:
            stop.set()
            pipeline.close()  # after uvicorn's graceful shutdown: no request is running
        return
    if watch_dir is not None:
        # One watcher for all workers, here in the parent: workers see its changes when
        # the manifest's revision moves, as they see any other process's ingest.
        start_watching(settings, watch_dir, ingest_sync(settings, watch_dir), threading.Event())
    # Workers are separate processes that build their own app: they read the same
    # settings from the environment, flags included.
    for name, value in ctx.obj["effective_overrides"].items():
        if value is not None:
            os.environ[f"RAG_{name.upper()}"] = str(value)
    uvicorn.run(
        "server.app:app_from_environment",
        factory=True,
        workers=settings.api_workers,
        **options,  # type: ignore[arg-type]
    )
