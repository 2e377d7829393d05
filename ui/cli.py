"""The ``rag ui`` command, plugged into the ``rag`` CLI as a ``rag.commands`` entry point."""

from __future__ import annotations

import sys

import click

from rag.cli import CliProgress, echo_err, settings_from


@click.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 7860).")
@click.option("--auth", default=None, help="user:password required to use the chat.")
@click.option("--no-auth", is_flag=True, help="Allow a non-loopback address without a password.")
@click.pass_context
def ui(
    ctx: click.Context, host: str | None, port: int | None, auth: str | None, no_auth: bool
) -> None:
    """Start the web chat (Gradio) on http://127.0.0.1:7860.

    Builds the index from the bundled corpus first if there is none.
    """
    from rag.index.ingest import ensure_index

    settings = settings_from(ctx, ui_host=host, ui_port=port, ui_auth=auth)
    from ui.app import check_exposure, launch

    check_exposure(settings.ui_host, settings.ui_auth, no_auth)
    progress = CliProgress(enabled=sys.stderr.isatty())
    try:
        ensure_index(settings, notify=echo_err, progress=progress)
    finally:
        progress.close()
    echo_err(f"Web chat on http://{settings.ui_host}:{settings.ui_port} (Ctrl+C to stop)")
    launch(settings, settings.ui_host, settings.ui_port, settings.ui_auth, no_auth)
