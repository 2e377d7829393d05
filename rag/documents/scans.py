"""Scans: which pages of a file need OCR, their images, and the per-page cache.

``PageOcr`` is what ingest hands the loader: the OCR settings, the engine (started on
first use, so text-only ingests never need it), the cache, and the warnings a reading
raised. ``PageOcr.prepare`` reads every page that needs OCR into the cache before an
ingest takes the index lock, so the web chat and ``rag serve`` keep answering during
a long scan, and a killed ingest resumes at the first page not yet read. The loader
(``rag.documents.loading``) then takes the pages from the cache.

The cache is one small JSON file per page under ``<data_dir>/ocr-cache``, keyed by the
file's content hash, the page, the engine and the languages: a renamed file is not read
again; an edited file, another engine or other languages are.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.documents.ocr import (
    INSTALL_HINT,
    PAGE_TIMEOUT_S,
    OcrError,
    OcrUnavailable,
    PageReading,
    Tesseract,
)
from rag.errors import RagError
from rag.settings import Settings

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})
# A PDF page whose text layer has fewer characters than this (spaces not counted) is
# read by OCR: a scan may carry a stray page number or a scanner's stamp as text.
MIN_TEXT_CHARS = 20
# Pages read at once, each by its own single-threaded Tesseract process (see
# ``rag.documents.ocr.THREADS``); at most 4, to bound the page images held in memory.
READERS = max(1, min(4, os.cpu_count() or 1))
# PDFium must never be called from two threads at once, not even for two documents
# (it corrupts the process): every call here holds this lock, and closes what it
# opened, so no finaliser calls PDFium later from another thread. An upload and a
# folder watch can read scans at the same time in one server.
PDFIUM = threading.RLock()
RENDER_DPI = 300
MAX_RENDER_SIDE = 7000  # pixels: a poster-sized page is rendered smaller, not at 300 dpi

# progress(stage, done, total), as ingest reports it; OCR reports stage "ocr" in pages.
Progress = Callable[[str, int, int], None]


class ScanError(RagError):
    """A file's scanned pages cannot be read (too many, unreadable image)."""


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def visible_chars(text: str) -> int:
    """Characters of ``text`` not counting whitespace."""
    return len("".join(text.split()))


def needs_ocr(text: str) -> bool:
    return visible_chars(text) < MIN_TEXT_CHARS


@dataclass
class PageOcr:
    """OCR for one ingest: settings, the lazily started engine, the cache, warnings."""

    mode: str  # "off" | "pdf" | "all"
    languages: str
    max_pages: int
    cache_dir: Path
    warnings: list[str] = field(default_factory=list)
    pages_read: int = 0  # pages the engine read (cached pages not counted)
    _engine: Tesseract | None = None

    @property
    def reads_images(self) -> bool:
        return self.mode == "all"

    @property
    def reads_pdfs(self) -> bool:
        return self.mode in ("pdf", "all")

    def engine(self) -> Tesseract:
        """The engine, started on first use; raises ``OcrUnavailable`` naming the fix."""
        if self._engine is None:
            self._engine = Tesseract(self.languages)
        return self._engine

    def fingerprint(self) -> str:
        """What a document read with OCR also depends on: engine and languages."""
        engine = self.engine()
        return f"{engine.name}:{engine.languages}"

    # -- reading pages --------------------------------------------------------------

    def read_pages(
        self, path: Path, source: str, numbers: Sequence[int], progress: Progress | None = None,
        done: int = 0, total: int = 0,
    ) -> dict[int, str]:  # fmt: skip
        """page number -> OCR text for ``numbers`` of a PDF or an image file ("" for a
        page that read as nothing or too unsure to index; both warn)."""
        if len(numbers) > self.max_pages:
            raise ScanError(
                f"{source}: {len(numbers)} pages need OCR, more than ocr_max_pages "
                f"({self.max_pages}); raise RAG_OCR_MAX_PAGES to read it (about "
                f"{len(numbers) / 60:.0f} minutes on 2 cores)"
            )
        engine = self.engine()
        digest = file_hash(path)
        texts: dict[int, str] = {}
        unsure: list[str] = []
        empty: list[int] = []
        slow: list[int] = []
        readings = {n: r for n in numbers if (r := self._cached(digest, n)) is not None}
        missing = [n for n in numbers if n not in readings]
        for number, reading in _read_all(engine, path, source, missing):
            self._store(digest, number, reading)  # page by page: a kill loses only pages in flight
            readings[number] = reading
            self.pages_read += 1
            done += 1
            if progress is not None:
                progress("ocr", done, max(total, done))
        for number in numbers:
            reading = readings[number]
            if reading.timed_out:
                slow.append(number)
            if reading.low_confidence:
                unsure.append(f"{number} ({reading.confidence:.0f}%{_script(reading)})")
                texts[number] = ""
            else:
                texts[number] = reading.text
                if not reading.text and not reading.timed_out:
                    empty.append(number)
        if unsure:
            self.warnings.append(
                f"{source}: OCR is unsure of page(s) {', '.join(unsure)} and left them out "
                f"of the index: are they in a language ocr_languages ({self.languages!r}) "
                "does not list? Set RAG_OCR_LANGUAGES (e.g. eng+deu) and install the "
                "language's data (sudo apt-get install tesseract-ocr-deu)."
            )
        if slow:
            self.warnings.append(
                f"{source}: OCR gave up on page(s) {', '.join(map(str, slow))} after "
                f"{PAGE_TIMEOUT_S} s each (a very noisy or dense scan?); they are not indexed."
            )
        if empty:
            self.warnings.append(
                f"{source}: OCR found no text on page(s) {', '.join(map(str, empty))}."
            )
        return texts

    def _cache_file(self, digest: str, number: int) -> Path:
        engine = self.engine()
        key = f"{engine.name}+{engine.languages}"
        return self.cache_dir / digest[:2] / digest / key / f"page-{number:05d}.json"

    def _cached(self, digest: str, number: int) -> PageReading | None:
        try:
            raw = json.loads(self._cache_file(digest, number).read_text(encoding="utf-8"))
            return PageReading(
                str(raw["text"]), float(raw["confidence"]), int(raw["rotation"]),
                str(raw.get("script", "")), bool(raw.get("denoised", False)),
                bool(raw.get("timed_out", False)),
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None  # not read yet, or a torn write: read the page again

    def _store(self, digest: str, number: int, reading: PageReading) -> None:
        target = self._cache_file(digest, number)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Unique per writer: the web chat's upload and a folder watch may read the same
        # file at once, in one process or two.
        partial = target.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
        payload = {
            "text": reading.text, "confidence": reading.confidence,
            "rotation": reading.rotation, "script": reading.script,
            "denoised": reading.denoised, "timed_out": reading.timed_out,
        }  # fmt: skip
        partial.write_text(json.dumps(payload), encoding="utf-8")
        os.replace(partial, target)  # a kill leaves the page unread, never half-written

    # -- before the lock ------------------------------------------------------------

    def pending(self, path: Path) -> list[int]:
        """The pages of ``path`` that need OCR and are not cached yet."""
        numbers = self.scanned_pages(path)
        if not numbers or len(numbers) > self.max_pages:
            return []  # the loader says why a file over the limit is skipped
        digest = file_hash(path)
        return [n for n in numbers if self._cached(digest, n) is None]

    def scanned_pages(self, path: Path) -> list[int]:
        """The pages of ``path`` OCR would read (cheap: no rendering)."""
        suffix = path.suffix.lower()
        try:
            if suffix in IMAGE_SUFFIXES and self.reads_images:
                return list(range(1, _image_count(path) + 1))
            if suffix == ".pdf" and self.reads_pdfs:
                return _pdf_pages_without_text(path)
        except Exception:  # unreadable: the loader reports it, file by file
            return []
        return []

    def prepare(self, paths: Iterable[tuple[Path, str]], progress: Progress) -> None:
        """OCR every page of ``paths`` (path, source) that needs it into the cache.

        Per-page progress as stage "ocr"; a file that fails is left to the loader,
        which reports it, so one bad scan does not stop the batch."""
        if self.mode == "off":
            return
        try:
            self.engine()
        except OcrUnavailable:
            return  # each scanned file gets the message when it is loaded
        work = [(path, source, self.pending(path)) for path, source in paths]
        work = [item for item in work if item[2]]
        total = sum(len(numbers) for _, _, numbers in work)
        if not total:
            return
        progress("ocr", 0, total)
        done = 0
        for path, source, numbers in work:
            with contextlib.suppress(ScanError, OSError):
                self.read_pages(path, source, numbers, progress, done, total)
            done += len(numbers)
            progress("ocr", done, total)
        self.warnings.clear()  # the loader raises them again, with the file's report


def page_ocr(settings: Settings) -> PageOcr:
    """OCR as ``settings`` ask for it, caching pages in the data directory."""
    return PageOcr(
        settings.ocr, settings.ocr_languages, settings.ocr_max_pages,
        settings.data_dir / "ocr-cache",
    )  # fmt: skip


def _script(reading: PageReading) -> str:
    return f", looks like {reading.script} script" if reading.script else ""


def unavailable_message(source: str, pages: Sequence[int], error: OcrUnavailable) -> str:
    where = f"page(s) {', '.join(map(str, pages))}" if pages else "it"
    return f"{source}: {where} need OCR, but {error}"


class _PageImages:
    """Page images of a PDF (rendered at 300 dpi) or an image file (one per frame)."""

    def __init__(self, path: Path, source: str) -> None:
        self.source = source
        self._pdf: Any = None
        self._image: Any = None
        if path.suffix.lower() == ".pdf":
            try:
                import pypdfium2
            except ImportError:
                raise OcrUnavailable(f"OCR is not installed: {INSTALL_HINT}.") from None
            try:
                with PDFIUM:
                    self._pdf = pypdfium2.PdfDocument(str(path))
            except pypdfium2.PdfiumError as exc:
                raise ScanError(f"{source}: cannot render the PDF's pages ({exc})") from None
        else:
            self._image = _open_image(path, source)

    def page(self, number: int) -> Any:
        if self._pdf is not None:
            import pypdfium2

            try:
                with PDFIUM:
                    page = self._pdf[number - 1]
                    width, height = page.get_size()  # points, 1/72 inch
                    scale = min(RENDER_DPI / 72, MAX_RENDER_SIDE / max(width, height, 1.0))
                    bitmap = page.render(scale=scale, grayscale=True)
                    # A copy: the bitmap's memory is PDFium's, freed here, under the lock.
                    image = bitmap.to_pil().copy()
                    bitmap.close()
                    page.close()
                    return image
            except pypdfium2.PdfiumError as exc:
                raise ScanError(f"{self.source}: cannot render page {number} ({exc})") from None
        try:
            self._image.seek(number - 1)
            frame = self._image.copy()
            frame.load()
            return frame
        except (OSError, EOFError, ValueError) as exc:
            raise ScanError(
                f"{self.source}: page {number} is not a readable image ({exc})"
            ) from None

    def close(self) -> None:
        if self._pdf is not None:
            with PDFIUM:
                self._pdf.close()
        if self._image is not None:
            self._image.close()


def _read_all(
    engine: Tesseract, path: Path, source: str, numbers: Sequence[int]
) -> Iterator[tuple[int, PageReading]]:
    """(page, reading) for ``numbers``, in order: pages rendered one at a time here
    (PDFium is not thread-safe), read by up to ``READERS`` Tesseract processes at once,
    with no more pages in memory than are being read."""
    if not numbers:
        return
    images = _PageImages(path, source)
    try:
        with ThreadPoolExecutor(READERS, thread_name_prefix="ocr") as pool:
            reading: deque[tuple[int, Future[PageReading]]] = deque()
            for number in numbers:
                image = images.page(number)
                reading.append((number, pool.submit(_read_page, engine, image, number, source)))
                if len(reading) >= READERS:
                    first, future = reading.popleft()
                    yield first, future.result()
            while reading:
                first, future = reading.popleft()
                yield first, future.result()
    finally:
        images.close()


def _read_page(engine: Tesseract, image: Any, number: int, source: str) -> PageReading:
    try:
        return engine.read(image)
    except OcrError as exc:
        raise ScanError(f"{source}: page {number}: {exc}") from None


def _open_image(path: Path, source: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
        return image
    except Image.DecompressionBombError as exc:
        raise ScanError(f"{source}: the image is too large to read ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ScanError(f"{source}: not a readable image ({exc})") from None


def _image_count(path: Path) -> int:
    image = _open_image(path, path.name)
    try:
        return int(getattr(image, "n_frames", 1))
    finally:
        image.close()


def _pdf_pages_without_text(path: Path) -> list[int]:
    """Pages whose text layer pdfium sees as (nearly) empty: a fast forecast of the
    loader's decision, which uses the text pypdf extracts."""
    import pypdfium2

    with PDFIUM:
        pdf = pypdfium2.PdfDocument(str(path))
        try:
            numbers = []
            for index in range(len(pdf)):
                page = pdf[index]
                text_page = page.get_textpage()
                if needs_ocr(text_page.get_text_range()):
                    numbers.append(index + 1)
                text_page.close()
                page.close()
            return numbers
        finally:
            pdf.close()
