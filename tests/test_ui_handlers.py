"""The web chat's handlers without a browser: rendering, upload safety, exposure
rules, and ChatService over a real index (sessions, citations, upload, remove)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rag.documents.loading import load_text
from rag.errors import IngestBusyError, InputError
from rag.index.ingest import ingest, ingest_lock
from rag.pipeline import build_pipeline
from rag.settings import Settings
from rag.types import Citation, Document, Page
from tests.helpers import ScriptedBackend
from ui.app import check_exposure
from ui.handlers import (
    BUNDLED_EXAMPLES,
    REFUSED_MARK,
    ChatService,
    Session,
    bundled_hashes,
    citation_label,
    example_questions,
    render_source,
    safe_upload_name,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("notes.md", "notes.md"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\evil.TXT", "evil.txt"),
        (".hidden.md", "hidden.md"),
        ("my report (final).pdf", "my report _final.pdf"),
        ("¿?.md", "upload.md"),
    ],
)
def test_safe_upload_name(name: str, expected: str) -> None:
    assert safe_upload_name(name) == expected


@pytest.mark.parametrize("name", ["tool.exe", "archive.tar.gz", "noext", "../.md"])
def test_safe_upload_name_refuses_unsupported_types(name: str) -> None:
    with pytest.raises(InputError, match="unsupported"):
        safe_upload_name(name)


def test_render_source_highlights_exactly_the_offsets_and_escapes_html() -> None:
    text = "<b>Intro</b> Alpha beta. Gamma & delta. Alpha beta."
    start = text.rindex("Alpha")
    citation = Citation(1, "doc.md", "Doc", None, "Alpha beta.", start, start + 11)
    html = render_source(load_text(text, "doc.md", title="Doc"), citation)
    assert '<mark id="rag-highlight">Alpha beta.</mark></pre>' in html  # the second one
    assert "&lt;b&gt;Intro&lt;/b&gt;" in html and "Gamma &amp; delta" in html
    assert html.count("<mark") == 1


def test_examples_come_from_the_setting_or_only_with_the_bundled_corpus() -> None:
    bundled = bundled_hashes()
    assert list(bundled) == ["trainium-article.md"]
    assert example_questions(None, bundled, bundled) == BUNDLED_EXAMPLES
    other = {"notes.md": "f00d"}
    assert example_questions(None, other, bundled) == []
    assert example_questions(None, {**bundled, **other}, bundled) == [], "not just the article"
    assert example_questions(None, {"trainium-article.md": "edited"}, bundled) == []
    assert example_questions(None, {}, {}) == []
    assert example_questions(["What is  Zorblax?", " "], other, bundled) == ["What is Zorblax?"]
    assert example_questions([], bundled, bundled) == [], "[] turns them off"


def test_exposure_rules() -> None:
    assert check_exposure("127.0.0.1", None, False) is None
    assert check_exposure("localhost", None, False) is None
    with pytest.raises(InputError, match="--auth"):
        check_exposure("0.0.0.0", None, False)
    assert check_exposure("0.0.0.0", None, True) is None
    assert check_exposure("0.0.0.0", "ann:secret", False) == ("ann", "secret")
    with pytest.raises(InputError, match="user:password"):
        check_exposure("0.0.0.0", "no-colon", False)


@pytest.fixture
def service(make_settings: Callable[..., Settings], embedder: Any) -> Iterator[ChatService]:
    settings = make_settings()
    ingest(settings, embedder=embedder)
    pipeline = build_pipeline(settings)
    yield ChatService(settings, pipeline)
    pipeline.close()


@pytest.mark.slow
def test_sessions_keep_separate_histories(service: ChatService) -> None:
    alice, bob = Session(), Session()
    list(service.respond("Which subsidiary develops Amazon's AI chips?", alice))
    *_, (markdown, answer) = service.respond("Where is it based?", alice)
    assert "Austin" in markdown and not answer.refused
    assert len(alice.conversation.turns) == 2
    assert bob.conversation.turns == []
    list(service.respond("How much does a Trainium 3 chip cost?", bob))
    assert len(bob.conversation.turns) == 1 and len(alice.conversation.turns) == 2


@pytest.mark.slow
def test_citation_opens_the_highlighted_source(service: ChatService) -> None:
    session = Session()
    *_, (markdown, answer) = service.respond("When did Amazon buy Annapurna Labs?", session)
    assert "**[1]**" in markdown
    labels = service.citation_choices(session)
    assert labels and labels[0].startswith("[1] trainium-article.md")
    html = service.open_citation(labels[0], session)
    citation = answer.citations[0]
    assert f'<mark id="rag-highlight">{citation.quote}</mark>' in html
    assert service.open_citation(None, session) == ""


@pytest.mark.slow
def test_refusal_is_rendered_distinctly(service: ChatService) -> None:
    *_, (markdown, answer) = service.respond("Who is the CEO of Annapurna Labs?", Session())
    assert answer.refused
    assert markdown.startswith(REFUSED_MARK) and "documents don't say" in markdown
    # Drawn, not a glyph: nothing in it needs an emoji font.
    assert all(ord(ch) < 0x2190 for ch in markdown), "no symbol or emoji characters"


@pytest.mark.slow
def test_examples_follow_what_the_index_holds(service: ChatService, tmp_path: Path) -> None:
    assert service.examples() == BUNDLED_EXAMPLES
    upload = tmp_path / "zorblax.md"
    upload.write_text("# Zorblax\n\nThe Zorblax 9 widget was invented in Lisbon in 1987.\n")
    service.upload([str(upload)])
    assert service.examples() == [], "the article's questions only over the article alone"


@pytest.mark.slow
def test_upload_then_ask_then_remove(service: ChatService, tmp_path: Path) -> None:
    upload = tmp_path / "zorblax notes.md"
    upload.write_text("# Zorblax\n\nThe Zorblax 9 widget was invented in Lisbon in 1987.\n")
    steps: list[float] = []
    status = service.upload([str(upload)], progress=lambda f, d: steps.append(f))
    assert "1 new" in status and steps and steps[-1] == 1.0
    saved = service.settings.uploads_dir / "zorblax notes.md"
    assert saved.is_file()
    assert "zorblax notes.md" in service.sources()
    *_, (markdown, answer) = service.respond("Where was the Zorblax 9 invented?", Session())
    assert "Lisbon" in markdown
    assert answer.citations[0].source == "zorblax notes.md"
    assert "Removed" in service.remove("zorblax notes.md")
    assert "zorblax notes.md" not in service.sources()
    assert not saved.exists()


@pytest.mark.slow
def test_upload_while_another_ingest_runs_says_so(service: ChatService, tmp_path: Path) -> None:
    upload = tmp_path / "a.txt"
    upload.write_text("Some text that would be indexed.")
    with ingest_lock(service.settings.data_dir), pytest.raises(IngestBusyError, match="running"):
        service.upload([str(upload)])


@pytest.mark.slow
def test_cli_ingest_elsewhere_becomes_searchable_without_restart(
    service: ChatService, tmp_path: Path, embedder: Any
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "quux.md").write_text("The Quux reactor runs on seawater and sunlight.\n")
    ingest(service.settings, [extra], embedder=embedder)  # as `rag ingest` would
    *_, (markdown, _answer) = service.respond("What does the Quux reactor run on?", Session())
    assert "seawater" in markdown


@pytest.mark.slow
def test_llm_answers_stream_verified_sentences_into_the_chat(
    service: ChatService, scripted_generator: Callable[[str], ScriptedBackend]
) -> None:
    scripted_generator(
        "Annapurna Labs is in Austin, Texas [1]. Its CEO is Jane Roe [1]. "
        "Amazon bought Annapurna Labs in 2015 [2]."
    )
    session = Session()
    frames = list(service.respond("Where is Annapurna Labs based?", session,
                                  generator="scripted"))  # fmt: skip
    markdowns = [markdown for markdown, _ in frames]
    assert "Austin" in markdowns[0] and "2015" not in markdowns[0]  # one sentence first
    final = frames[-1][1]
    assert final.generator == "scripted"
    assert "Jane Roe" not in markdowns[-1]
    assert [d.text for d in final.dropped] == ["Its CEO is Jane Roe."]
    assert service.citation_choices(session), "the sources panel gets the citations"


def test_an_ocr_citation_shows_its_page_under_the_ocr_mark() -> None:
    text = "Typed first page.\n\nScanned page says 42 bar.\n\nTyped third page."
    second = text.index("Scanned")
    pages = (Page(1, 0, 17), Page(2, second, second + 25, ocr=True),
             Page(3, second + 27, len(text)))  # fmt: skip
    doc = Document("r.pdf", "", "Report", text, "h", "pdf", pages)
    quote = "Scanned page says 42 bar."
    citation = Citation(1, "r.pdf", "Report", 2, quote, second, second + 25, ocr=True)
    html = render_source(doc, citation)
    assert 'class="rag-ocr-mark"' in html and "page 2" in html
    assert f'<mark id="rag-highlight">{quote}</mark>' in html
    assert "Typed first page" not in html and "Typed third page" not in html
    assert citation_label(citation).startswith("[1] r.pdf, p. 2 (OCR): ")
    typed = Citation(1, "r.pdf", "Report", 1, "Typed first page.", 0, 17)
    assert "rag-ocr-mark" not in render_source(doc, typed) and "(OCR)" not in citation_label(typed)


@pytest.mark.slow
def test_one_bad_upload_gets_its_message_and_the_rest_is_indexed(
    service: ChatService, tmp_path: Path
) -> None:
    good = tmp_path / "quasar.md"
    good.write_text("# Quasar\n\nThe Quasar 7 kettle boils a litre in 90 seconds.\n")
    big = tmp_path / "big.txt"
    big.write_bytes(b"x " * int(service.settings.ui_max_upload_mb * 600_000))
    odd = tmp_path / "tool.exe"
    odd.write_bytes(b"MZ")
    steps: list[str] = []
    status = service.upload([str(big), str(odd), str(good)], progress=lambda f, d: steps.append(d))
    assert status.startswith("Indexed 1 new")
    assert "big.txt is larger than" in status and "tool.exe: unsupported file type" in status
    assert "quasar.md" in service.sources()
    with pytest.raises(InputError, match=r"Nothing was indexed: big\.txt is larger"):
        service.upload([str(big)])
