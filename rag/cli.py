"""The ``rag`` command line: parse, call the pipeline, render. No logic of its own.

Exit codes: 0 ok, 1 a user-facing error (the message names the next step),
2 a usage error. Every command that prints has ``--json``. This module holds the
group and the index and settings commands; ``ask`` and ``chat`` are
``rag.cli_answer``'s, shared options ``rag.cli_common``'s. Commands that live outside
rag/ (``ui``, ``serve``, ``eval``, ``bench ask``, ``bench serve``) plug in through entry
points; rag/ never imports them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import click

from rag import __version__
from rag.cli_answer import ask, chat
from rag.cli_common import (
    CliProgress,
    F,
    doc_option,
    echo_err,
    echo_json,
    generator_option,
    json_option,
    settings_from,
    watch_option,
)
from rag.errors import RagError
from rag.settings import Settings
from rag.settings_report import describe

PLUGIN_GROUP = "rag.commands"
BENCH_PLUGIN_GROUP = "rag.bench_commands"


class PluginGroup(click.Group):
    """A click group that also offers commands registered as entry points of ``plugin_group``.

    The web chat (``ui``) and the eval suite (``evals``) plug their commands in this
    way, so ``rag/`` never imports them; they are loaded only when invoked.
    """

    plugin_group = PLUGIN_GROUP

    def _plugins(self) -> dict[str, Any]:
        from importlib.metadata import entry_points

        return {ep.name: ep for ep in entry_points(group=self.plugin_group)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        plugin = self._plugins().get(cmd_name)
        if plugin is None:
            return None
        try:
            loaded = plugin.load()
        except ImportError as exc:
            raise RagError(
                f"The '{cmd_name}' command could not be loaded ({exc}). "
                "Reinstall from the checkout: pip install -e ."
            ) from exc
        return loaded if isinstance(loaded, click.Command) else None


class BenchGroup(PluginGroup):
    """``rag bench``: ``ingest`` is built in; ``ask`` is plugged in by ``evals`` because
    its questions come from eval suites, whose schema lives there."""

    plugin_group = BENCH_PLUGIN_GROUP


@click.group(cls=PluginGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rag")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the index and uploads live (default: RAG_DATA_DIR or the user data dir).",
)
@click.pass_context
def cli(ctx: click.Context, data_dir: Path | None) -> None:
    """Answer questions only from your documents, with verified citations. Offline."""
    ctx.ensure_object(dict)
    ctx.obj["overrides"] = {"data_dir": data_dir}


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--prune", is_flag=True, help="Remove indexed documents under PATHS that are gone.")
@click.option("--rebuild", is_flag=True, help="Start over: build a fresh index from PATHS.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another ingest is running.")
@watch_option
@json_option
@click.pass_context
def ingest(
    ctx: click.Context, paths: tuple[Path, ...], prune: bool, rebuild: bool, no_wait: bool,
    watch_dir: Path | None, as_json: bool,
) -> None:  # fmt: skip
    """Index PATHS (files or folders; default: the bundled corpus).

    Incremental: unchanged files cost nothing, changed files replace their chunks.
    With --watch FOLDER, syncs the folder on every change (pruning deleted files).
    """
    from rag.index.ingest import ingest as run_ingest

    settings = settings_from(ctx)
    if watch_dir is not None:
        if paths or rebuild:
            raise click.UsageError("--watch takes one folder: give no PATHS and no --rebuild.")
        watch_folder(settings, watch_dir, as_json)
        return
    progress = CliProgress(enabled=not as_json and sys.stderr.isatty())
    try:
        report = run_ingest(
            settings,
            list(paths) or None,
            prune=prune,
            rebuild=rebuild,
            wait=not no_wait,
            progress=progress,
            notify=echo_err,
        )
    finally:
        progress.close()
    for skipped in report.skipped:
        echo_err(f"warning: skipped {skipped['source']}: {skipped['reason']}")
    for warning in report.warnings:
        echo_err(f"warning: {warning}")
    if as_json:
        echo_json(dataclasses.asdict(report))
        return
    click.echo(
        f"{report.files} files: {report.documents_added} added, {report.documents_updated} "
        f"updated, {report.documents_unchanged} unchanged, {report.documents_removed} removed; "
        f"chunks {report.chunks_added} added / {report.chunks_unchanged} unchanged / "
        f"{report.chunks_removed} removed ({report.chunks_embedded} embedded) "
        f"in {report.seconds:.1f}s"
    )
    if report.ocr_pages:
        click.echo(f"OCR read {report.ocr_pages} scanned page(s) (cached for the next ingest).")
    if report.recovered:
        click.echo(f"Cleaned up {report.recovered} leftover chunks of an interrupted ingest.")


def watch_folder(settings: Settings, root: Path, as_json: bool) -> None:
    """``rag ingest --watch``: sync until Ctrl+C, one line per sync."""
    from rag.index.embedding import SentenceTransformerEmbedder
    from rag.index.watch import FolderWatcher, describe_sync, ingest_sync, load_failures, watch

    # One embedder for every sync: the model loads once, not per change.
    embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)

    def on_sync(pending: Any, report: Any) -> None:
        for failure in load_failures(report):
            echo_err(f"warning: skipped {failure}")
        if as_json:
            echo_json({"synced": str(root), "waiting": pending.waiting,
                       **dataclasses.asdict(report)})  # fmt: skip
        else:
            click.echo(describe_sync(root, pending, report))

    def on_error(exc: RagError) -> None:
        echo_err(f"warning: sync of {root} failed, retrying: {exc}")

    echo_err(
        f"Watching {root} (every {settings.watch_interval_s:g}s; a file is indexed once "
        f"unchanged for {settings.watch_debounce_s:g}s). Ctrl+C to stop."
    )
    watcher = FolderWatcher(root, settings.watch_debounce_s, images=settings.ocr == "all")
    try:
        watch(watcher, ingest_sync(settings, root, embedder), settings.watch_interval_s,
              on_sync, on_error)  # fmt: skip
    except KeyboardInterrupt:
        # An ingest interrupted here is crash-safe (its lock is released on the way out).
        echo_err(f"Stopped watching {root}.")


@cli.command()
@json_option
@click.pass_context
def docs(ctx: click.Context, as_json: bool) -> None:
    """List the indexed documents."""
    from rag.index.store import Index

    index = Index.open(settings_from(ctx))
    try:
        records = index.documents()
    finally:
        index.close()
    if as_json:
        echo_json([r.to_json() for r in records])
        return
    if not records:
        click.echo("The index is empty. Add documents with: rag ingest PATH")
        return
    width = max(len(r.source) for r in records)
    for r in records:
        click.echo(f"{r.source:<{width}}  {r.chunks:>5} chunks  {r.ingested_at}  {r.title}")


@cli.command()
@click.argument("source")
@json_option
@click.pass_context
def remove(ctx: click.Context, source: str, as_json: bool) -> None:
    """Remove the document SOURCE (as listed by `rag docs`) from the index."""
    from rag.index.removal import remove_document

    removed = remove_document(settings_from(ctx), source)
    if as_json:
        echo_json({"source": source, "chunks_removed": removed})
    else:
        click.echo(f"Removed {source} ({removed} chunks).")


@cli.command()
@json_option
@click.pass_context
def info(ctx: click.Context, as_json: bool) -> None:
    """Show the data directory, the model and what the index holds."""
    from rag.index.catalog import open_catalog
    from rag.index.store import Index

    settings = settings_from(ctx)
    data: dict[str, Any] = {
        "version": __version__,
        "data_dir": str(settings.data_dir),
        "cache_dir": str(settings.cache_dir),
        "embedding_model": settings.embedding_model,
        "generator": settings.generator,
        "index": None,
        "documents": 0,
        "chunks": 0,
    }
    catalog = open_catalog(settings)
    try:
        data["manifest"] = catalog.location
        live = catalog.live()
    finally:
        catalog.close()
    if live is not None:
        index = Index.open(settings)
        try:
            data.update(index.counts())
            data["index"] = str(index.directory) if not settings.manifest_url else live
            data["revision"] = index.revision
            data["vectors"] = index.collection.count()
        finally:
            index.close()
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:>16}: {value if value is not None else '(none yet: run rag ingest)'}")


@cli.command()
@json_option
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Show the effective settings and where each came from."""
    from rag.settings import config_path

    settings = settings_from(ctx)
    rows = describe(settings, ctx.obj["effective_overrides"])
    if as_json:
        echo_json(
            {
                "config_file": str(config_path()),
                "settings": [dataclasses.asdict(r) for r in rows],
            }
        )
        return
    click.echo(f"config file: {config_path()}")
    width = max(len(r.name) for r in rows)
    for r in rows:
        click.echo(f"{r.name:<{width}}  {r.value!s:<40}  [{r.source}]")


@cli.group(cls=BenchGroup)
def bench() -> None:
    """Benchmarks (figures for the README and the issue notes)."""


@bench.command("ingest")
@click.option(
    "--chunks",
    "target_chunks",
    default=3000,
    show_default=True,
    help="Approximate size of the generated corpus, in chunks.",
)
@json_option
@click.pass_context
def bench_ingest(ctx: click.Context, target_chunks: int, as_json: bool) -> None:  # fmt: skip
    """Ingest throughput vs raw embedding throughput, and an unchanged re-ingest."""
    from rag.bench import bench_ingest as run

    result = run(settings_from(ctx), target_chunks=target_chunks, log=echo_err)
    if as_json:
        echo_json(result)
    else:
        for key, value in result.items():
            click.echo(f"{key:>28}: {value}")


cli.add_command(ask)
cli.add_command(chat)

__all__ = [
    "CliProgress",
    "F",
    "cli",
    "doc_option",
    "echo_err",
    "echo_json",
    "generator_option",
    "json_option",
    "main",
    "settings_from",
]


def main() -> None:
    """Entry point: RagError -> message and exit 1; never a traceback for user errors."""
    try:
        cli.main(standalone_mode=False, prog_name="rag")
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        echo_err("Aborted.")
        sys.exit(1)
    except RagError as exc:
        echo_err(f"Error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        echo_err("Interrupted.")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("RAG_DEBUG"):
            raise
        echo_err(
            f"Internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug. Re-run with RAG_DEBUG=1 for the full traceback and report it."
        )
        sys.exit(1)
