"""What every ``rag`` command shares: settings from the command line, ``--json``,
``--generator`` and ``--doc``, progress bars, and how output is written. No commands
here (``rag.cli``, ``rag.cli_answer``).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from rag import generators
from rag.settings import DeprecatedSettingWarning, Settings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """The same ``--json`` flag on every printing command."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=None))


def echo_err(message: str) -> None:
    click.echo(message, err=True)


@contextmanager
def counted_progress(label: str, length: int) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, shown at once, fed by ``step(done, total)`` callbacks
    (``done`` counts up to ``length``)."""
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        shown = 0

        def step(done: int, total: int) -> None:
            nonlocal shown
            bar.update(done - shown)
            shown = done

        yield step


class CliProgress:
    """Renders ``progress(stage, done, total)`` callbacks as click progress bars on stderr."""

    LABELS: ClassVar[dict[str, str]] = {
        "ocr": "OCR: scanned pages",
        "load": "Reading files",
        "embed": "Embedding chunks",
    }

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


def answer_options(func: F) -> F:
    """The options of the commands that answer in the terminal (ask, chat), in this
    order: --top-k, -v/--verbose, --generator, --doc, --json."""
    top_k = click.option(
        "--top-k", type=click.IntRange(1, 50), default=None, help="Evidence sentences kept."
    )
    verbose = click.option(
        "-v", "--verbose", is_flag=True, help="Also show the evidence and timings."
    )
    # Applied innermost first: click lists options in decorator order, top to bottom.
    for option in (json_option, doc_option, generator_option, verbose, top_k):
        func = option(func)
    return func


def watch_option(func: F) -> F:
    """The same ``--watch FOLDER`` on every command that can follow a folder (ingest,
    serve)."""
    return click.option(
        "--watch",
        "watch_dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Keep the index in step with this folder (added, changed, deleted files) "
        "until stopped.",
    )(func)
