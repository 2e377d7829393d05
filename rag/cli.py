"""The ``rag`` command line: parse, call the pipeline, render. No logic of its own.

Exit codes: 0 ok, 1 a user-facing error (the message names the next step),
2 a usage error. Every command that prints has ``--json``. Commands that live outside
rag/ (``ui``, ``eval``, ``bench ask``) plug in through entry points; rag/ never
imports them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from rag import __version__, generators
from rag.errors import RagError
from rag.settings import DeprecatedSettingWarning, Settings, describe, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """The same ``--json`` flag on every printing command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=None))


def echo_err(message: str) -> None:
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


def settings_from(ctx: click.Context, **more: Any) -> Settings:
    overrides = {**ctx.obj["overrides"], **more}
    ctx.obj["effective_overrides"] = overrides
    # A deprecated setting is reported as one line, like other warnings, not as
    # Python's "file:line: FutureWarning" with a source line.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DeprecatedSettingWarning)
        settings = load_settings(**overrides)
    for warning in caught:
        if issubclass(warning.category, DeprecatedSettingWarning):
            echo_err(f"warning: {warning.message}")
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return settings


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

    settings = settings_from(ctx)
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
    if report.recovered:
        click.echo(f"Cleaned up {report.recovered} leftover chunks of an interrupted ingest.")


@cli.command()
@json_option
@click.pass_context
def docs(ctx: click.Context, as_json: bool) -> None:
    """List the indexed documents."""
    from rag.store import Index

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
    from rag.ingest import remove_document

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
    from rag.store import Index, read_pointer

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


def _open_pipeline(settings: Settings) -> Any:
    """The query pipeline, building the index from the default corpus on first use."""
    from rag.ingest import ensure_index
    from rag.pipeline import build_pipeline

    progress = CliProgress(enabled=sys.stderr.isatty())
    try:
        ensure_index(settings, notify=echo_err, progress=progress)
    finally:
        progress.close()
    return build_pipeline(settings)


def _render_answer(answer: Any, verbose: bool = False) -> str:
    lines = []
    if answer.refused:
        lines.append(answer.answer)
    else:
        lines.append(
            " ".join(s.text + "".join(f" [{c}]" for c in s.citations) for s in answer.sentences)
        )
        lines.append("")
        for c in answer.citations:
            where = f"p. {c.page}, " if c.page else ""
            quote = " ".join(c.quote.split())
            lines.append(f'[{c.id}] {c.source} ({where}chars {c.start}-{c.end}): "{quote}"')
    if answer.dropped:
        for d in answer.dropped:
            lines.append(f"(dropped unsupported sentence: {d.text!r}: {d.reason})")
    if verbose:
        lines.append("")
        lines.append("Evidence considered:")
        for e in answer.evidence:
            lines.append(f"  {e['score']:.4f}  {e['source']}: {' '.join(str(e['quote']).split())}")
        t = answer.timings_ms
        lines.append(
            f"Timings: retrieve {t['retrieve']:.1f} ms, answer {t['answer']:.1f} ms, "
            f"total {t['total']:.1f} ms"
        )
    return "\n".join(lines)


def _question_text(parts: tuple[str, ...]) -> str:
    from rag.pipeline import QuestionError

    question = " ".join(parts)
    if not question.strip():
        raise click.UsageError('The question is empty. Usage: rag ask "What is Trainium?"')
    del QuestionError  # validated again (length) by the pipeline
    return question


class GeneratorChoice(click.Choice[str]):
    """The registered generators (``rag.generators``), read when the flag is parsed, so a
    generator registered after this module was imported is a valid choice too."""

    def __init__(self) -> None:
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        return generators.names()

    @choices.setter
    def choices(self, _value: tuple[str, ...]) -> None:
        pass  # click.Choice.__init__ assigns; the registry is the only source


def generator_option(func: F) -> F:
    """The same ``--generator`` flag on every command that answers (ask, chat, eval)."""
    return click.option(
        "--generator",
        type=GeneratorChoice(),
        default=None,
        help="Answer generator (default: settings, extractive). LLM generators need the "
        "[llm] extra; every sentence they write is verified against the sources.",
    )(func)


def doc_option(func: F) -> F:
    """The same ``--doc`` flag on every command that answers (ask, chat)."""
    return click.option(
        "--doc",
        "documents",
        multiple=True,
        metavar="PATTERN",
        help="Search only the documents whose source matches PATTERN (a source as listed "
        "by `rag docs`, or a glob such as 'reports/*.pdf'); repeatable. A pattern that "
        "matches nothing is refused, never widened.",
    )(func)


@cli.command()
@click.argument("question", nargs=-1)
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Evidence sentences kept.")
@click.option("-v", "--verbose", is_flag=True, help="Also show the evidence and timings.")
@generator_option
@doc_option
@json_option
@click.pass_context
def ask(
    ctx: click.Context,
    question: tuple[str, ...],
    top_k: int | None,
    verbose: bool,
    generator: str | None,
    documents: tuple[str, ...],
    as_json: bool,
) -> None:
    """Answer QUESTION from the indexed documents, citing exact quotes.

    Builds the index from the bundled corpus first if there is none.
    """
    from rag.pipeline import QuestionError

    text = _question_text(question)
    settings = settings_from(ctx, top_k=top_k, generator=generator)
    pipeline = _open_pipeline(settings)
    scope = list(documents) or None
    try:
        if as_json:
            echo_json(pipeline.ask(text, documents=scope).to_json())
        else:
            _print_stream(pipeline.stream(text, documents=scope), verbose)
    except QuestionError as exc:
        raise click.UsageError(str(exc)) from None
    finally:
        pipeline.close()


def _print_stream(snapshots: Any, verbose: bool) -> Any:
    """Print sentences as the verifier releases them, then the citations; returns the answer."""
    shown = 0
    answer = None
    for answer in snapshots:
        if answer.refused or len(answer.sentences) <= shown:
            continue
        if len(answer.sentences) > 1 and shown == 0 and answer.generator == generators.EXTRACTIVE:
            break  # complete at once: render it whole below
        for sentence in answer.sentences[shown:]:
            markers = "".join(f" [{c}]" for c in sentence.citations)
            click.echo(("" if shown == 0 else " ") + sentence.text + markers, nl=False)
            shown += 1
    if answer is None:
        return None
    full = _render_answer(answer, verbose)
    if shown and answer.sentences and shown <= len(answer.sentences):
        # The sentences are on screen; print what follows them (citations, details).
        click.echo()
        click.echo(full.split("\n", 1)[1] if "\n" in full else "")
    else:
        click.echo(full)
    return answer


CHAT_HELP = """Commands: /reset (forget the conversation), /help, /quit.
Ask follow-ups naturally: "Where is it based?" refers to the earlier question."""


@cli.command()
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Evidence sentences kept.")
@click.option("-v", "--verbose", is_flag=True, help="Also show the evidence and timings.")
@generator_option
@doc_option
@json_option
@click.pass_context
def chat(
    ctx: click.Context,
    top_k: int | None,
    verbose: bool,
    generator: str | None,
    documents: tuple[str, ...],
    as_json: bool,
) -> None:
    """Multi-turn chat in the terminal; follow-ups use the conversation so far.

    With --json, reads questions from stdin line by line and prints exactly one JSON
    object per non-empty line: an answer, {"command": NAME}, or {"error": MESSAGE}.
    """
    from rag.pipeline import Conversation

    settings = settings_from(ctx, top_k=top_k, generator=generator)
    pipeline = _open_pipeline(settings)
    conversation = Conversation()
    interactive = sys.stdin.isatty() and not as_json
    if interactive:
        click.echo(f"Ask about your documents. {CHAT_HELP}")
    try:
        while True:
            if interactive:
                try:
                    line = input("you> ")
                except EOFError:
                    click.echo()
                    break
            else:
                raw = _read_line()
                if raw is None:
                    break
                line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            scope = list(documents) or None
            if not _chat_turn(pipeline, conversation, line.strip(), as_json, verbose, scope):
                break
    finally:
        pipeline.close()


def _read_line() -> str | None:
    """One line of stdin, None at its end. Read as bytes and decoded with replacement,
    so a line that is not UTF-8 is answered (cleaned) instead of ending the chat."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:  # a text-only stdin (tests' StringIO)
        text = sys.stdin.readline()
        return text or None
    raw = buffer.readline()
    return raw.decode("utf-8", errors="replace") if raw else None


def _chat_turn(
    pipeline: Any,
    conversation: Any,
    line: str,
    as_json: bool,
    verbose: bool,
    documents: list[str] | None = None,
) -> bool:
    """Handle one chat line; False means quit."""
    if line.startswith("/"):
        name = line[1:].split()[0].lower() if len(line) > 1 else ""
        known = {"reset", "help", "quit", "exit"}
        if name not in known:
            message = f"Unknown command /{name}. {CHAT_HELP}"
            echo_json({"error": message}) if as_json else click.echo(message)
            return True
        if name == "reset":
            conversation.reset()
        if as_json:
            echo_json({"command": "quit" if name == "exit" else name})
        elif name == "help":
            click.echo(CHAT_HELP)
        elif name == "reset":
            click.echo("(conversation reset)")
        return name not in ("quit", "exit")
    try:
        if as_json:
            echo_json(pipeline.chat(line, conversation, documents=documents).to_json())
        else:
            _print_stream(pipeline.stream_chat(line, conversation, documents=documents), verbose)
            click.echo()
    except RagError as exc:
        echo_json({"error": str(exc)}) if as_json else click.echo(f"Error: {exc}")
        return True
    sys.stdout.flush()
    return True


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
