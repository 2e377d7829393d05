"""The ``rag`` command line: parse, call the pipeline, render. No logic of its own.

Exit codes: 0 ok, 1 a user-facing error (the message names the next step),
2 a usage error. Every command that prints has ``--json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from rag import __version__
from rag.errors import RagError
from rag.settings import Settings, describe, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """The same ``--json`` flag on every printing command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=None))


def _err(message: str) -> None:
    click.echo(message, err=True)


class CliProgress:
    """Renders ``progress(stage, done, total)`` callbacks as click progress bars on stderr."""

    LABELS: ClassVar[dict[str, str]] = {"load": "Reading files", "embed": "Embedding chunks"}

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._stage: str | None = None
        self._bar: Any = None
        self._done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        if stage != self._stage:
            self.close()
            self._stage = stage
            self._done = 0
            self._bar = click.progressbar(
                length=total, label=self.LABELS.get(stage, stage), file=sys.stderr
            )
            self._bar.__enter__()
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


def _settings(ctx: click.Context, **more: Any) -> Settings:
    overrides = {**ctx.obj["overrides"], **more}
    ctx.obj["effective_overrides"] = overrides
    return load_settings(**overrides)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--prune", is_flag=True, help="Remove indexed documents under PATHS that are gone.")
@click.option("--rebuild", is_flag=True, help="Start over: build a fresh index from PATHS.")
@click.option("--no-wait", is_flag=True, help="Fail at once if another ingest is running.")
@json_option
@click.pass_context
def ingest(
    ctx: click.Context, paths: tuple[Path, ...], prune: bool, rebuild: bool, no_wait: bool,
    as_json: bool,
) -> None:  # fmt: skip
    """Index PATHS (files or folders; default: the bundled corpus).

    Incremental: unchanged files cost nothing, changed files replace their chunks.
    """
    from rag.ingest import ingest as run_ingest

    settings = _settings(ctx)
    progress = CliProgress(enabled=not as_json and sys.stderr.isatty())
    try:
        report = run_ingest(
            settings,
            list(paths) or None,
            prune=prune,
            rebuild=rebuild,
            wait=not no_wait,
            progress=progress,
            notify=_err,
        )
    finally:
        progress.close()
    for skipped in report.skipped:
        _err(f"warning: skipped {skipped['source']}: {skipped['reason']}")
    for warning in report.warnings:
        _err(f"warning: {warning}")
    if as_json:
        _echo_json(dataclasses.asdict(report))
        return
    click.echo(
        f"{report.files} files: {report.documents_added} added, {report.documents_updated} "
        f"updated, {report.documents_unchanged} unchanged, {report.documents_removed} removed; "
        f"chunks {report.chunks_added} added / {report.chunks_unchanged} unchanged / "
        f"{report.chunks_removed} removed ({report.chunks_embedded} embedded) "
        f"in {report.seconds:.1f}s"
    )
    if report.recovered:
        click.echo(f"Cleaned up {report.recovered} leftover chunks of an interrupted ingest.")


@cli.command()
@json_option
@click.pass_context
def docs(ctx: click.Context, as_json: bool) -> None:
    """List the indexed documents."""
    from rag.store import Index

    index = Index.open(_settings(ctx))
    try:
        records = index.documents()
    finally:
        index.close()
    if as_json:
        _echo_json([r.to_json() for r in records])
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
    from rag.ingest import remove_document

    removed = remove_document(_settings(ctx), source)
    if as_json:
        _echo_json({"source": source, "chunks_removed": removed})
    else:
        click.echo(f"Removed {source} ({removed} chunks).")


@cli.command()
@json_option
@click.pass_context
def info(ctx: click.Context, as_json: bool) -> None:
    """Show the data directory, the model and what the index holds."""
    from rag.store import Index, read_pointer

    settings = _settings(ctx)
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
    if read_pointer(settings.data_dir) is not None:
        index = Index.open(settings)
        try:
            data.update(index.counts())
            data["index"] = str(index.directory)
            data["revision"] = index.revision
            data["vectors"] = index.collection.count()
        finally:
            index.close()
    if as_json:
        _echo_json(data)
        return
    for key, value in data.items():
        click.echo(f"{key:>16}: {value if value is not None else '(none yet: run rag ingest)'}")


@cli.command()
@json_option
@click.pass_context
def config(ctx: click.Context, as_json: bool) -> None:
    """Show the effective settings and where each came from."""
    from rag.settings import config_path

    settings = _settings(ctx)
    rows = describe(settings, ctx.obj["effective_overrides"])
    if as_json:
        _echo_json(
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


@cli.group()
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

    result = run(_settings(ctx), target_chunks=target_chunks, log=_err)
    if as_json:
        _echo_json(result)
    else:
        for key, value in result.items():
            click.echo(f"{key:>28}: {value}")


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
        _err("Aborted.")
        sys.exit(1)
    except RagError as exc:
        _err(f"Error: {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        _err("Interrupted.")
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("RAG_DEBUG"):
            raise
        _err(
            f"Internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug. Re-run with RAG_DEBUG=1 for the full traceback and report it."
        )
        sys.exit(1)
