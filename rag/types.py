"""Typed values that cross pipeline stages.

Offsets are character offsets into ``Document.text``, the exact text the index stores
for that document, so a citation can always be checked with ``text[start:end]``.
Plain data: no behaviour beyond serialising the answer contract (``Answer.to_json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Page:
    """A page's span in the extracted text (1-based ``number``) of a PDF or an image
    file; ``ocr`` when its text was read by OCR (a scanned page) rather than taken
    from the PDF's text layer."""

    number: int
    start: int
    end: int
    ocr: bool = False


@dataclass(frozen=True)
class DocumentRecord:
    """A document as the manifest lists it (``rag docs`` rows)."""

    source: str
    path: str
    title: str
    kind: str
    content_hash: str
    chunks: int
    ingested_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "title": self.title,
            "kind": self.kind,
            "chunks": self.chunks,
            "ingested_at": self.ingested_at,
            "path": self.path,
        }


@dataclass(frozen=True)
class Document:
    """A loaded source file: its extracted text and where it came from."""

    source: str  # path relative to the ingested root, or the upload name
    path: str  # absolute path on disk (empty for in-memory documents)
    title: str
    text: str
    # sha256 of ``text`` (and, for pages read by OCR, of the engine and languages that
    # read them): the unit of change detection
    content_hash: str
    kind: str  # "md", "txt", "html", "pdf", "docx", "image"
    pages: tuple[Page, ...] = ()
    body_start: int = 0  # where indexable text starts (after Markdown front matter)

    def page_at(self, offset: int) -> int | None:
        found = self.page_of(offset)
        return found.number if found else None

    def page_of(self, offset: int) -> Page | None:
        for page in self.pages:
            if page.start <= offset < page.end:
                return page
        return None


@dataclass(frozen=True)
class Span:
    """A sentence or block of a document: ``text == document.text[start:end]``."""

    start: int
    end: int
    text: str
    heading: str = ""  # the nearest heading above it, for context
    is_heading: bool = False
    header: str = ""  # a table row's column headers ("Option | Description | Default")


@dataclass(frozen=True)
class Chunk:
    """A unit stored in the vector index: its text is ``document.text[start:end]``.

    The index stores sentence windows: ``text`` is one sentence (or heading, table
    row, code line) and ``context`` the sentences before it (a table row's context
    is its column headers). The vector is the normalised sum of the sentence's
    embedding and the window's (heading, context, sentence): the sentence alone ranks
    answers best, the window finds "It is twice as powerful" under its subject.
    ``match_text`` is what is embedded and matched: whitespace collapsed, PDF
    line-end hyphens joined, a row's cells paired with their headers. Neither
    context nor match text is ever quoted; quotes are ``text``.
    """

    id: str
    source: str
    ordinal: int
    start: int
    end: int
    text: str
    heading: str = ""
    context: str = ""
    is_heading: bool = False
    match_text: str = ""

    @property
    def search_text(self) -> str:
        """The text to embed and match (``match_text``, or the collapsed sentence)."""
        return self.match_text or " ".join(self.text.split())


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
    ocr_pages: int = 0  # pages OCR read in this run (not counting pages from its cache)


@dataclass(frozen=True)
class Citation:
    """A quote backing an answer sentence: ``quote == document.text[start:end]``.

    ``ocr``: the quote is OCR's reading of a scanned page, so check it against the page."""

    id: int
    source: str
    title: str
    page: int | None
    quote: str
    start: int
    end: int
    ocr: bool = False

    def to_json(self) -> dict[str, object]:
        quoted: dict[str, object] = {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "page": self.page,
            "quote": self.quote,
            "start": self.start,
            "end": self.end,
        }
        # Added with OCR, and only where true: every other citation keeps the shape
        # clients that check exact keys were written against.
        return (quoted | {"ocr": True}) if self.ocr else quoted


@dataclass(frozen=True)
class AnswerSentence:
    text: str
    citations: tuple[int, ...]


@dataclass(frozen=True)
class Dropped:
    """An answer sentence the verifier removed, and why."""

    text: str
    reason: str


@dataclass
class Answer:
    """The answer contract; ``to_json`` is the public JSON shape (see README)."""

    question: str
    answer: str
    refused: bool
    generator: str
    sentences: list[AnswerSentence]
    citations: list[Citation]
    evidence: list[dict[str, object]]
    dropped: list[Dropped] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    resolved_question: str = ""
    # Set when the generator's own answer was replaced: "extractive" means no sentence
    # the LLM wrote was supported (or it declined), so the chosen quotes are shown.
    fallback: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "question": self.question,
            "answer": self.answer,
            "refused": self.refused,
            "generator": self.generator,
            "sentences": [{"text": s.text, "citations": list(s.citations)} for s in self.sentences],
            "citations": [c.to_json() for c in self.citations],
            "evidence": self.evidence,
            "dropped": [{"text": d.text, "reason": d.reason} for d in self.dropped],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "fallback": self.fallback,
        }
