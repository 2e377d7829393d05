"""``rag ask`` and ``rag chat``: a question (or a terminal conversation) in, the
verified answer out, streamed as it is checked, or as the JSON contract with
``--json``. Rendering only: answering is ``rag.pipeline``'s.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from rag import generators
from rag.cli_common import (
    CliProgress,
    answer_options,
    echo_err,
    echo_json,
    settings_from,
)
from rag.errors import RagError
from rag.settings import Settings


def _open_pipeline(settings: Settings) -> Any:
    """The query pipeline, building the index from the default corpus on first use."""
    from rag.index.ingest import ensure_index
    from rag.pipeline import build_pipeline

    progress = CliProgress(enabled=sys.stderr.isatty())
    try:
        ensure_index(settings, notify=echo_err, progress=progress)
    finally:
        progress.close()
    return build_pipeline(settings)


def fallback_note(answer: Any) -> str:
    """The line that tells quoted evidence from an LLM's writing ("" when not a fallback)."""
    if not answer.fallback:
        return ""
    return (
        f"(The {answer.generator} answer had no sentence the documents support; "
        "showing the quoted evidence instead.)"
    )


def render_text(answer: Any, verbose: bool = False) -> str:
    lines = []
    if answer.fallback:
        lines.append(fallback_note(answer))
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
        first = f"first sentence {t['first_sentence']:.1f} ms, " if "first_sentence" in t else ""
        lines.append(
            f"Timings: retrieve {t['retrieve']:.1f} ms, answer {t['answer']:.1f} ms, "
            f"{first}total {t['total']:.1f} ms"
        )
    return "\n".join(lines)


def _question_text(parts: tuple[str, ...]) -> str:
    from rag.pipeline import QuestionError

    question = " ".join(parts)
    if not question.strip():
        raise click.UsageError('The question is empty. Usage: rag ask "What is Trainium?"')
    del QuestionError  # validated again (length) by the pipeline
    return question


@click.command()
@click.argument("question", nargs=-1)
@answer_options
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
    full = render_text(answer, verbose)
    if shown and answer.fallback:
        # Sentences already on screen were replaced by the quoted evidence: say so.
        click.echo()
        click.echo(full)
    elif shown and answer.sentences and shown <= len(answer.sentences):
        # The sentences are on screen; print what follows them (citations, details).
        click.echo()
        click.echo(full.split("\n", 1)[1] if "\n" in full else "")
    else:
        click.echo(full)
    return answer


CHAT_HELP = """Commands: /reset (forget the conversation), /help, /quit.
Ask follow-ups naturally: "Where is it based?" refers to the earlier question."""


@click.command()
@answer_options
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
