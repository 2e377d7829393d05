"""Chunking: split a document into sentences and pack them into chunks, with offsets.

Every ``Span`` and ``Chunk`` satisfies ``text == document.text[start:end]``. The
splitter is rule-based (no model, no download): blocks come from lines (Markdown
and underlined headings, plain-text title lines, list items, blank-line paragraphs,
hard-wrapped lines joined back, steps in indentation), table rows (Markdown pipe
tables, aligned columns in PDF layout text; each row one unit, its column headers
its context) and fenced code lines (one unit each); sentences come from end
punctuation followed by a capital, minus common abbreviations. It does not parse
nested lists, HTML left in Markdown, or tables without a header row; it does not
read files (``rag.loading``) or embed (``rag.ingest``).

``SentenceSplitter`` exposes the same packing as a LangChain ``TextSplitter`` so the
chunks can be used with other LangChain tooling.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from langchain_text_splitters import TextSplitter

from rag.types import Chunk, Document, Span

# Bumped whenever a change to loading or splitting changes the chunks of a document
# that did not change: an index built by another version is re-chunked by the next
# ingest (see rag.ingest), and queries refuse it until then (ids would not match).
# 2: hard-wrapped lines joined, table rows with headers, code lines, PDF layout text.
CHUNKER_VERSION = 2

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_BULLET = re.compile(r"^[ \t]*(?:--|[-*+•]|\d{1,3}[.)])[ \t]+")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co",
    "corp", "no", "fig", "e.g", "i.e", "approx", "dept", "est", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "p", "pp", "vol",
}  # fmt: skip
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
class _Block:
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


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


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
    if not line or len(line) > 80 or _BULLET.match(line):
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
    return not next_line or next_line[0].isupper() or bool(_BULLET.match(next_line))


def _cells(line: str) -> list[str]:
    return [c for c in _CELL_GAP.split(line.strip()) if c]


def _pipe_cells(line: str) -> list[str]:
    inner = line.strip().removeprefix("|").removesuffix("|")
    return [" ".join(c.split()) for c in inner.split("|")]


def _pipe_table(text: str, lines: list[tuple[int, int]], i: int) -> tuple[list[_Block], int]:
    """The rows of a Markdown pipe table whose header is line ``i`` (and the index of
    the line after it). The header goes with every row, never into a quote."""
    header = " | ".join(c for c in _pipe_cells(text[lines[i][0] : lines[i][1]]) if c)
    blocks: list[_Block] = []
    j = i + 2
    while j < len(lines):
        ls, le = lines[j]
        line = text[ls:le]
        if not line.strip() or "|" not in line:
            break
        s, e = _strip_span(text, ls, le)
        blocks.append(_Block(s, e, "row", header))
        j += 1
    return blocks, j


def _layout_table(text: str, lines: list[tuple[int, int]], i: int) -> tuple[list[_Block], int]:
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
    blocks = [_Block(*_strip_span(text, s, e), "row", header) for s, e in rows[1:]]
    return blocks, j


def _blocks(doc: Document) -> Iterator[_Block]:
    """The document's blocks, in order: headings, list items, paragraphs (hard-wrapped
    lines joined), table rows and code lines."""
    text = doc.text
    lines = list(_lines(text, doc.body_start, len(text)))
    plain = doc.kind in ("txt", "pdf")
    wrap = _wrap_width([text[s:e] for s, e in lines]) if plain else 0
    block_start: int | None = None
    block_end = 0
    block_kind = "para"
    block_lines = 0
    fenced = False

    def flush() -> Iterator[_Block]:
        nonlocal block_start
        if block_start is not None:
            s, e = _strip_span(text, block_start, block_end)
            if s < e:
                yield _Block(s, e, block_kind)
        block_start = None

    i = 0
    while i < len(lines):
        ls, le = lines[i]
        line = text[ls:le]
        prev = text[lines[i - 1][0] : lines[i - 1][1]] if i else ""
        nxt = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""
        i += 1
        if _FENCE.match(line):
            yield from flush()
            fenced = not fenced
            continue
        if fenced:  # code: one line, one unit, never joined with its neighbours
            s, e = _strip_span(text, ls, le)
            if s < e:
                yield _Block(s, e, "code")
            continue
        if not line.strip() or _UNDERLINE.match(line):
            yield from flush()
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
            yield _Block(s, s + len(heading.group(2)), "heading")
            continue
        underlined = _UNDERLINE.match(nxt) and len(nxt.strip()) >= len(line.strip()) // 2
        if underlined and not prev.strip() and len(line.strip()) <= 100:
            yield from flush()
            yield _Block(*_strip_span(text, ls, le), "heading")
            continue
        in_item = block_start is not None and block_kind == "item"
        if in_item and prev.rstrip().endswith((".", "!", "?", ")")) and line.lstrip()[:1].isupper():
            # A hard-wrapped list item ends where a new capitalised sentence starts.
            yield from flush()
            in_item = False
        if plain and not in_item and _looks_like_heading(line, prev, nxt, wrap):
            yield from flush()
            s, e = _strip_span(text, ls, le)
            yield _Block(s, e, "heading")
            continue
        bullet = _BULLET.match(line)
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
            if not continues and (
                step >= _INDENT_STEP or (step <= -_INDENT_STEP and block_lines > 1)
            ):
                yield from flush()
        if block_start is None:
            block_start, block_kind, block_lines = ls, "para", 0
        block_end = le
        block_lines += 1
    yield from flush()


def _is_abbreviation(text: str, start: int, dot: int) -> bool:
    word_start = dot
    while word_start > start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lower().lstrip("(\"'“‘[")
    if word in _ABBREVIATIONS:
        return True
    # Single initials ("J. Smith") and dotted acronyms ("U.S.") do not end sentences.
    return (len(word) == 1 and word.isalpha()) or bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]", word))


def _sentences(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    pos = start
    for match in _SENTENCE_END.finditer(text, start, end):
        if text[match.start()] == "." and _is_abbreviation(text, pos, match.start()):
            continue
        s, e = _strip_span(text, pos, match.end())
        if s < e:
            yield s, e
        pos = match.end()
    s, e = _strip_span(text, pos, end)
    if s < e:
        yield s, e


_LINE_END_HYPHEN = re.compile(r"([A-Za-z]*[a-z])-[ \t]*\r?\n[ \t]*([a-z]+)")


def _dehyphenate(text: str, document: str) -> str:
    """Join words a PDF hyphenated at a line end ("experi-\nment"), but keep the
    hyphen of a compound the document also writes whole ("bug-time")."""

    def join(match: re.Match[str]) -> str:
        first, second = match.group(1), match.group(2)
        if f"{first}-{second}" in document:
            return f"{first}-{second}"
        return first + second

    return _LINE_END_HYPHEN.sub(join, text)


def _row_match_text(row: str, header: str) -> str:
    """A pipe-table row as "column: cell" pairs, so that the column names sit next to
    their values for retrieval and matching (the quote stays the row itself)."""
    cells = _pipe_cells(row)
    names = header.split(" | ")
    if len(names) != len(cells):
        return " ".join(f"{header} {row}".split())
    return "; ".join(f"{n}: {c}" for n, c in zip(names, cells, strict=True) if c).replace("`", "")


def match_text(doc: Document, span_text: str, header: str = "") -> str:
    """The text used to embed and match a sentence: whitespace collapsed, PDF line-end
    hyphens joined, table rows paired with their headers. Never quoted."""
    if header and span_text.lstrip().startswith("|"):
        return _row_match_text(span_text, header)
    if doc.kind == "pdf":
        span_text = _dehyphenate(span_text, doc.text)
    return " ".join(span_text.split())


def split_sentences(doc: Document) -> list[Span]:
    """Every sentence and heading of the document, in order, with exact offsets.

    A table row and a line of code are one unit each (never split at full stops);
    a row carries its table's column headers.
    """
    spans: list[Span] = []
    heading = ""
    for block in _blocks(doc):
        start, end = block.start, block.end
        if block.kind == "heading":
            heading = " ".join(doc.text[start:end].split())
            spans.append(Span(start, end, doc.text[start:end], heading=heading, is_heading=True))
            continue
        if block.kind in ("row", "code"):
            pieces: Iterator[tuple[int, int]] = iter([(start, end)])
        else:
            pieces = _sentences(doc.text, start, end)
        for s, e in pieces:
            spans.append(Span(s, e, doc.text[s:e], heading=heading, header=block.header))
    return spans


def chunk_id(source: str, start: int, end: int, text: str) -> str:
    """Content-derived id: the same text at the same place always gets the same id."""
    digest = hashlib.sha256(f"{source}\x1f{start}\x1f{end}\x1f{text}".encode()).hexdigest()
    return digest[:32]


def pack_spans(spans: list[Span], chunk_size: int, overlap: int) -> list[list[Span]]:
    """Group consecutive spans into chunks of about ``chunk_size`` characters.

    A heading always opens a new chunk so that a chunk never straddles two sections;
    ``overlap`` sentences are repeated at the start of the next chunk in a section.
    """
    groups: list[list[Span]] = []
    current: list[Span] = []
    for span in spans:
        length = span.end - current[0].start if current else 0
        if current and (span.is_heading or length > chunk_size):
            groups.append(current)
            carry = [] if span.is_heading or overlap == 0 else current[-overlap:]
            # Never carry a heading alone, or a carry that would fill the chunk by itself.
            carry = [s for s in carry if not s.is_heading]
            if carry and span.end - carry[0].start > chunk_size:
                carry = []
            current = list(carry)
        current.append(span)
    if current:
        groups.append(current)
    return groups


def chunk_document(doc: Document, chunk_size: int = 600, overlap: int = 1) -> list[Chunk]:
    """The document's chunks, in order, each with offsets and a content-derived id."""
    chunks = []
    for ordinal, group in enumerate(pack_spans(split_sentences(doc), chunk_size, overlap)):
        start, end = group[0].start, group[-1].end
        text = doc.text[start:end]
        chunks.append(
            Chunk(
                id=chunk_id(doc.source, start, end, text),
                source=doc.source,
                ordinal=ordinal,
                start=start,
                end=end,
                text=text,
                heading=group[0].heading,
            )
        )
    return chunks


class SentenceSplitter(TextSplitter):
    """LangChain ``TextSplitter`` over the same offline sentence packing."""

    def __init__(self, chunk_size: int = 600, chunk_overlap: int = 1, **kwargs: Any) -> None:
        # TextSplitter counts overlap in characters; ours counts sentences, so keep ours.
        super().__init__(chunk_size=chunk_size, chunk_overlap=0, **kwargs)
        self._sentence_overlap = chunk_overlap
        self._size = chunk_size

    def split_text(self, text: str) -> list[str]:
        doc = Document(source="", path="", title="", text=text, content_hash="", kind="txt")
        return [c.text for c in chunk_document(doc, self._size, self._sentence_overlap)]


def sentence_windows(doc: Document, context_sentences: int = 1) -> list[Chunk]:
    """One chunk per sentence or heading, carrying its heading and previous sentences.

    This is what the index stores: answers quote single sentences, so retrieval
    scores sentences, but a sentence alone often lacks its subject. Headings are
    units too (a title can state a fact). The id covers heading and context, so
    a changed neighbour changes the id (its vector is reused if its text is not).
    """
    chunks: list[Chunk] = []
    previous: list[Span] = []
    for span in split_sentences(doc):
        if span.is_heading:
            previous = []
        context = ""
        if span.header:
            # A table row's context is its column headers, not the row above it.
            context = span.header
        elif context_sentences:
            context = " ".join(" ".join(s.text.split()) for s in previous[-context_sentences:])
        digest = hashlib.sha256(
            f"{doc.source}\x1f{span.start}\x1f{span.end}\x1f{span.heading}\x1f{context}"
            f"\x1f{span.text}".encode()
        ).hexdigest()[:32]
        chunks.append(
            Chunk(
                id=digest,
                source=doc.source,
                ordinal=len(chunks),
                start=span.start,
                end=span.end,
                text=span.text,
                heading=span.heading,
                context=context,
                is_heading=span.is_heading,
                match_text=match_text(doc, span.text, span.header),
            )
        )
        if not span.is_heading:
            previous.append(span)
    return chunks
