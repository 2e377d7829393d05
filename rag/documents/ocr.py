"""OCR: reading the text of one page image, offline, with Tesseract.

Owns the engine (Tesseract from Debian's packages, driven through pytesseract), how a
page image is prepared for it, and how sure a reading is. Which pages get read, the
rasteriser and the per-page cache are ``rag.documents.scans``. Must not import the
index or any later stage.

Chosen by measurement (docs/ocr.md): on the same 15 pages Tesseract 5.3 read clean
pages at 0.01% character error and degraded ones at 1.29%, 1.2 s a page on 2 cores;
RapidOCR 1.4.4 (the one PyPI wheel that carries its weights) read them at 7.3% and
12.3%, 6.5 s a page.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any

from rag.errors import RagError

# Bump when preparing or reading a page changes: the cache keys on it, so cached
# pages read the old way are read again.
PREPARATION_VERSION = 2
INSTALL_HINT = "run `make ocr` (Tesseract from Debian's packages, plus pytesseract and pypdfium2)"
# A page is turned and read again only when its first reading is this unsure (mean word
# confidence, 0-100): upright English pages read at about 95, a page on its side at 26.
ROTATE_BELOW = 60.0
# Below this a reading is not indexed: measured, Cyrillic and Greek pages read with the
# English model come out at 33 and 40, noisy but correct English pages at 83 and up.
LOW_CONFIDENCE = 55.0
# Noise: the share of pixels a 3x3 median changes by more than NOISE_LEVEL grey levels.
# Measured (evals/ocr_pages.py): clean, skewed, JPEG and grey pages 0.0004-0.0019, a
# 150 dpi page 0.0079; 4% salt-and-pepper 0.021, Gaussian noise (sigma 40) 0.082. The
# median took those two from 7.7% and 99% errors to 0.0%, but blurs thin strokes of
# low-resolution pages (150 dpi: 0.6% errors), so it is applied only past the threshold.
NOISY_SHARE = 0.014
NOISE_LEVEL = 48
# Uneven light: a page whose paper (the brightest pixels around each spot) is darker
# than this somewhere is divided by its paper's brightness first. Tesseract's global
# threshold lost the darker third of a page lit from one side (53% errors; 0% after).
EVEN_PAPER = 220
# A page Tesseract has not read in this long is given up (noise can make it crawl).
PAGE_TIMEOUT_S = 90
# Tesseract's OpenMP threads per process. Pages are read several at once instead
# (``rag.documents.scans``): on 2 cores two processes of 1 thread read 8 pages at 0.69 s
# a page, one process of 2 threads at 1.20 s.
THREADS = "1"


class OcrUnavailable(RagError):
    """The OCR engine (or a language it was asked for) is not installed."""


class OcrError(RagError):
    """The engine failed on a page (an image it cannot take)."""


@dataclass(frozen=True)
class PageReading:
    """What OCR read on one page."""

    text: str  # lines joined by "\n", paragraphs by a blank line
    confidence: float  # mean word confidence 0-100 (by characters); -1 when no words
    rotation: int = 0  # degrees the page was turned clockwise to read it upright
    script: str = ""  # the script orientation detection saw, when it ran
    denoised: bool = False
    timed_out: bool = False

    @property
    def low_confidence(self) -> bool:
        return bool(self.text) and self.confidence < LOW_CONFIDENCE


class Tesseract:
    """The Tesseract engine for one set of languages (``eng``, ``eng+deu``)."""

    def __init__(self, languages: str) -> None:
        try:
            import pytesseract
        except ImportError:
            raise OcrUnavailable(f"OCR is not installed: {INSTALL_HINT}.") from None
        if shutil.which(pytesseract.pytesseract.tesseract_cmd) is None:
            raise OcrUnavailable(f"OCR needs the tesseract program, not found: {INSTALL_HINT}.")
        os.environ.setdefault("OMP_THREAD_LIMIT", THREADS)
        self._tess: Any = pytesseract
        self.version = str(pytesseract.get_tesseract_version()).split()[0]
        installed = set(pytesseract.get_languages(config=""))
        wanted = [lang for lang in languages.split("+") if lang]
        missing = [lang for lang in wanted if lang not in installed]
        if not wanted or missing:
            packages = " ".join(f"tesseract-ocr-{lang}" for lang in missing) or "-"
            raise OcrUnavailable(
                f"ocr_languages {languages!r}: Tesseract has no language data for "
                f"{', '.join(missing) or 'an empty list'} (installed: "
                f"{', '.join(sorted(installed - {'osd'}))}). Install it with "
                f"`sudo apt-get install {packages}`, or set RAG_OCR_LANGUAGES."
            )
        self.languages = "+".join(wanted)
        self.can_rotate = "osd" in installed

    @property
    def name(self) -> str:
        """The engine's identity in cache keys and fingerprints."""
        return f"tesseract-{self.version}-p{PREPARATION_VERSION}"

    def read(self, image: Any) -> PageReading:
        """Read one page image (a PIL image, any mode)."""
        from PIL import ImageOps

        page = ImageOps.exif_transpose(image).convert("L")
        page, denoised = _without_noise(page)
        page = _even_paper(page)
        reading = self._read(page, denoised)
        if reading.confidence >= ROTATE_BELOW or not self.can_rotate:
            return reading
        # Unsure: maybe the page is on its side or upside down. Orientation detection
        # costs about as much as a reading, so only unsure pages pay for it.
        rotation, script = self._orientation(page)
        if rotation:
            turned = self._read(page.rotate(-rotation, expand=True), denoised, rotation)
            if turned.confidence > reading.confidence:
                return PageReading(turned.text, turned.confidence, rotation, script, denoised)
        return PageReading(reading.text, reading.confidence, 0, script, denoised)

    def _read(self, page: Any, denoised: bool, rotation: int = 0) -> PageReading:
        try:
            data = self._tess.image_to_data(
                page, lang=self.languages, config="--psm 3", timeout=PAGE_TIMEOUT_S,
                output_type=self._tess.Output.DICT,
            )  # fmt: skip
        except self._tess.TesseractError as exc:
            raise OcrError(f"Tesseract failed ({exc.message or exc.status})") from None
        except RuntimeError as exc:  # pytesseract's timeout
            if "timeout" not in str(exc).lower():
                raise
            return PageReading("", -1.0, rotation, "", denoised, timed_out=True)
        text, confidence = _assemble(data)
        return PageReading(text, confidence, rotation, "", denoised)

    def _orientation(self, page: Any) -> tuple[int, str]:
        try:
            osd = self._tess.image_to_osd(page, config="--psm 0", timeout=PAGE_TIMEOUT_S)
        except (self._tess.TesseractError, RuntimeError):
            return 0, ""  # too little text to tell (or too slow): read it as it is
        rotate = re.search(r"Rotate: (\d+)", osd)
        script = re.search(r"Script: (\w+)", osd)
        return (int(rotate.group(1)) if rotate else 0), (script.group(1) if script else "")


def _without_noise(page: Any) -> tuple[Any, bool]:
    import numpy as np
    from PIL import ImageFilter

    smoothed = page.filter(ImageFilter.MedianFilter(3))
    pixels = np.asarray(page, dtype=np.int16)
    changed = np.abs(pixels - np.asarray(smoothed, dtype=np.int16)) > NOISE_LEVEL
    if float(changed.mean()) > NOISY_SHARE:
        return smoothed, True
    return page, False


def _even_paper(page: Any) -> Any:
    """The page divided by its paper's brightness, when the light is uneven.

    The paper is estimated at 1/8 scale as the brightest pixel around each spot (ink is
    dark, so it drops out); an evenly lit page is returned as it is, at no cost."""
    import numpy as np
    from PIL import Image, ImageFilter

    paper = page.reduce(8).filter(ImageFilter.MaxFilter(7))
    if float(np.percentile(np.asarray(paper), 1)) >= EVEN_PAPER:
        return page
    light = np.asarray(paper.resize(page.size, Image.Resampling.BILINEAR), dtype=np.float32)
    evened = np.asarray(page, dtype=np.float32) * 255.0 / np.maximum(light, 1.0)
    return Image.fromarray(np.clip(evened, 0, 255).astype(np.uint8))


def _assemble(data: dict[str, list[Any]]) -> tuple[str, float]:
    """Tesseract's word table as text (lines, blank lines between paragraphs) and the
    mean word confidence weighted by word length."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    weighted = 0.0
    characters = 0
    for i, word in enumerate(data["text"]):
        word = str(word).strip()
        confidence = float(data["conf"][i])
        if not word or confidence < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]))
        paragraphs.setdefault(key, {}).setdefault(int(data["line_num"][i]), []).append(word)
        weighted += confidence * len(word)
        characters += len(word)
    text = "\n\n".join(
        "\n".join(" ".join(words) for _, words in sorted(lines.items()))
        for _, lines in sorted(paragraphs.items())
    )
    return text, (weighted / characters if characters else -1.0)
