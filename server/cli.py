"""The ``rag serve`` command, plugged into the ``rag`` CLI as a ``rag.commands`` entry
point, and the exposure rule it enforces before binding."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

import click

from rag.cli import CliProgress, echo_err, settings_from
from rag.errors import RagError
from rag.settings import Settings


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
@click.pass_context
def serve(
    ctx: click.Context, host: str | None, port: int | None, workers: int | None, no_chat: bool
) -> None:
    """Serve the HTTP API (OpenAI-compatible) and the web chat on http://127.0.0.1:8080.

    Docs at /docs. Builds the index from the bundled corpus first if there is none.
    """
    import uvicorn

    from rag.ingest import ensure_index

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
        try:
            pipeline.ask("warm up")  # load the vector index and ONNX kernels first
            app = create_app(settings, pipeline, chat=settings.api_chat)
            uvicorn.run(app, **options)  # type: ignore[arg-type]
        finally:
            pipeline.close()  # after uvicorn's graceful shutdown: no request is running
        return
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
