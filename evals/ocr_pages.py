"""Test pages for OCR: text rendered at 300 dpi on A4, clean and degraded, with the
exact text each page shows, so character error can be measured.

Half the pages are degraded the ways scans go wrong: noise, salt-and-pepper specks,
a slight skew, heavy JPEG compression, 150 dpi, and a grey, unevenly lit background.
The texts are made-up notices, minutes and manuals (no real people or places), written
for this benchmark. Seeded: the same pages every run.
"""

from __future__ import annotations

import io
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

A4_300DPI = (2480, 3508)
MARGIN = 200
FONT_PX = 40
LINE_GAP = 22
FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
FONTS = ("DejaVuSerif.ttf", "DejaVuSans.ttf", "LiberationSerif-Regular.ttf")

PARAGRAPHS = (
    "Section 4.2: Replacing the filter cartridge. Switch off the pump at the main breaker "
    "(circuit B-7) before opening the housing. Turn the lid anticlockwise by about 90 "
    "degrees and lift it straight up. Check that the O-ring (part no. 3341-118) shows no "
    "cracks, insert the new cartridge with the arrow pointing down, and tighten the lid by "
    "hand only. The pressure gauge should settle between 1.4 and 1.8 bar within 30 seconds.",
    "The council voted 9 to 4 on Tuesday night to approve a new ferry terminal on the east "
    "quay of Harbourtown, ending a dispute that began in 2019. The project, estimated at "
    "42.7 million pounds, will replace the wooden pier built in 1958. A public meeting is "
    "planned for 27 April at the Memorial Hall, starting at 7:30 pm.",
    "Quarterly summary, third quarter. Revenue rose 6.3% to 118.4 million euros, driven by "
    "the service division, which grew 11.2%. Hardware sales fell 2.9% to 51.0 million. The "
    "board proposes an interim dividend of 0.45 euros per share, payable on 15 November. "
    "Headcount at the end of September was 2,314 (previous year: 2,207).",
    "Safety notice: battery packs. Never charge a pack that is swollen, dented or warm to "
    "the touch. Use only the supplied charger (model LC-220, output 8.4 V, 2.0 A). A full "
    "charge takes about 3 hours. Store spare packs at 40-60% charge in a cool, dry place; "
    "damaged packs go back to the depot in the red bin, never in general waste.",
    "Minutes of the library committee, meeting of 3 October. Item 2: the treasurer reported "
    "a balance of 12,480.55 and an overspend of 310 on the periodicals budget. Item 3: the "
    "committee agreed to keep the library open until 8 pm on Wednesdays for a trial of six "
    "months. The next meeting will be held on 7 November at 6:15 pm in Room 2.14.",
    "How to calibrate the scale. Let the scale warm up for 15 minutes on a level surface. "
    "Hold the TARE key until the display shows CAL, then put the 500 g reference weight in "
    "the centre of the pan; the display should read 500.0. Correct it with UP or DOWN in "
    "steps of 0.1 g and press ENTER. Repeat the check every 30 days.",
    "Error codes. E01: sensor not detected; check cable J4. E02: temperature out of range "
    "(below -10 or above 60 degrees). E07: memory card full; insert a new card of at most "
    "64 GB. E12: firmware checksum mismatch; reinstall firmware 2.4.1 with the recovery "
    "tool. E15: battery voltage below 3.3 V; replace both AA cells.",
    "Travel advisory. Because of track works between Northgate and Ellis Park, trains on "
    "Line 3 will run every 20 minutes instead of every 10 from Friday at 21:00 until Monday "
    "at 05:00. Replacement buses (route R3) stop outside each station; allow an extra 25 "
    "minutes for your journey. Folding bikes only on the buses.",
)
DEGRADATIONS = ("noise", "specks", "skew", "jpeg", "150dpi", "grey")


@dataclass(frozen=True)
class OcrPage:
    name: str
    image: Any  # a PIL image
    truth: str  # the text the page shows, line by line
    degradation: str  # "" for a clean page


def font_path() -> Path | None:
    for folder in FONT_DIRS:
        for name in FONTS:
            if (Path(folder) / name).is_file():
                return Path(folder) / name
    return None


def _font(size: int) -> Any:
    from PIL import ImageFont

    path = font_path()
    # Pillow's own scalable font when the system has neither DejaVu nor Liberation.
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)


def render(paragraphs: list[str], title: str = "") -> tuple[Any, str]:
    """A white A4 page at 300 dpi with ``title`` and ``paragraphs``; (image, its text)."""
    from PIL import Image, ImageDraw

    image = Image.new("L", A4_300DPI, 255)
    draw = ImageDraw.Draw(image)
    font = _font(FONT_PX)
    width = A4_300DPI[0] - 2 * MARGIN
    y = MARGIN
    lines: list[str] = []
    if title:
        draw.text((MARGIN, y), title, font=_font(56), fill=0)
        lines.append(title)
        y += 116
    for paragraph in paragraphs:
        line = ""
        for word in paragraph.split():
            wider = f"{line} {word}".strip()
            if draw.textlength(wider, font=font) <= width:
                line = wider
                continue
            draw.text((MARGIN, y), line, font=font, fill=0)
            lines.append(line)
            y += FONT_PX + LINE_GAP
            line = word
        if line:
            draw.text((MARGIN, y), line, font=font, fill=0)
            lines.append(line)
            y += FONT_PX + LINE_GAP
        y += FONT_PX
    return image, "\n".join(lines)


def degrade(image: Any, how: str, seed: int) -> Any:
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(seed)
    pixels: Any = np.asarray(image, dtype=np.float64)
    if how == "noise":
        pixels = pixels + rng.normal(0, 40, pixels.shape)
    elif how == "specks":
        speck = rng.random(pixels.shape)
        pixels[speck < 0.02] = 0
        pixels[speck > 0.98] = 255
    elif how == "skew":
        return image.rotate(2.0, resample=Image.Resampling.BICUBIC, fillcolor=255)
    elif how == "jpeg":
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=30)
        return Image.open(io.BytesIO(buffer.getvalue())).convert("L")
    elif how == "150dpi":
        half = (image.width // 2, image.height // 2)
        return image.resize(half, Image.Resampling.LANCZOS)
    elif how == "grey":
        x = np.linspace(0.0, 1.0, pixels.shape[1])[None, :]
        light = 205 + 40 * x  # a grey page, darker on the left
        pixels = np.minimum(pixels, light) * (0.85 + 0.15 * x)
        blurred = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        return blurred.filter(ImageFilter.GaussianBlur(0.8))
    else:
        raise ValueError(f"unknown degradation {how!r}")
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def make_pages(count: int = 12) -> list[OcrPage]:
    """``count`` pages: the first half clean, the second half degraded in turn."""
    pages = []
    clean = count - count // 2
    for i in range(count):
        paragraphs = [PARAGRAPHS[i % len(PARAGRAPHS)], PARAGRAPHS[(i + 3) % len(PARAGRAPHS)]]
        image, truth = render(paragraphs, title=f"Notice {i + 1}")
        how = "" if i < clean else DEGRADATIONS[(i - clean) % len(DEGRADATIONS)]
        if how:
            image = degrade(image, how, seed=i)
        pages.append(OcrPage(f"page-{i + 1:02d}{'-' + how if how else ''}", image, truth, how))
    return pages


def normalise(text: str) -> str:
    """Text as character error compares it: NFKC, typographic quotes and dashes plain,
    whitespace runs one space (OCR's line breaks are not errors)."""
    text = unicodedata.normalize("NFKC", text)
    for fancy, plain in (("‘’‚", "'"), ("“”„", '"'), ("–—−", "-")):
        for ch in fancy:
            text = text.replace(ch, plain)
    return " ".join(text.split())


def character_error_rate(read: str, truth: str) -> float:
    """Edits (insertions, deletions, substitutions) from ``read`` to ``truth`` over the
    length of ``truth``, both normalised."""
    from rapidfuzz.distance import Levenshtein

    truth = normalise(truth)
    return Levenshtein.distance(normalise(read), truth) / max(len(truth), 1)
