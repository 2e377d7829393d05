"""Splitting real documents: hard-wrapped text, PDF layout text, tables, code.

Fast tests on the benchmark's own documents (real files downloaded from Debian, PyPI
and npm; see evals/benchmark/sources.yaml) plus small PDFs made here. No model.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rag.documents.chunking import sentence_windows, split_sentences
from rag.documents.loading import load_file
from rag.types import Document
from tests.helpers import REPO, make_pdf

DOCS = REPO / "evals" / "benchmark" / "docs"
HARD_WRAPPED = [
    "test/httplib2-libhttplib2.txt",
    "dev/cron-README.txt",
    "dev/cron-FEATURES.txt",
    "dev/simplejson-CHANGES.txt",
]
EVERY_KIND = [
    *HARD_WRAPPED,
    "test/time-manual.pdf",
    "dev/sqlite-datatype3.pdf",
    "dev/bc-manual.html",
    "dev/http-server-README.md",
    "test/dotenv-README.md",
]


def _load(name: str) -> Document:
    path = DOCS / name
    return load_file(path, path.name)


@pytest.mark.parametrize("name", EVERY_KIND)
def test_quotes_are_exact_and_units_never_overlap(name: str) -> None:
    doc = _load(name)
    chunks = sentence_windows(doc)
    assert len(chunks) > 20
    end = 0
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert chunk.start >= end, "units overlap"
        end = chunk.end
        assert chunk.search_text and "\n" not in chunk.search_text


@pytest.mark.parametrize("name", HARD_WRAPPED)
def test_no_sentence_of_a_hard_wrapped_text_stops_at_a_line_end(name: str) -> None:
    """A sentence cut at a wrap ends without punctuation and the next line goes on in
    lower case; none may, and no heading may end in a word that never ends one."""
    doc = _load(name)
    cut = []
    for span in split_sentences(doc):
        after = doc.text[span.end : span.end + 40]
        if re.match(r"[ \t]*\r?\n[ \t]*[a-z]", after) and span.text[-1].isalpha():
            cut.append(span.text)
        if span.is_heading:
            assert span.text.split()[-1].lower() not in {"the", "a", "of", "to", "and", "with"}
    assert cut == []


def test_hard_wrapped_sentences_are_whole() -> None:
    texts = [" ".join(s.text.split()) for s in split_sentences(_load(HARD_WRAPPED[0]))]
    # A line that looked like a heading (short, capitalised, after a full stop) when
    # only its neighbours were considered; it is one wrapped line of a sentence.
    assert any(
        t.startswith("The module can optionally operate with a private cache that understands")
        and t.endswith("uses both the ETag and Last-Modified cache validators.")
        for t in texts
    ), texts[:40]
    headings = [s.text for s in split_sentences(_load(HARD_WRAPPED[0])) if s.is_heading]
    assert {"Http Objects", "Cache Objects", "Response Objects", "Examples"} <= set(headings)


def test_a_markdown_table_row_is_one_unit_with_its_headers_as_context() -> None:
    doc = _load("dev/http-server-README.md")
    rows = [c for c in sentence_windows(doc) if c.text.startswith("|`-a`")]
    assert len(rows) == 1
    row = rows[0]
    assert row.text == "|`-a`   |Address to use |0.0.0.0|"  # the quote: the row, no header
    assert row.context == "Command | Description | Defaults"
    assert row.search_text == "Command: -a; Description: Address to use; Defaults: 0.0.0.0"
    # A full stop inside a cell does not split the row.
    port = next(c for c in sentence_windows(doc) if c.text.startswith("|`-p` or `--port`"))
    assert port.text.endswith("|8080 |") and "Defaults: 8080" in port.search_text


def test_a_pdf_table_row_keeps_its_wrapped_cells_and_gets_the_headers() -> None:
    doc = _load("dev/sqlite-datatype3.pdf")
    rows = [c for c in sentence_windows(doc) if "TINYINT" in c.text]
    assert len(rows) == 1
    row = rows[0]
    assert (
        row.text.startswith("INT") and "BIGINT" in row.text and row.text.rstrip().endswith("INT8")
    )
    assert "INTEGER" in row.text and re.search(r"\s1\s", row.text)
    assert "Resulting" in row.context and "Rule Used To Determine" in row.context
    assert "Resulting" not in row.text


def test_a_pdf_sentence_runs_over_a_page_break() -> None:
    texts = [" ".join(s.text.split()) for s in split_sentences(_load("dev/sqlite-datatype3.pdf"))]
    assert any(
        t.startswith("When the SELECT statement that implements a VIEW")
        and t.endswith("that make up the compound.")
        for t in texts
    )


def test_a_word_hyphenated_at_a_pdf_line_end_is_joined_for_matching(tmp_path: Path) -> None:
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(
        make_pdf(
            [
                [
                    "The measurement of the experi-",
                    "ment is repeatable on every run.",
                    "Write to bug-time at the project, or to the bug-",
                    "time list.",
                ]
            ]
        )
    )
    doc = load_file(pdf, "manual.pdf")
    chunks = sentence_windows(doc)
    first = next(c for c in chunks if "experi" in c.text)
    assert first.text == doc.text[first.start : first.end] and "experi-\n" in first.text
    assert "experiment is repeatable" in first.search_text
    # A compound the document also writes whole keeps its hyphen.
    second = next(c for c in chunks if "time list" in c.text)
    assert "bug-time list" in second.search_text


def test_code_lines_and_indented_blocks_end_a_paragraph() -> None:
    doc = _load("dev/cron-README.txt")
    texts = [" ".join(s.text.split()) for s in split_sentences(doc)]
    # A note indented under a checklist line is its own unit...
    assert any(t.startswith("(both of these files have instructions inside") for t in texts)
    assert not any(t.startswith("Edit config.h") and "instructions" in t for t in texts)
    # ...but a hanging indent that goes on in lower case is the same sentence.
    assert "watch it." in texts or any(
        t.endswith("watch the daemon track your changes.") for t in texts
    )
    # A fenced code block: every line is its own unit, never joined to prose.
    md = _load("test/dotenv-README.md")
    fenced = [s for s in split_sentences(md) if s.text.startswith("require('dotenv').config()")]
    assert fenced and all("\n" not in s.text for s in fenced)


def _doc(text: str, kind: str) -> Document:
    return Document(source=f"x.{kind}", path="", title="x", text=text, content_hash="", kind=kind)


MARKDOWN_WITH_MARKUP = """# widget

[![npm](https://img.shields.io/npm/v/widget.svg)](https://npmjs.org/package/widget)
[![build][ci-image]][ci-url]

<p align="center">
  <img src="logo.svg" width="120">
</p>
<h3 align="center">Sponsors</h3>
<a
  href="https://example.com/sponsor"
  ><b>example.com</b></a
>

- [Install](#install)
- [Usage](#usage)

> [!NOTE]
> Widgets are cached for ten minutes.

All documentation is on the [widget website](https://widget.dev), with examples.
To report a bug, open an issue on the
[tracker](https://github.com/widget/widget/issues).

## License

[MIT](LICENSE)

[ci-image]: https://ci.example/badge.svg
[ci-url]: https://ci.example/widget
"""


def test_markdown_markup_that_states_nothing_is_never_a_unit() -> None:
    doc = _doc(MARKDOWN_WITH_MARKUP, "md")
    chunks = sentence_windows(doc)
    texts = [c.text for c in chunks]
    for chunk in chunks:
        assert chunk.text == doc.text[chunk.start : chunk.end]
        assert "shields.io" not in chunk.text and "ci.example" not in chunk.text
        assert not chunk.text.lstrip().startswith(("<", "[!", "[Install", "[Usage", ">\n"))
    # An HTML line that wraps text keeps only the text; a tag over several lines too.
    assert "Sponsors" in texts and "example.com" in texts
    # A link inside a sentence stays in the quote (quotes are exact) but is matched
    # by its text; a link that goes on a sentence on the next line stays with it.
    docs_line = next(c for c in chunks if c.text.startswith("All documentation"))
    assert "](https://widget.dev)" in docs_line.text
    assert docs_line.search_text == "All documentation is on the widget website, with examples."
    bug = next(c for c in chunks if c.text.startswith("To report a bug"))
    assert bug.text.endswith("issues).") and "tracker" in bug.search_text
    # A line that is one link still says something by its text: the licence.
    licence = next(c for c in chunks if c.heading == "License" and not c.is_heading)
    assert licence.text == "[MIT](LICENSE)" and licence.search_text == "MIT"


def test_restructuredtext_markup_and_manual_navigation_are_left_out() -> None:
    rst = _doc(
        "Usage\n=====\n\n.. |badge| image:: https://img.example/b.svg\n   :target: https://x\n\n"
        ".. code:: python\n\n    import widget\n\n.. note::\n\n   Widgets are cached.\n\n"
        "Call widget.run() to start.\n",
        "txt",
    )
    texts = [c.text for c in sentence_windows(rst)]
    assert not any(t.startswith((".. ", ":target:")) for t in texts), texts
    assert {"import widget", "Widgets are cached.", "Call widget.run() to start."} <= set(texts)
    manual = _load("dev/bc-manual.html")
    quotes = [c.text for c in sentence_windows(manual)]
    assert not any(re.match(r"(Next|Previous|Up):", q) for q in quotes)
    assert any(q.startswith("The maximum output base") for q in quotes)


def test_a_list_of_short_lines_is_one_unit_a_line() -> None:
    # Vixie cron's release dates: one date a line, no bullets, in hard-wrapped text.
    texts = [" ".join(s.text.split()) for s in split_sentences(_load("dev/cron-README.txt"))]
    assert "December 27, 1993" in texts and "[V2.1 was May 29, 1991]" in texts
    # Short lines that merely break a sentence early (one clause a line) stay joined.
    clause_lines = _doc(
        "x " * 60 + "\n\n``widget`` works on any platform\n(Linux, Windows, Mac, FreeBSD, "
        "NetBSD, Solaris/SunOS),\nin any console or in a GUI, and is also friendly with "
        "IPython/Jupyter notebooks.\n"
        + ("A long line of prose that fills the width. " * 2 + "\n")
        * 12,
        "txt",
    )
    joined = [" ".join(s.text.split()) for s in split_sentences(clause_lines)]
    assert any(t.startswith("``widget`` works on any platform (Linux") for t in joined), joined


def test_a_tilde_underline_in_plain_text_is_not_a_code_fence() -> None:
    # reStructuredText underlines section titles with "~~~~"; read as a Markdown fence,
    # every following line became a code unit and sentences broke at each line end.
    doc = _doc(
        "lftp\n~~~~\n\nlftp is a file transfer program. BitTorrent protocol is supported "
        "as built-in\n`torrent' command. If you exit lftp when some jobs are not finished\n"
        "yet, lftp will move itself to nohup mode in background.\n",
        "txt",
    )
    texts = [" ".join(s.text.split()) for s in split_sentences(doc)]
    assert "BitTorrent protocol is supported as built-in `torrent' command." in texts
    assert any(t.endswith("lftp will move itself to nohup mode in background.") for t in texts)
