"""``rag bench ocr``: character error and seconds per page of the OCR engine, on pages
this project renders (``evals.ocr_pages``): half clean, half degraded. Seconds a page
one at a time (each page's latency), and as ingest reads a scan (several at once).

The issue's targets: character error at most 2% on clean pages and 5% on degraded
ones, at most 4 s a page on 2 cores. Speed is measured here, never in a timed test.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from rag.cli import echo_err, echo_json, json_option, settings_from
from rag.documents.ocr import OcrUnavailable, Tesseract
from rag.errors import InputError

TARGETS = {"clean_cer": 0.02, "degraded_cer": 0.05, "seconds_per_page": 4.0}


def run(languages: str, count: int, out: Path | None = None) -> dict[str, Any]:
    from evals.ocr_pages import character_error_rate, make_pages

    try:
        engine = Tesseract(languages)
    except OcrUnavailable as exc:
        raise InputError(str(exc)) from None
    echo_err(f"Rendering {count} test pages...")
    pages = make_pages(count)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for page in pages:
        started = time.perf_counter()
        reading = engine.read(page.image)
        seconds = time.perf_counter() - started
        cer = character_error_rate(reading.text, page.truth)
        rows.append({
            "page": page.name, "degradation": page.degradation or "clean",
            "cer": round(cer, 5), "seconds": round(seconds, 3),
            "confidence": round(reading.confidence, 1), "denoised": reading.denoised,
        })  # fmt: skip
        echo_err(f"  {page.name:<22} CER {cer:6.2%}  {seconds:5.2f} s")
        if out is not None:
            page.image.save(out / f"{page.name}.png")
            (out / f"{page.name}.txt").write_text(page.truth + "\n", encoding="utf-8")
            (out / f"{page.name}.ocr.txt").write_text(reading.text + "\n", encoding="utf-8")
    clean = [float(r["cer"]) for r in rows if r["degradation"] == "clean"]
    degraded = [float(r["cer"]) for r in rows if r["degradation"] != "clean"]
    times = [float(r["seconds"]) for r in rows]
    summary: dict[str, Any] = {
        "engine": engine.name,
        "languages": engine.languages,
        "pages": len(rows),
        "clean_cer": round(statistics.fmean(clean), 5) if clean else None,
        "degraded_cer": round(statistics.fmean(degraded), 5) if degraded else None,
        "worst_cer": max(clean + degraded),
        "seconds_per_page": round(statistics.fmean(times), 3),
        "seconds_median": round(statistics.median(times), 3),
        "seconds_max": max(times),
    }
    summary["ingest_seconds_per_page"] = _through_ingest(pages, languages)
    summary["meets_targets"] = bool(
        max(clean, default=0.0) <= TARGETS["clean_cer"]
        and max(degraded, default=0.0) <= TARGETS["degraded_cer"]
        and max(times) <= TARGETS["seconds_per_page"]
    )
    summary["rows"] = rows
    return summary


def _through_ingest(pages: list[Any], languages: str) -> float:
    """Seconds a page as ingest reads a scan: the pages as one image PDF, rendered by
    pypdfium2 and read ``READERS`` at a time, into an empty cache."""
    from rag.documents.scans import READERS, PageOcr

    with tempfile.TemporaryDirectory() as folder:
        scan = Path(folder) / "scan.pdf"
        first, *rest = [page.image.convert("L") for page in pages]
        first.save(scan, "PDF", resolution=300.0, save_all=True, append_images=rest)
        ocr = PageOcr("pdf", languages, len(pages), Path(folder) / "cache")
        echo_err(f"Reading them as one scanned PDF, {READERS} page(s) at a time...")
        started = time.perf_counter()
        ocr.read_pages(scan, "scan.pdf", list(range(1, len(pages) + 1)))
        return round((time.perf_counter() - started) / len(pages), 3)


@click.command("ocr")
@click.option(
    "--pages", "count", type=click.IntRange(2, 200), default=12, show_default=True,
    help="Test pages to render (the first half clean, the rest degraded).",
)  # fmt: skip
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Also write each page's image, true text and OCR text to this folder.",
)  # fmt: skip
@json_option
@click.pass_context
def bench_ocr(ctx: click.Context, count: int, out_dir: Path | None, as_json: bool) -> None:
    """OCR accuracy (character error rate, clean and degraded pages) and seconds per page."""
    settings = settings_from(ctx)
    result = run(settings.ocr_languages, count, out_dir)
    if as_json:
        echo_json(result)
        return
    for key, value in result.items():
        if key != "rows":
            click.echo(f"{key:>24}: {value}")
    click.echo(f"{'targets':>24}: {json.dumps(TARGETS)}")
