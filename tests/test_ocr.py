"""OCR at ingest with the real engine (Debian's Tesseract; ``make test`` installs it):
accuracy on rendered pages, scanned PDFs and images answered with the right page
cited, text-layer pages kept byte for byte, the per-page cache a killed ingest
resumes from, and every kind of bad scan reported file by file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evals.ocr_pages import character_error_rate, make_pages, render
from rag.documents.loading import LoadError, load_file
from rag.documents.ocr import Tesseract
from rag.documents.scans import PageOcr, page_ocr
from rag.index.ingest import ingest
from rag.settings import Settings
from tests.helpers import REPO, clean_env, make_pdf, run_rag, scanned_pdf

FACTS = [
    [
        "Maintenance of the Orvane pump. The Orvane pump must be serviced every 400 "
        "operating hours. Use only grease of grade NLGI 2 on the main bearing."
    ],
    [
        "Public meeting. The council will hold a public meeting about the new ferry "
        "terminal on 27 April at the Memorial Hall, starting at 7:30 pm."
    ],
    [
        "Opening hours. The Kestrel Street library stays open until 8 pm on Wednesdays "
        "during a six month trial that starts in January."
    ],
]


def cache_files(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Cached page -> (inode, mtime): a page read again gets a new file."""
    root = data_dir / "ocr-cache"
    return {
        p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(root.rglob("page-*.json"))
    }


# -- accuracy ------------------------------------------------------------------------------


def test_character_error_on_rendered_pages_clean_and_degraded() -> None:
    """The issue's accuracy targets on 12 pages, half degraded (speed: rag bench ocr)."""
    engine = Tesseract("eng")
    pages = make_pages(12)
    assert sum(1 for p in pages if p.degradation) == 6
    errors = {p.name: character_error_rate(engine.read(p.image).text, p.truth) for p in pages}
    clean = [errors[p.name] for p in pages if not p.degradation]
    degraded = [errors[p.name] for p in pages if p.degradation]
    assert max(clean) <= 0.02, errors
    assert max(degraded) <= 0.05, errors


def test_a_page_on_its_side_is_straightened() -> None:
    image, truth = render(FACTS[0] + FACTS[1])
    reading = Tesseract("eng").read(image.rotate(90, expand=True))
    assert reading.rotation in (90, 270)
    assert character_error_rate(reading.text, truth) <= 0.02


# -- loading -------------------------------------------------------------------------------


def test_a_mixed_pdf_keeps_its_text_layer_pages_byte_for_byte(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    from pypdf import PdfReader, PdfWriter

    text_pdf = tmp_path / "text.pdf"
    # The third page is short: it is read by OCR too, but keeps its text layer.
    text_pdf.write_bytes(make_pdf([["First page of the report.", "It has a text layer."],
                                   ["Annual report"]]))  # fmt: skip
    scan = tmp_path / "scan.pdf"
    truth = scanned_pdf(scan, [FACTS[1]])[0]
    writer = PdfWriter()
    typed, scanned = PdfReader(text_pdf), PdfReader(scan)
    for page in (typed.pages[0], scanned.pages[0], typed.pages[1]):
        writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with open(mixed, "wb") as out:
        writer.write(out)

    off = load_file(mixed, "mixed.pdf", ocr=page_ocr(make_settings(ocr="off")))
    doc = load_file(mixed, "mixed.pdf", ocr=page_ocr(make_settings(ocr="pdf")))
    assert [p.ocr for p in doc.pages] == [False, True, False]
    for before, after in zip(off.pages, doc.pages, strict=True):
        if not after.ocr:
            assert doc.text[after.start : after.end] == off.text[before.start : before.end]
    page_two = doc.text[doc.pages[1].start : doc.pages[1].end]
    assert character_error_rate(page_two, truth) <= 0.02
    assert doc.pages[0].start == 0 and off.text.startswith(doc.text[: doc.pages[0].end])


def test_without_ocr_a_scan_says_how_to_read_it(tmp_path: Path) -> None:
    scan = tmp_path / "scan.pdf"
    scanned_pdf(scan, [FACTS[0]])
    ocr = PageOcr("off", "eng", 200, tmp_path / "cache")
    with pytest.raises(LoadError, match=r"no text layer.*RAG_OCR=pdf"):
        load_file(scan, "scan.pdf", ocr=ocr)
    image = tmp_path / "photo.png"
    render(FACTS[0])[0].save(image)
    with pytest.raises(LoadError, match="RAG_OCR=all"):
        load_file(image, "photo.png", ocr=PageOcr("pdf", "eng", 200, tmp_path / "cache"))


def test_a_missing_engine_names_the_command_that_installs_it(
    tmp_path: Path, model_cache_dir: Path
) -> None:
    """``rag ingest`` of a scan on a machine without Tesseract (PATH without it)."""
    folder = tmp_path / "docs"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", [FACTS[0]])
    (folder / "note.md").write_text("# Note\n\nThe note is typed and indexed.\n")
    env = clean_env(model_cache_dir, PATH=str(Path(sys.executable).parent))
    result = run_rag("--data-dir", tmp_path / "data", "ingest", "--json", folder, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["documents_added"] == 1  # the typed note: the batch goes on
    [skipped] = report["skipped"]
    assert skipped["source"] == "scan.pdf"
    assert "make ocr" in skipped["reason"] and "no text layer" in skipped["reason"]


# -- ingest and answers --------------------------------------------------------------------


@pytest.mark.slow
def test_rag_ask_answers_from_a_scanned_pdf_and_a_png_citing_the_right_page(
    tmp_path: Path, model_cache_dir: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    scanned_pdf(folder / "council.pdf", FACTS)
    timetable = ("Ferry timetable. The first ferry to Saltholm leaves the east quay at "
                 "6:40 am on weekdays and at 8:15 am on Sundays.")  # fmt: skip
    render([timetable])[0].save(folder / "timetable.png")
    env = clean_env(model_cache_dir, RAG_OCR="all")
    data = tmp_path / "data"
    ingested = run_rag("--data-dir", data, "ingest", "--json", folder, env=env)
    assert ingested.returncode == 0, ingested.stderr
    assert json.loads(ingested.stdout)["documents_added"] == 2

    def ask(question: str) -> dict[str, Any]:
        result = run_rag("--data-dir", data, "ask", "--json", question, env=env)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    answer = ask("When is the public meeting about the ferry terminal?")
    assert not answer["refused"] and "27 April" in answer["answer"]
    first = answer["citations"][0]
    assert (first["source"], first["page"], first["ocr"]) == ("council.pdf", 2, True)
    answer = ask("When does the first ferry to Saltholm leave on Sundays?")
    assert not answer["refused"] and "8:15" in answer["answer"]
    first = answer["citations"][0]
    assert (first["source"], first["page"], first["ocr"]) == ("timetable.png", 1, True)


@pytest.mark.slow
def test_a_killed_ingest_resumes_without_reading_finished_pages_again(
    tmp_path: Path, model_cache_dir: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    scanned_pdf(folder / "long.pdf", [FACTS[i % 3] for i in range(6)])
    data = tmp_path / "data"
    env = clean_env(model_cache_dir)
    command = [sys.executable, "-m", "rag", "--data-dir", str(data), "ingest", str(folder)]
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(cache_files(data)) < 2:
            assert process.poll() is None, "the ingest ended before it could be killed"
            assert time.monotonic() < deadline, "no page was cached in 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    finished = cache_files(data)
    assert 2 <= len(finished) < 6, "killed in the middle of the scan"

    result = run_rag("--data-dir", data, "ingest", "--json", folder, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["documents_added"] == 1
    assert report["ocr_pages"] == 6 - len(finished), "only the pages not read before"
    after = cache_files(data)
    assert len(after) == 6
    assert {name: after[name] for name in finished} == finished, "a finished page was read again"


@pytest.mark.slow
def test_ocr_settings_are_part_of_the_document_fingerprint(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    folder = tmp_path / "docs"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", [FACTS[0]])
    settings = make_settings()
    assert ingest(settings, [folder], embedder=embedder).documents_added == 1
    assert ingest(settings, [folder], embedder=embedder).documents_unchanged == 1
    # Another engine (here: another way of preparing pages) reads the file again and
    # updates it, though the words come out the same.
    monkeypatch.setattr("rag.documents.ocr.PREPARATION_VERSION", 99)
    report = ingest(settings, [folder], embedder=embedder)
    assert report.documents_updated == 1 and report.chunks_embedded == 0


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_scans_get_a_message_each_and_the_batch_goes_on(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any
) -> None:
    from PIL import Image, ImageDraw, ImageFont

    from evals.ocr_pages import font_path

    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really an image" * 10)
    (folder / "huge-scan.pdf").write_bytes(make_pdf([None] * 300))
    scanned_pdf(folder / "half-empty.pdf", [FACTS[2], []])
    russian = Image.new("L", (2480, 1200), 255)
    font = ImageFont.truetype(str(font_path()), 40)
    line = "Совет проголосовал во вторник вечером за новый паромный терминал"
    for row in range(8):
        ImageDraw.Draw(russian).text((200, 200 + row * 62), line, font=font, fill=0)
    russian.save(folder / "russian.png")
    (folder / "typed.md").write_text("# Typed\n\nThe typed file is indexed as usual.\n")

    settings = make_settings(ocr="all", max_file_mb=1)
    report = ingest(settings, [folder], embedder=embedder)
    reasons = {s["source"]: s["reason"] for s in report.skipped}
    assert "not a readable image" in reasons["broken.png"]
    assert "300 pages need OCR" in reasons["huge-scan.pdf"]
    assert "RAG_OCR_MAX_PAGES" in reasons["huge-scan.pdf"]
    assert "unsure" in reasons["russian.png"] and "ocr_languages" in reasons["russian.png"]
    assert report.documents_added == 2  # half-empty.pdf and typed.md
    assert any("no text on page(s) 2" in w for w in report.warnings), report.warnings


@pytest.mark.slow
def test_questions_are_answered_while_an_upload_is_read_by_ocr(
    tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any
) -> None:
    """The web chat's upload (``LiveIndex.ingest``) reads the scan before it takes any
    lock: a question asked during the scan is answered before the scan is indexed."""
    import threading

    from rag.pipeline import build_pipeline
    from ui.handlers import ChatService

    settings = make_settings()
    ingest(settings, embedder=embedder)
    pipeline = build_pipeline(settings)
    scan = tmp_path / "minutes.pdf"
    scanned_pdf(scan, [FACTS[i % 3] for i in range(5)])
    events: list[tuple[str, float]] = []
    first_page = threading.Event()

    def progress(fraction: float, label: str) -> None:
        events.append((label, time.monotonic()))
        if label.startswith("OCR: reading scanned page 1/"):
            first_page.set()

    service = ChatService(settings, pipeline)
    statuses: list[str] = []
    upload = threading.Thread(target=lambda: statuses.append(service.upload([str(scan)], progress)))
    upload.start()
    try:
        assert first_page.wait(120), events
        answer = pipeline.ask("Where is Annapurna Labs based?")
        answered = time.monotonic()
        assert "Austin" in answer.answer
    finally:
        upload.join(300)
        pipeline.close()
    indexed = [at for label, at in events if not label.startswith("OCR")]
    assert indexed and answered < min(indexed), "the answer waited for the scan"
    assert [label for label, _ in events if label.startswith("OCR")][-1].endswith("5/5")
    assert statuses and "Indexed 1 new" in statuses[0]
    assert "OCR read 5 scanned page(s)" in statuses[0]


def test_two_scans_read_at_once_in_one_process(tmp_path: Path) -> None:
    """An upload and a folder watch may read scans at the same time: PDFium is called
    under one lock, so both come out whole (unguarded, PDFium corrupts the process)."""
    from concurrent.futures import ThreadPoolExecutor

    scans = []
    for name, pages in (("a.pdf", [FACTS[0], FACTS[1]]), ("b.pdf", [FACTS[2], FACTS[0]])):
        truths = scanned_pdf(tmp_path / name, pages)
        scans.append((tmp_path / name, truths))

    def read(scan: tuple[Path, list[str]]) -> list[float]:
        path, truths = scan
        ocr = PageOcr("pdf", "eng", 200, tmp_path / f"cache-{path.stem}")
        texts = ocr.read_pages(path, path.name, ocr.scanned_pages(path))
        return [character_error_rate(texts[n], t) for n, t in enumerate(truths, start=1)]

    with ThreadPoolExecutor(2) as pool:
        errors = list(pool.map(read, scans))
    assert all(e <= 0.02 for page_errors in errors for e in page_errors), errors
