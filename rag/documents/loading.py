"""Loading: turn a file on disk into a ``Document`` (extracted text plus metadata).

Covers .md/.markdown, .txt, .html/.htm, .pdf and .docx, and with OCR on for them
(setting ``ocr`` = all) .png/.jpg/.tiff images. For text formats the document text is
the file's own decoded text, so offsets point into the file as a user sees it. PDF
text is the pages' text joined by blank lines, with each page's span kept; a page
without a text layer is read by OCR (``rag.documents.scans``) and marked so.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path
from typing import Any

from rag.documents.ocr import OcrUnavailable
from rag.documents.scans import (
    IMAGE_SUFFIXES,
    PageOcr,
    ScanError,
    needs_ocr,
    unavailable_message,
    visible_chars,
)
from rag.errors import RagError
from rag.types import Document, Page

SUPPORTED_SUFFIXES = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
}


# How much less plausible (charset_normalizer "chaos") cp1252 may be than the best guess
# and still be preferred for text that is not UTF-8.
_CP1252_TOLERANCE = 0.1


class LoadError(RagError):
    """One file could not be loaded; ingest warns, skips it and carries on."""


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_supported(path: Path, images: bool = False) -> bool:
    """A file ingest reads: a text format, or with ``images`` (OCR of images on) an image."""
    suffix = path.suffix.lower()
    return suffix in SUPPORTED_SUFFIXES or (images and suffix in IMAGE_SUFFIXES)


def decode_text(data: bytes, name: str) -> str:
    """Decode bytes as text: UTF-8 first, then the most likely legacy encoding.

    Raises ``LoadError`` for data that looks binary, so that a renamed image or
    archive is skipped rather than indexed as garbage.
    """
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError(f"{name}: looks like a binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise LoadError(f"{name}: cannot detect the text encoding (is it a binary file?)")
    # On short Western text the detector ranks several Windows code pages about
    # equally and may pick cp1257 ("trčs" for "très"); the most common legacy
    # encoding wins when it is as plausible as the best guess.
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos + _CP1252_TOLERANCE:
            best = match
            break
    text = str(best)
    if _control_ratio(text) > 0.05:
        raise LoadError(f"{name}: looks like a binary file, not text")
    return text


def _control_ratio(text: str) -> float:
    if not text:
        return 0.0
    bad = sum(1 for ch in text if ord(ch) < 32 and ch not in "\n\r\t\f")
    return bad / len(text)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def _load_markdown(text: str, stem: str) -> tuple[str, int]:
    title = ""
    body_start = 0
    match = _FRONT_MATTER.match(text)
    if match:
        body_start = match.end()
        for line in match.group(1).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() == "title" and value.strip():
                title = value.strip().strip("\"'")
    if not title:
        heading = re.search(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", text[body_start:], re.MULTILINE)
        title = heading.group(1).strip() if heading else stem
    return title, body_start


def _load_txt(text: str, stem: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            # A short first line without final punctuation reads as a title.
            if len(line) <= 100 and not line.endswith((".", "!", "?", ":", ";", ",")):
                return line
            break
    return stem


_HTML_BLOCKS = [
    *("p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "td", "th"),
    *("div", "section", "article", "main", "header", "footer", "aside", "dd", "dt"),
    *("figcaption", "caption", "address"),
]


def _load_html(data: bytes, name: str, stem: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(decode_text(data, name), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = ""
    for title_tag in soup.find_all("title"):
        title = title or title_tag.get_text(" ", strip=True)
        title_tag.decompose()
    lines: list[str] = []
    body = soup.body or soup
    for element in body.find_all(_HTML_BLOCKS):
        # Only the block's own text: text inside a nested block is that block's, so a
        # <li> holding a <p> is not emitted twice and a <div>'s loose text is not lost.
        words = " ".join(
            piece.strip()
            for piece in element.strings
            if piece.strip() and piece.find_parent(_HTML_BLOCKS) is element
        )
        if not words:
            continue
        if element.name and element.name[0] == "h" and element.name[1:].isdigit():
            words = "#" * int(element.name[1:]) + " " + words
        elif element.name == "li":
            words = "- " + words
        lines.append(words)
    if not lines:
        lines = [ln.strip() for ln in body.get_text("\n").splitlines() if ln.strip()]
    text = "\n\n".join(re.sub(r"[ \t\r\f\v]+", " ", ln) for ln in lines)
    if not title:
        first_heading = re.search(r"^#{1,6} (.+)$", text, re.MULTILINE)
        title = first_heading.group(1) if first_heading else stem
    return text, title


def _page_text(page: Any) -> str:
    """A page's text with its layout: blank lines between paragraphs, table cells on
    one line separated by runs of spaces (the chunker finds rows by those runs).

    pypdf's plain mode puts every table cell on a line of its own and no blank line
    between paragraphs; layout mode keeps both. Lines are right-stripped and the
    page's common indentation removed; a page layout mode cannot read falls back to
    plain mode.
    """
    try:
        text = page.extract_text(extraction_mode="layout") or ""
    except Exception:  # pypdf's layout mode raises assorted errors on odd fonts
        text = page.extract_text() or ""
    lines = [line.rstrip() for line in text.splitlines()]
    return textwrap.dedent("\n".join(lines)).strip("\n")


def _page_joint(before: str, after: str) -> str:
    """How two pages join: a sentence running over the page break stays one
    paragraph ("\n"); anything else is a paragraph break ("\n\n")."""
    tail = before.rstrip()
    head = after.lstrip()
    runs_on = bool(tail) and tail[-1] not in ".!?:;\"'”’)]" and head[:1].islower()
    return "\n" if runs_on else "\n\n"


def _load_pdf(path: Path, name: str, ocr: PageOcr | None) -> tuple[str, tuple[Page, ...], str]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PdfReadError
    except ImportError as exc:  # pragma: no cover - pypdf is a core dependency
        raise LoadError("PDF support needs pypdf: pip install pypdf") from exc
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception as exc:
                raise LoadError(f"{name}: the PDF is encrypted") from exc
        texts = [_page_text(page) for page in reader.pages]
        title = ""
        if reader.metadata is not None and reader.metadata.title:
            title = str(reader.metadata.title).strip()
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise LoadError(f"{name}: unreadable PDF ({exc})") from exc
    scanned = [n for n, text in enumerate(texts, start=1) if needs_ocr(text)]
    read: dict[int, str] = {}
    if scanned and ocr is not None and ocr.reads_pdfs:
        whole = len(scanned) == len(texts)
        needs = "the PDF has no text layer (a scanned document?), and" if whole else None
        read = _ocr_pages(path, name, scanned, ocr, needs)
    elif not "".join(texts).strip():
        raise LoadError(
            f"{name}: the PDF has no text layer (a scanned document?) and OCR is off: "
            "set RAG_OCR=pdf (the default) to read it"
        )
    # OCR's reading replaces a page's text layer only where it reads more than twice
    # as much: a scan (no text, or a stray page number) takes it; a page that is just
    # short ("Annual report 2024") keeps its text layer byte for byte, as every other
    # page does.
    by_ocr = {n for n, t in read.items() if visible_chars(t) > 2 * visible_chars(texts[n - 1])}
    text, pages = _join_pages(
        [read[n] if n in by_ocr else t for n, t in enumerate(texts, start=1)], by_ocr
    )
    if not text.strip():
        raise _nothing_read(name, f"the PDF's {len(texts)} page(s)", ocr)
    return text, pages, title or path.stem


def _ocr_pages(
    path: Path, name: str, numbers: list[int], ocr: PageOcr, needs: str | None
) -> dict[int, str]:
    """OCR text of ``numbers``. Without the engine, a file that ``needs`` OCR for all
    its text is a load error saying so; a partly scanned one keeps its text pages,
    with a warning."""
    try:
        return ocr.read_pages(path, name, numbers)
    except OcrUnavailable as exc:
        if needs:
            raise LoadError(f"{name}: {needs} {exc}") from None
        ocr.warnings.append(unavailable_message(name, numbers, exc))
        return {}
    except ScanError as exc:
        raise LoadError(str(exc)) from None


def _load_image(path: Path, name: str, ocr: PageOcr | None) -> tuple[str, tuple[Page, ...]]:
    if ocr is None or not ocr.reads_images:
        raise LoadError(f"{name}: images are read only with OCR on for them: set RAG_OCR=all")
    numbers = ocr.scanned_pages(path) or [1]
    read = _ocr_pages(path, name, numbers, ocr, "an image needs OCR, but")
    text, pages = _join_pages([read.get(n, "") for n in numbers], {n for n in read if read[n]})
    if not text.strip():
        raise _nothing_read(name, "the image", ocr)
    return text, pages


def _nothing_read(name: str, where: str, ocr: PageOcr | None) -> LoadError:
    """The error for a file OCR read nothing from, with what its pages said (unsure of
    the language, gave up) instead of the warnings: the file is skipped, not indexed."""
    said = list(ocr.warnings) if ocr is not None else []
    if ocr is not None:
        ocr.warnings.clear()
    if said:
        return LoadError(" ".join(said))
    return LoadError(f"{name}: OCR found no text in {where}")


def _join_pages(texts: list[str], by_ocr: set[int]) -> tuple[str, tuple[Page, ...]]:
    """Pages' texts joined (see ``_page_joint``), with each page's span kept."""
    pieces: list[str] = []
    pages: list[Page] = []
    offset = 0
    for number, page_text in enumerate(texts, start=1):
        if pieces:
            joint = _page_joint(pieces[-1], page_text)
            pieces.append(joint)
            offset += len(joint)
        pages.append(Page(number, offset, offset + len(page_text), ocr=number in by_ocr))
        pieces.append(page_text)
        offset += len(page_text)
    return "".join(pieces), tuple(pages)


def _load_docx(path: Path, name: str) -> tuple[str, str]:
    try:
        import docx
    except ImportError as exc:  # pragma: no cover - python-docx is a core dependency
        raise LoadError("DOCX support needs python-docx: pip install python-docx") from exc
    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises several unrelated types for bad zips
        raise LoadError(f"{name}: unreadable DOCX ({exc})") from exc
    lines = []
    for paragraph in document.paragraphs:
        words = paragraph.text.strip()
        if not words:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.lower().startswith("heading"):
            level = style.split()[-1]
            words = "#" * (int(level) if level.isdigit() else 1) + " " + words
        lines.append(words)
    text = "\n\n".join(lines)
    title = (document.core_properties.title or "").strip()
    if not title:
        first_heading = re.search(r"^#{1,6} (.+)$", text, re.MULTILINE)
        title = first_heading.group(1) if first_heading else path.stem
    return text, title


def load_file(
    path: Path, source: str, max_bytes: int | None = None, ocr: PageOcr | None = None
) -> Document:
    """Load one file as a ``Document``; raises ``LoadError`` with a readable reason.

    ``ocr`` reads PDF pages without a text layer and (mode "all") image files; its
    ``warnings`` collect what a reading was unsure of. Without it a scanned PDF is
    refused and an image is not read."""
    suffix = path.suffix.lower()
    kind = "image" if suffix in IMAGE_SUFFIXES else SUPPORTED_SUFFIXES.get(suffix)
    if kind is None:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise LoadError(f"{source}: unsupported file type (supported: {supported})")
    try:
        size = path.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise LoadError(
                f"{source}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit "
                "(raise RAG_MAX_FILE_MB to allow it)"
            )
        data = b"" if kind in ("pdf", "docx", "image") else path.read_bytes()
    except OSError as exc:
        raise LoadError(f"{source}: cannot read ({exc.strerror or exc})") from exc

    pages: tuple[Page, ...] = ()
    body_start = 0
    if kind == "md":
        text = decode_text(data, source)
        title, body_start = _load_markdown(text, path.stem)
    elif kind == "txt":
        text = decode_text(data, source)
        title = _load_txt(text, path.stem)
    elif kind == "html":
        text, title = _load_html(data, source, path.stem)
    elif kind == "pdf":
        text, pages, title = _load_pdf(path, source, ocr)
    elif kind == "image":
        text, pages = _load_image(path, source, ocr)
        title = path.stem
    else:
        text, title = _load_docx(path, source)

    if not text[body_start:].strip():
        raise LoadError(f"{source}: the file holds no text")
    # What OCR read depends on the engine and languages too: with other settings the
    # document is another one, even where the text happens to come out the same.
    read_by = ocr.fingerprint() if ocr is not None and any(p.ocr for p in pages) else ""
    return Document(
        source=source,
        path=str(path.resolve()),
        title=title,
        text=text,
        content_hash=content_hash(text + (f"\x1focr:{read_by}" if read_by else "")),
        kind=kind,
        pages=pages,
        body_start=body_start,
    )


def load_text(text: str, source: str, title: str = "", kind: str = "txt") -> Document:
    """A document from in-memory text (tests, uploads already decoded)."""
    body_start = 0
    if kind == "md":
        found_title, body_start = _load_markdown(text, Path(source).stem)
        title = title or found_title
    return Document(
        source=source,
        path="",
        title=title or _load_txt(text, Path(source).stem),
        text=text,
        content_hash=content_hash(text),
        kind=kind,
        body_start=body_start,
    )
