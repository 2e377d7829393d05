"""Chunking: split a document into sentences and pack them into chunks, with offsets.

Every ``Span`` and ``Chunk`` satisfies ``text == document.text[start:end]``. The
splitter is rule-based (no model, no download): ``rag.documents.blocks`` finds the headings,
list items, paragraphs, table rows and code lines; sentences come from end
punctuation followed by a capital, minus common abbreviations (a table row or a code
line is one unit). ``sentence_windows`` makes what the index stores: one chunk per
sentence with its heading and context (a row's context is its column headers) and
the text to embed and match. It does not read files (``rag.documents.loading``) or embed
(``rag.index.ingest``).

``SentenceSplitter`` exposes the same packing as a LangChain ``TextSplitter`` so the
chunks can be used with other LangChain tooling.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from langchain_text_splitters import TextSplitter

from rag.documents.blocks import blocks, pipe_cells
from rag.documents.markup import strip_span, without_markup
from rag.types import Chunk, Document, Span

# Bumped whenever a change to loading or splitting changes the chunks of a document
# that did not change: an index built by another version is re-chunked by the next
# ingest (see rag.index.ingest), and queries refuse it until then (ids would not match).
# 2: hard-wrapped lines joined, table rows with headers, code lines, PDF layout text.
# 3: markup that states nothing dropped (navigation, rST directives, badges, HTML and
#    link-only lines); Markdown links matched by their text.
CHUNKER_VERSION = 3

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co",
    "corp", "no", "fig", "e.g", "i.e", "approx", "dept", "est", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "p", "pp", "vol",
}  # fmt: skip


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
        s, e = strip_span(text, pos, match.end())
        if s < e:
            yield s, e
        pos = match.end()
    s, e = strip_span(text, pos, end)
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
    cells = pipe_cells(row)
    names = header.split(" | ")
    if len(names) != len(cells):
        return " ".join(f"{header} {row}".split())
    return "; ".join(f"{n}: {c}" for n, c in zip(names, cells, strict=True) if c).replace("`", "")


def match_text(doc: Document, span_text: str, header: str = "") -> str:
    """The text used to embed and match a sentence: whitespace collapsed, PDF line-end
    hyphens joined, table rows paired with their headers, Markdown links reduced to
    their text and HTML tags dropped. Never quoted."""
    if header and span_text.lstrip().startswith("|"):
        return _row_match_text(without_markup(span_text), header)
    if doc.kind in ("pdf", "image"):  # OCR text breaks lines as a PDF does
        span_text = _dehyphenate(span_text, doc.text)
    elif doc.kind == "md":
        span_text = without_markup(span_text)
    return " ".join(span_text.split())


def split_sentences(doc: Document) -> list[Span]:
    """Every sentence and heading of the document, in order, with exact offsets.

    A table row and a line of code are one unit each (never split at full stops);
    a row carries its table's column headers.
    """
    spans: list[Span] = []
    heading = ""
    for block in blocks(doc):
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
