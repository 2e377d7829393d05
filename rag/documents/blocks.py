"""Blocks: the structure of a document's lines, before sentences.

``blocks(doc)`` walks the lines once and gives headings (Markdown ``#``, underlined
titles, short plain-text title lines), list items, paragraphs (hard-wrapped lines
joined back; a step in indentation in plain text ends one), table rows (Markdown
pipe tables, and the aligned columns of PDF layout text: one row one block, its
column headers with it) and fenced code lines. Offsets are exact:
``document.text[start:end]``. It does not split sentences or make chunks
(``rag.documents.chunking``).

Markup that states nothing never becomes a block, so it is never matched or quoted:
manual navigation lines ("Next: ..., Previous: ..., Up: ..."), reStructuredText
comments, directives and targets (``.. |badge| image:: ...``), Markdown lines that are
only images, badges, links into the page (a table of contents) or link definitions, and
HTML lines with no text. An HTML line that wraps text keeps only its text
(``<h3 align="center">Sponsors</h3>`` is read as "Sponsors").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from rag.documents.markup import (
    BULLET,
    HTML_START,
    RST_MARKUP,
    RST_OPTION,
    html_text_span,
    is_navigation,
    opens_tag,
    states_something,
    strip_span,
)
from rag.types import Document

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
# A line of one repeated mark: a reStructuredText / setext underline, or a rule.
_UNDERLINE = re.compile(r"^[ \t]*([=\-~^*#+_])\1{2,}[ \t]*$")
# Markdown pipe tables: the row under the header is made of dashes (and colons).
_TABLE_SEPARATOR = re.compile(
    r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(?:\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$"
)
_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)")
# In pypdf's layout text, table cells on one line are separated by runs of spaces;
# prose never has three spaces between words (two may follow a full stop).
_CELL_GAP = re.compile(r" {3,}")
# Words a heading never ends with: a line ending in one was cut by a hard wrap.
_FUNCTION_WORDS = frozenset(
    """
    a an the of to in on at by for with from into onto and or nor but as that which who
    whose whom is are was were be been being its their his her our your my this these those
    than then if when while via per has have had can could will would should may might must
    not no so such also both either each every any some all it they we you he she there
    """.split()
)
# Share of the document's typical line width above which a line is a wrapped line of
# prose, not a heading (hard-wrapped text fills its lines; headings are short).
_WRAPPED_LINE_SHARE = 0.7
# Indentation (in columns) by which a line must move to start a new block: the
# width of an indented code block in Markdown, and of most hanging indents.
_INDENT_STEP = 4


@dataclass(frozen=True)
class Block:
    start: int
    end: int
    kind: str  # "heading", "item", "para", "row" (a table row) or "code" (one line)
    header: str = ""  # a row's column headers


def _lines(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of each line in text[start:end], without the line break."""
    pos = start
    while pos < end:
        nl = text.find("\n", pos, end)
        stop = end if nl == -1 else nl
        line_end = stop - 1 if stop > pos and text[stop - 1] == "\r" else stop
        yield pos, line_end
        pos = stop + 1


def _indent(line: str) -> int:
    expanded = line.expandtabs(8)
    return len(expanded) - len(expanded.lstrip())


def _wrap_width(lines: list[str]) -> int:
    """The width a hard-wrapped text fills its lines to (0 when lines are unwrapped)."""
    widths = sorted(len(line.rstrip()) for line in lines if line.strip())
    if len(widths) < 10:
        return 0
    width = widths[int(len(widths) * 0.9)]
    return width if 40 <= width <= 120 else 0


def _looks_like_heading(line: str, prev: str, next_line: str, wrap: int = 0) -> bool:
    """A plain-text heading: short, unpunctuated, between sentences, before a capital."""
    line = line.strip()
    if not line or len(line) > 80 or BULLET.match(line):
        return False
    if line[-1] in ".!?,;:…\"'”’)" or not (line[0].isupper() or line[0].isdigit()):
        return False
    if line.split()[-1].lower() in _FUNCTION_WORDS:
        return False
    if wrap and next_line.strip() and len(line) >= _WRAPPED_LINE_SHARE * wrap:
        return False
    prev = prev.strip()
    if prev and prev[-1] not in ".!?:…\"'”’)":
        return False
    next_line = next_line.strip()
    return not next_line or next_line[0].isupper() or bool(BULLET.match(next_line))


def _cells(line: str) -> list[str]:
    return [c for c in _CELL_GAP.split(line.strip()) if c]


def pipe_cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [" ".join(c.split()) for c in inner.split("|")]


def _pipe_table(text: str, lines: list[tuple[int, int]], i: int) -> tuple[list[Block], int]:
    """The rows of a Markdown pipe table whose header is line ``i`` (and the index of
    the line after it). The header goes with every row, never into a quote."""
    header = " | ".join(c for c in pipe_cells(text[lines[i][0] : lines[i][1]]) if c)
    blocks: list[Block] = []
    j = i + 2
    while j < len(lines):
        ls, le = lines[j]
        line = text[ls:le]
        if not line.strip() or "|" not in line:
            break
        s, e = strip_span(text, ls, le)
        blocks.append(Block(s, e, "row", header))
        j += 1
    return blocks, j


def _layout_table(text: str, lines: list[tuple[int, int]], i: int) -> tuple[list[Block], int]:
    """Rows of a table in PDF layout text starting at line ``i``: a line with several
    cells starts a row, a line with one cell continues it (a cell wrapped in its
    column); the first row is the header. Empty when the lines do not form a table."""
    j = i
    while j < len(lines) and text[lines[j][0] : lines[j][1]].strip():
        j += 1
    rows: list[tuple[int, int]] = []
    for ls, le in lines[i:j]:
        if len(_cells(text[ls:le])) >= 2 or not rows:
            rows.append((ls, le))
        else:
            rows[-1] = (rows[-1][0], le)
    if len(rows) < 3:  # a header and at least two rows, or it is not a table
        return [], i
    header = " | ".join(" ".join(c.split()) for c in _cells(text[rows[0][0] : rows[0][1]]))
    blocks = [Block(*strip_span(text, s, e), "row", header) for s, e in rows[1:]]
    return blocks, j


# Lines of hard-wrapped text shorter than this share of the wrap width were ended by
# their author, not by the wrapping: date lines, a list without bullets. Two of them in
# a row, the second starting a new statement, are two blocks.
_SHORT_LINE_SHARE = 0.55


def _line_break(prev: str, line: str, wrap: int) -> bool:
    """Whether ``line`` starts a new block after ``prev``, a short line of a
    hard-wrapped paragraph (a line its author ended, not the wrapping). Not a line
    indented deeper: that is a term's description (a man page's option), which
    belongs with its term."""
    if _indent(line) > _indent(prev):
        return False
    prev, line = prev.strip(), line.strip()
    # Both lines short: a list of lines (a line that merely breaks a sentence early, as
    # in sources written one clause a line, is followed by a longer one).
    if not wrap or not prev or max(len(prev), len(line)) >= _SHORT_LINE_SHARE * wrap:
        return False
    if prev.endswith((",", "-", "(", "/", "&")) or prev.split()[-1].lower() in _FUNCTION_WORDS:
        return False  # the sentence goes on
    # The next word would have fitted on the short line: the author broke it there.
    if len(prev) + 1 + len(line.split()[0]) > wrap:
        return False
    return line[:1].isupper() or line[:1].isdigit() or line[:1] in "[\"'*"


def blocks(doc: Document) -> Iterator[Block]:
    """The document's blocks, in order: headings, list items, paragraphs (hard-wrapped
    lines joined), table rows and code lines; markup that states nothing left out."""
    for block in _blocks(doc):
        if block.kind in ("para", "heading") and is_navigation(doc.text[block.start : block.end]):
            continue
        yield block


def _blocks(doc: Document) -> Iterator[Block]:
    text = doc.text
    lines = list(_lines(text, doc.body_start, len(text)))
    plain = doc.kind in ("txt", "pdf")
    wrap = _wrap_width([text[s:e] for s, e in lines]) if plain else 0
    block_start: int | None = None
    block_end = 0
    block_kind = "para"
    block_lines = 0
    fenced = False
    in_tag = False  # inside an HTML tag that spans lines (Markdown)
    rst_markup: int | None = None  # the indentation of the rST markup line just dropped

    def flush() -> Iterator[Block]:
        nonlocal block_start
        if block_start is not None:
            s, e = strip_span(text, block_start, block_end)
            if s < e:
                yield Block(s, e, block_kind)
        block_start = None

    i = 0
    while i < len(lines):
        ls, le = lines[i]
        line = text[ls:le]
        prev = text[lines[i - 1][0] : lines[i - 1][1]] if i else ""
        nxt = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""
        i += 1
        # "~~~" under a title is its underline (reStructuredText, setext), not a fence.
        underline = not fenced and prev.strip() and _UNDERLINE.match(line)
        if _FENCE.match(line) and not underline:
            yield from flush()
            fenced = not fenced
            continue
        if fenced:  # code: one line, one unit, never joined with its neighbours
            s, e = strip_span(text, ls, le)
            if s < e:
                yield Block(s, e, "code")
            continue
        if not line.strip() or _UNDERLINE.match(line):
            yield from flush()
            continue
        if doc.kind == "md" and (in_tag or opens_tag(line) or HTML_START.match(line)):
            # HTML in Markdown, a tag possibly written over several lines: only the
            # text between tags is read.
            yield from flush()
            html_text, in_tag = html_text_span(text, ls, le, in_tag)
            if html_text is not None:
                yield Block(*html_text, "para")
            continue
        if rst_markup is not None and _indent(line) > rst_markup and RST_OPTION.match(line):
            continue  # a directive's options (":target: URL") belong to the directive
        rst_markup = None
        # Markup lines start a block; a link that goes on a sentence stays in it.
        if (block_start is None or BULLET.match(line)) and not states_something(line, doc.kind):
            yield from flush()
            rst_markup = _indent(line) if RST_MARKUP.match(line) else None
            continue
        if "|" in line and _TABLE_SEPARATOR.match(nxt) and "|" in nxt:
            yield from flush()
            rows, i = _pipe_table(text, lines, i - 1)
            yield from rows
            continue
        if doc.kind == "pdf" and len(_cells(line)) >= 2:
            rows, after = _layout_table(text, lines, i - 1)
            if rows:
                yield from flush()
                yield from rows
                i = after
                continue
        heading = _HEADING.match(line)
        if heading and heading.group(2)[:1] not in ("", "*", "/", "#", "!", "-", "="):
            yield from flush()
            s = ls + heading.start(2)
            yield Block(s, s + len(heading.group(2)), "heading")
            continue
        underlined = _UNDERLINE.match(nxt) and len(nxt.strip()) >= len(line.strip()) // 2
        if underlined and not prev.strip() and len(line.strip()) <= 100:
            yield from flush()
            yield Block(*strip_span(text, ls, le), "heading")
            continue
        in_item = block_start is not None and block_kind == "item"
        if in_item and prev.rstrip().endswith((".", "!", "?", ")")) and line.lstrip()[:1].isupper():
            # A hard-wrapped list item ends where a new capitalised sentence starts.
            yield from flush()
            in_item = False
        if plain and not in_item and _looks_like_heading(line, prev, nxt, wrap):
            yield from flush()
            s, e = strip_span(text, ls, le)
            yield Block(s, e, "heading")
            continue
        bullet = BULLET.match(line)
        if bullet:
            yield from flush()
            block_start, block_end, block_kind, block_lines = ls + bullet.end(), le, "item", 1
            continue
        if plain and block_start is not None and block_kind == "para":
            # In plain text an indented block (code, a note, a definition) starts where
            # the indentation steps in and ends where it steps back out. Not when the
            # line above is unfinished (no closing punctuation) and either this line
            # goes on in lower case or the line above was filled to the wrap width: a
            # hanging indent. The first line of a paragraph may be indented on its own.
            # (Markdown needs a blank line before an indented code block, so there a
            # change of indentation alone never ends a paragraph.)
            step = _indent(line) - _indent(prev)
            unfinished = not prev.rstrip().endswith((".", "!", "?", ":", ";", ")"))
            filled = bool(wrap) and len(prev.strip()) >= _WRAPPED_LINE_SHARE * wrap
            continues = unfinished and (line.lstrip()[:1].islower() or filled)
            if (
                not continues
                and (step >= _INDENT_STEP or (step <= -_INDENT_STEP and block_lines > 1))
            ) or _line_break(prev, line, wrap):
                yield from flush()
        if block_start is None:
            block_start, block_kind, block_lines = ls, "para", 0
        block_end = le
        block_lines += 1
    yield from flush()
