"""Chunking: split a document into sentences and pack them into chunks, with offsets.

Every ``Span`` and ``Chunk`` satisfies ``text == document.text[start:end]``. The
splitter is rule-based (no model, no download): blocks come from lines (Markdown
headings, list items, blank-line paragraphs, hard-wrapped lines joined back),
sentences from end punctuation followed by a capital, minus common abbreviations.
It does not understand tables or code blocks; they are treated as paragraphs.

``SentenceSplitter`` exposes the same packing as a LangChain ``TextSplitter`` so the
chunks can be used with other LangChain tooling.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any

from langchain_text_splitters import TextSplitter

from rag.types import Chunk, Document, Span

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_BULLET = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+")
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "inc", "ltd", "co",
    "corp", "no", "fig", "e.g", "i.e", "approx", "dept", "est", "jan", "feb", "mar", "apr",
    "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k", "p", "pp", "vol",
}  # fmt: skip


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


def _looks_like_heading(line: str, prev: str, next_line: str) -> bool:
    """A plain-text heading: short, unpunctuated, between sentences, before a capital."""
    line = line.strip()
    if not line or len(line) > 80 or _BULLET.match(line):
        return False
    if line[-1] in ".!?,;:…\"'”’)" or not (line[0].isupper() or line[0].isdigit()):
        return False
    prev = prev.strip()
    if prev and prev[-1] not in ".!?:…\"'”’)":
        return False
    next_line = next_line.strip()
    return not next_line or next_line[0].isupper() or bool(_BULLET.match(next_line))


def _blocks(doc: Document) -> Iterator[tuple[int, int, str]]:
    """(start, end, kind) of each block; kind is "heading", "item" or "para"."""
    text = doc.text
    lines = list(_lines(text, doc.body_start, len(text)))
    plain = doc.kind in ("txt", "pdf")
    block_start: int | None = None
    block_end = 0
    block_kind = "para"

    def flush() -> Iterator[tuple[int, int, str]]:
        nonlocal block_start
        if block_start is not None:
            s, e = _strip_span(text, block_start, block_end)
            if s < e:
                yield s, e, block_kind
        block_start = None

    for i, (ls, le) in enumerate(lines):
        line = text[ls:le]
        if not line.strip():
            yield from flush()
            continue
        heading = _HEADING.match(line)
        if heading:
            yield from flush()
            s = ls + heading.start(2)
            yield s, s + len(heading.group(2)), "heading"
            continue
        prev = text[lines[i - 1][0] : lines[i - 1][1]] if i else ""
        nxt = text[lines[i + 1][0] : lines[i + 1][1]] if i + 1 < len(lines) else ""
        in_item = block_start is not None and block_kind == "item"
        if in_item and prev.rstrip().endswith((".", "!", "?", ")")) and line.lstrip()[:1].isupper():
            # A hard-wrapped list item ends where a new capitalised sentence starts.
            yield from flush()
            in_item = False
        if plain and not in_item and _looks_like_heading(line, prev, nxt):
            yield from flush()
            s, e = _strip_span(text, ls, le)
            yield s, e, "heading"
            continue
        bullet = _BULLET.match(line)
        if bullet:
            yield from flush()
            block_start, block_end, block_kind = ls + bullet.end(), le, "item"
            continue
        if block_start is None:
            block_start, block_kind = ls, "para"
        block_end = le
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


def split_sentences(doc: Document) -> list[Span]:
    """Every sentence and heading of the document, in order, with exact offsets."""
    spans: list[Span] = []
    heading = ""
    for start, end, kind in _blocks(doc):
        if kind == "heading":
            heading = " ".join(doc.text[start:end].split())
            spans.append(Span(start, end, doc.text[start:end], heading=heading, is_heading=True))
            continue
        for s, e in _sentences(doc.text, start, end):
            spans.append(Span(s, e, doc.text[s:e], heading=heading))
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
        if context_sentences:
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
            )
        )
        if not span.is_heading:
            previous.append(span)
    return chunks
