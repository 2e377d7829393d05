"""Typed values that cross pipeline stages.

Offsets are character offsets into ``Document.text``, the exact text the index stores
for that document, so a citation can always be checked with ``text[start:end]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Page:
    """A PDF page's span in the extracted text (1-based ``number``)."""

    number: int
    start: int
    end: int


@dataclass(frozen=True)
class Document:
    """A loaded source file: its extracted text and where it came from."""

    source: str  # path relative to the ingested root, or the upload name
    path: str  # absolute path on disk (empty for in-memory documents)
    title: str
    text: str
    content_hash: str  # sha256 of ``text``: the unit of change detection
    kind: str  # "md", "txt", "html", "pdf", "docx"
    pages: tuple[Page, ...] = ()
    body_start: int = 0  # where indexable text starts (after Markdown front matter)

    def page_at(self, offset: int) -> int | None:
        for page in self.pages:
            if page.start <= offset < page.end:
                return page.number
        return None


@dataclass(frozen=True)
class Span:
    """A sentence or block of a document: ``text == document.text[start:end]``."""

    start: int
    end: int
    text: str
    heading: str = ""  # the nearest heading above it, for context
    is_heading: bool = False


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive sentences, the unit stored in the vector index."""

    id: str
    source: str
    ordinal: int
    start: int
    end: int
    text: str
    heading: str = ""


@dataclass
class IngestReport:
    """What an ingest did; the CLI prints it and ``--json`` serialises it."""

    files: int = 0
    documents_added: int = 0
    documents_updated: int = 0
    documents_unchanged: int = 0
    documents_removed: int = 0
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    chunks_embedded: int = 0
    seconds: float = 0.0
    skipped: list[dict[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    recovered: int = 0  # leftovers of an interrupted ingest cleaned up
