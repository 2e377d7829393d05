"""Loading: every supported format into a ``Document``, and every bad file refused clearly.

Fast unit tests: files are written to ``tmp_path`` (the PDF by hand, the DOCX with
python-docx); no model, no index.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rag.documents.chunking import split_sentences
from rag.documents.loading import LoadError, decode_text, load_file
from tests.helpers import make_pdf

PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"


def _random_bytes_without_nul(size: int) -> bytes:
    rng = random.Random(8)
    return bytes(rng.randrange(1, 256) for _ in range(size))


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


# -- text encodings ------------------------------------------------------------------------


def test_utf8_markdown_is_the_files_own_text(tmp_path: Path) -> None:
    text = "# Café notes\n\nThe café serves crème brûlée. “Quoted” — naïve.\n"
    doc = load_file(_write(tmp_path, "notes.md", text), "notes.md")
    assert doc.text == text
    assert doc.title == "Café notes"
    assert doc.kind == "md"
    assert doc.path == str((tmp_path / "notes.md").resolve())


def test_utf8_bom_is_dropped(tmp_path: Path) -> None:
    text = "Title line\n\nBody with café.\n"
    doc = load_file(_write(tmp_path, "bom.txt", b"\xef\xbb\xbf" + text.encode()), "bom.txt")
    assert doc.text == text
    assert doc.title == "Title line"


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        pytest.param(
            "latin-1", "Le café est très bon. Les élèves sont à l'école. Noël!\n", id="fr"
        ),
        pytest.param("latin-1", "Größe und Übermaß: Straße, Fußgänger, schön.\n", id="de"),
        pytest.param("latin-1", "El niño comió en la mañana. ¿Dónde está el baño?\n", id="es"),
        pytest.param("cp1252", "He said “hello” – it’s a café… naïve, for €5.\n", id="quotes"),
        pytest.param(
            "cp1252", "Résumé of the café.\nWe discussed naïve ideas and the façade.\n", id="en"
        ),
        pytest.param(
            "cp1251", "Привет, как дела? Это тестовый документ на русском языке.\n", id="ru"
        ),
        pytest.param(
            "utf-16", "Text saved as UTF-16 by an old editor, café included.\n", id="utf16"
        ),
    ],
)
def test_legacy_encodings_are_decoded_sensibly(tmp_path: Path, encoding: str, text: str) -> None:
    doc = load_file(_write(tmp_path, "legacy.txt", text.encode(encoding)), "legacy.txt")
    assert doc.text == text


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"abc\x00def\x00" * 100, id="nul-bytes"),
        pytest.param(PNG_HEADER + bytes(range(256)) * 4, id="png"),
        pytest.param(random.Random(7).randbytes(4096), id="random"),
        pytest.param(_random_bytes_without_nul(4096), id="no-nul"),
    ],
)
@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
def test_binary_files_are_refused(tmp_path: Path, data: bytes, suffix: str) -> None:
    with pytest.raises(LoadError, match=r"binary|encoding") as info:
        load_file(_write(tmp_path, "photo" + suffix, data), "photo" + suffix)
    assert str(info.value).startswith("photo" + suffix), "the message names the file"


def test_decode_text_prefers_utf8() -> None:
    assert decode_text("naïve".encode(), "x") == "naïve"


@pytest.mark.parametrize("name", ["archive.zip", "notes.xyz", "README", "data.json"])
def test_unsupported_suffix_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(LoadError, match="unsupported file type") as info:
        load_file(_write(tmp_path, name, "plain words"), name)
    assert ".md" in str(info.value) and ".pdf" in str(info.value), "lists what is supported"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.md", ""),
        ("blank.txt", "  \n\n\t\n"),
        ("front-matter-only.md", "---\ntitle: Nothing here\n---\n\n"),
        (
            "empty.html",
            "<html><head><title>T</title><script>x()</script></head><body></body></html>",
        ),
    ],
)
def test_files_without_text_are_refused(tmp_path: Path, name: str, data: str) -> None:
    with pytest.raises(LoadError, match="no text"):
        load_file(_write(tmp_path, name, data), name)


def test_size_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.txt", "word " * 1000)
    assert load_file(path, "big.txt", max_bytes=10_000).text.startswith("word")
    with pytest.raises(LoadError, match="RAG_MAX_FILE_MB"):
        load_file(path, "big.txt", max_bytes=1000)


def test_missing_file_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="cannot read"):
        load_file(tmp_path / "gone.md", "gone.md")


# -- titles --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text", "title"),
    [
        ("a.md", "---\ntitle: 'From front matter'\n---\n# Heading\n\nBody.\n", "From front matter"),
        ("b.md", "Intro line.\n\n## From the heading ##\n\nBody.\n", "From the heading"),
        ("c.md", "Just a body sentence.\n", "c"),
        ("d.txt", "\n\nA short title\n\nThe body. It has sentences.\n", "A short title"),
        ("e.txt", "This first line ends like a sentence.\nMore.\n", "e"),
        ("f.md", "---\r\ntitle: CRLF front matter\r\n---\r\nBody.\r\n", "CRLF front matter"),
    ],
)
def test_titles(tmp_path: Path, name: str, text: str, title: str) -> None:
    doc = load_file(_write(tmp_path, name, text.encode()), name)
    assert doc.title == title
    if text.startswith("---"):
        assert doc.body_start > 0 and not doc.text[doc.body_start :].startswith("---")


# -- HTML ----------------------------------------------------------------------------------

HTML = """<!doctype html>
<html><head><title>Chip News</title>
<style>body { color: red }</style>
<script>var secret = "script text must not be indexed";</script></head>
<body>
<h1>Trainium   chips</h1>
<p>Amazon builds <b>its own</b> chips. It rents them out.</p>
<ul><li>Graviton</li><li>Inferentia, for <i>inference</i></li></ul>
<div>Text that sits in a div without a paragraph.</div>
<h2>Costs</h2>
<table><tr><th>Chip</th><td>Up to 40% cheaper.</td></tr></table>
<noscript>Enable JavaScript</noscript>
<!-- a comment that is not content -->
</body></html>
"""


def test_html(tmp_path: Path) -> None:
    doc = load_file(_write(tmp_path, "news.html", HTML), "news.html")
    assert doc.kind == "html"
    assert doc.title == "Chip News"
    lines = doc.text.split("\n\n")
    assert lines[0] == "# Trainium chips"
    assert "## Costs" in lines
    assert "- Graviton" in lines and "- Inferentia, for inference" in lines
    assert "Amazon builds its own chips. It rents them out." in lines
    assert "Text that sits in a div without a paragraph." in lines
    assert "Up to 40% cheaper." in lines
    for gone in ("secret", "color", "Enable JavaScript", "comment", "Chip News"):
        assert gone not in doc.text
    spans = split_sentences(doc)
    assert [s.text for s in spans if s.is_heading] == ["Trainium chips", "Costs"]
    assert {s.heading for s in spans if s.text == "Up to 40% cheaper."} == {"Costs"}


def test_html_without_blocks_keeps_its_text(tmp_path: Path) -> None:
    doc = load_file(
        _write(tmp_path, "bare.htm", "<body>First line<br>Second line</body>"), "bare.htm"
    )
    assert doc.text.split() == ["First", "line", "Second", "line"]
    assert doc.title == "bare"


def test_html_in_a_legacy_encoding(tmp_path: Path) -> None:
    html = "<html><body><p>Le café est très bon, déjà célèbre.</p></body></html>"
    doc = load_file(_write(tmp_path, "fr.html", html.encode("cp1252")), "fr.html")
    assert doc.text == "Le café est très bon, déjà célèbre."


# -- PDF -----------------------------------------------------------------------------------


def test_pdf_pages_and_page_numbers(tmp_path: Path) -> None:
    pages = [
        ["Trainium chips are built in Austin.", "They train models (fast)."],
        [],
        ["Page three talks about cost.", "It is lower than GPUs."],
    ]
    path = _write(tmp_path, "report.pdf", make_pdf(pages, title="Chip Report"))
    doc = load_file(path, "report.pdf")
    assert doc.kind == "pdf"
    assert doc.title == "Chip Report"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    for page, lines in zip(doc.pages, pages, strict=True):
        assert doc.text[page.start : page.end].split() == " ".join(lines).split()
    assert "Trainium chips are built in Austin." in doc.text
    assert doc.page_at(doc.text.index("Austin")) == 1
    assert doc.page_at(doc.text.index("cost")) == 3
    assert doc.page_at(len(doc.text) + 10) is None
    for span in split_sentences(doc):
        number = doc.page_at(span.start)
        assert number in (1, 3)
        assert span.text in " ".join(
            doc.text[p.start : p.end] for p in doc.pages if p.number == number
        )


def test_pdf_title_defaults_to_the_file_name(tmp_path: Path) -> None:
    doc = load_file(_write(tmp_path, "untitled.pdf", make_pdf([["Hello there."]])), "untitled.pdf")
    assert doc.title == "untitled"


def test_pdf_without_a_text_layer_mentions_ocr(tmp_path: Path) -> None:
    path = _write(tmp_path, "scan.pdf", make_pdf([None, None]))
    with pytest.raises(LoadError, match="OCR") as info:
        load_file(path, "scan.pdf")
    assert "no text layer" in str(info.value)


@pytest.mark.parametrize(
    "data", [b"not a pdf at all", b"%PDF-1.4\n1 0 obj\n<<", PNG_HEADER], ids=["text", "cut", "png"]
)
def test_broken_pdf_is_a_load_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(LoadError, match=r"broken\.pdf"):
        load_file(_write(tmp_path, "broken.pdf", data), "broken.pdf")


# -- DOCX ----------------------------------------------------------------------------------


def test_docx(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "Quarterly Chips"
    document.add_heading("Overview", level=1)
    document.add_paragraph("Amazon builds chips. They are called Trainium.")
    document.add_paragraph("")
    document.add_heading("Details", level=2)
    document.add_paragraph("Trainium 3 is twice as fast.")
    document.save(str(tmp_path / "report.docx"))

    doc = load_file(tmp_path / "report.docx", "report.docx")
    assert doc.kind == "docx"
    assert doc.title == "Quarterly Chips"
    assert doc.text == (
        "# Overview\n\nAmazon builds chips. They are called Trainium.\n\n"
        "## Details\n\nTrainium 3 is twice as fast."
    )
    spans = split_sentences(doc)
    assert [s.text for s in spans if s.is_heading] == ["Overview", "Details"]
    assert {s.heading for s in spans if s.text.startswith("Trainium 3")} == {"Details"}


def test_docx_title_falls_back_to_the_first_heading(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Loose intro text.")
    document.add_heading("Real Title", level=1)
    document.save(str(tmp_path / "t.docx"))
    assert load_file(tmp_path / "t.docx", "t.docx").title == "Real Title"


def test_broken_docx_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="unreadable DOCX"):
        load_file(_write(tmp_path, "fake.docx", b"PK\x03\x04 not really a zip"), "fake.docx")


def test_an_image_is_read_only_with_ocr_on_for_images(tmp_path: Path) -> None:
    with pytest.raises(LoadError, match="RAG_OCR=all"):
        load_file(_write(tmp_path, "image.png", "plain words"), "image.png")
