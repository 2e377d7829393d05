"""End-to-end: the real web chat (``rag ui`` as a subprocess) driven by Playwright in
Debian's chromium. Needs /usr/bin/chromium (``make test`` and ``.ci/run`` install it)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from rag.index.ingest import ingest
from rag.pipeline import build_pipeline
from tests.helpers import free_port, isolated_settings, scanned_pdf, serving
from ui.handlers import BUNDLED_EXAMPLES

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parent.parent
BROWSER_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]  # fmt: skip


@contextmanager
def serve(
    tmp_path_factory: pytest.TempPathFactory,
    model_cache_dir: Path,
    embedder: Any,
    corpus: list[Path] | None = None,
    data_dir: Path | None = None,
) -> Iterator[str]:
    """``rag ui`` over a fresh index of ``corpus`` (default: the bundled article), in
    ``data_dir`` (default: a new temporary one)."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium (make test does)")
    config = str(tmp_path_factory.getbasetemp() / "no-config.toml")
    data_dir = data_dir or tmp_path_factory.mktemp("ui-data")
    settings = isolated_settings(
        tmp_path_factory.getbasetemp(), data_dir=data_dir, cache_dir=model_cache_dir
    )
    ingest(settings, corpus, embedder=embedder)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CACHE_DIR=str(model_cache_dir), RAG_CONFIG=config)
    log = tmp_path_factory.mktemp("ui-log") / "ui.log"
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "rag", "--data-dir", str(data_dir), "ui", "--port", str(port)]
    with serving(command, log, url, timeout=90, env=env, cwd=REPO):
        yield url


@pytest.fixture(scope="module")
def app_url(
    tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> Iterator[str]:
    with serve(tmp_path_factory, model_cache_dir, embedder) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        yield launched
        launched.close()


BOT = '#rag-chat [data-testid="bot"]'
USER = '#rag-chat [data-testid="user"]'


def ask(page: Any, question: str | None) -> None:
    """Ask ``question`` (None: whatever the question box holds) and wait for the answer."""
    before = page.locator(BOT).count()
    if question is not None:
        page.locator("#rag-question textarea").fill(question)
    page.locator("#rag-ask").click()
    page.wait_for_function(
        "([sel, n]) => document.querySelectorAll(sel).length > n", arg=[BOT, before]
    )
    # Streaming is done when the question box has been cleared and the text is stable.
    previous = None
    for _ in range(50):
        text = last_answer(page)
        if text and text == previous:
            return
        previous = text
        page.wait_for_timeout(200)


def last_answer(page: Any) -> str:
    return str(page.locator(BOT).last.inner_text())


def test_question_citation_and_highlight(browser: Any, app_url: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    ask(page, "How big is Trainium 3?")
    assert "credit card" in last_answer(page)
    assert "[1]" in last_answer(page)
    option = page.locator("#rag-citations label").filter(has_text="credit card")
    option.click()
    highlight = page.locator("#rag-highlight")
    highlight.wait_for()
    assert highlight.inner_text() == "It is smaller than a credit card."
    page.wait_for_timeout(300)
    if os.environ.get("UPDATE_SCREENSHOT"):
        page.screenshot(path=str(REPO / "docs" / "screenshot.png"))
    # The follow-up uses the conversation.
    ask(page, "Which subsidiary develops Amazon's AI chips?")
    ask(page, "Where is it based?")
    assert "Austin" in last_answer(page)
    page.close()


def test_unanswerable_question_is_refused_with_a_mark_that_needs_no_font(
    browser: Any, app_url: str
) -> None:
    page = browser.new_page()
    page.goto(app_url)
    ask(page, "Who is the CEO of Annapurna Labs?")
    assert "The documents don't say" in last_answer(page)
    # The mark is drawn (an emoji was an empty box without an emoji font): it is there,
    # has its shapes and a size, and sits on the line of the refusal sentence.
    message = page.locator(BOT).last
    mark = message.locator("svg.rag-refused-mark")
    assert mark.locator("circle, line").count() == 2
    box, words = mark.bounding_box(), message.locator("strong").first.bounding_box()
    assert box and words and box["width"] >= 12 and box["height"] >= 12
    assert abs((box["y"] + box["height"] / 2) - (words["y"] + words["height"] / 2)) < 8
    assert box["x"] + box["width"] <= words["x"], "before the words, on the same line"
    assert all(ord(ch) < 0x2190 for ch in last_answer(page)), "no symbol or emoji glyphs"
    page.close()


def test_documents_table_shows_every_column_at_the_default_window_size(
    browser: Any, app_url: str
) -> None:
    page = browser.new_page()  # Playwright's default window, 1280 x 720
    page.goto(app_url)
    page.locator("#rag-documents").get_by_text("Documents").first.click()
    table = page.locator("#rag-doc-table")
    source = table.get_by_text("trainium-article.md").filter(visible=True).first
    source.wait_for()
    frame = table.bounding_box()
    assert frame is not None
    cells = {
        name: table.get_by_text(name, exact=True).first for name in ("title", "source", "chunks")
    }
    for name, cell in {**cells, "a source": source}.items():
        box = cell.bounding_box()
        assert box is not None, name
        right = frame["x"] + frame["width"]
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= right, f"{name} is cut off"
    page.close()


def test_example_questions_match_the_bundled_article(browser: Any, app_url: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(app_url)
    page.locator("#rag-examples").get_by_text("Where is Annapurna Labs based?").click()
    # Clicking fills the question box through a round trip to the server.
    expect(page.locator("#rag-question textarea")).to_have_value("Where is Annapurna Labs based?")
    ask(page, None)
    assert "Austin" in last_answer(page)
    page.close()


# What each example question was chosen to show: the answer's words, or a refusal.
EXAMPLE_ANSWERS = {
    "What are Amazon's AI chips called?": "Trainium",
    "How much cheaper could Trainium 3 make AI models?": "40%",
    "Where is Annapurna Labs based?": "Austin",
    "Does Amazon sell its chips?": "does not sell",
    "How much does a Trainium 3 chip cost?": "The documents don't say",
}


def test_every_example_question_gets_the_answer_it_was_chosen_to_show(
    browser: Any, app_url: str
) -> None:
    from playwright.sync_api import expect

    assert set(EXAMPLE_ANSWERS) == set(BUNDLED_EXAMPLES)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    for question, shown in EXAMPLE_ANSWERS.items():
        page.locator("#rag-examples").get_by_text(question, exact=True).click()
        expect(page.locator("#rag-question textarea")).to_have_value(question)
        ask(page, None)
        answer = last_answer(page)
        assert shown in answer, f"{question!r} -> {answer!r}"
        if shown != "The documents don't say":
            assert "The documents don't say" not in answer, question
            # The answer leads with the answer: one or two quotes, not a list of them.
            assert "[3]" not in answer, f"{question!r} -> {answer!r}"
    page.close()


def test_no_example_questions_over_other_documents(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> None:
    folder = tmp_path_factory.mktemp("other-corpus")
    (folder / "pumps.md").write_text("# Pumps\n\nThe Orion-5 pump was released in 2019.\n")
    with serve(tmp_path_factory, model_cache_dir, embedder, [folder]) as url:
        page = browser.new_page()
        page.goto(url)
        page.locator("#rag-question textarea").wait_for()
        assert page.locator("#rag-examples").count() == 0
        assert page.get_by_text("Where is Annapurna Labs based?").count() == 0
        ask(page, "When was the Orion-5 pump released?")
        assert "2019" in last_answer(page)
        page.close()


def test_upload_a_file_and_ask_about_it(browser: Any, app_url: str, tmp_path: Path) -> None:
    note = tmp_path / "zorblax.md"
    note.write_text("# Zorblax\n\nThe Zorblax 9 widget was invented in Lisbon in 1987.\n")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url)
    page.locator("#rag-documents").get_by_text("Documents").first.click()
    page.locator("#rag-upload input[type=file]").set_input_files(str(note))
    page.wait_for_timeout(500)
    page.locator("#rag-add").click()
    page.locator("#rag-status").get_by_text("Indexed").wait_for(timeout=120_000)
    assert page.locator("#rag-doc-table").get_by_text("zorblax.md").count() >= 1
    ask(page, "Where was the Zorblax 9 invented?")
    assert "Lisbon" in last_answer(page)
    page.close()


def test_an_ocr_quote_is_marked_and_opens_its_page_under_the_ocr_mark(
    browser: Any, tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> None:
    folder = tmp_path_factory.mktemp("scans")
    scanned_pdf(folder / "council.pdf", [
        ["Maintenance. The Orvane pump must be serviced every 400 operating hours."],
        ["Public meeting. The council will hold a public meeting about the new ferry "
         "terminal on 27 April at the Memorial Hall."],
    ])  # fmt: skip
    with serve(tmp_path_factory, model_cache_dir, embedder, corpus=[folder]) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        ask(page, "When is the public meeting about the ferry terminal?")
        assert "27 April" in last_answer(page)
        option = page.locator("#rag-citations label").filter(has_text="(OCR)").first
        assert "council.pdf, p. 2 (OCR)" in option.inner_text()
        option.click()
        mark = page.locator(".rag-ocr-mark")
        mark.wait_for()
        assert "OCR" in mark.inner_text() and "page 2" in mark.inner_text()
        assert "27 April" in page.locator("#rag-highlight").inner_text()
        # The panel holds the OCR text of page 2 only, not the whole scan.
        assert "Orvane" not in page.locator(".rag-source-text").inner_text()
        page.close()


def _opening(answer: str) -> str:
    """The start of an answer, before any citation marker or note the chat adds."""
    return answer.strip().split("\n")[0].split(" [")[0][:40]


def test_two_browser_contexts_do_not_share_history(
    browser: Any, app_url: str, tmp_path: Path, model_cache_dir: Path, embedder: Any
) -> None:
    earlier = "Which subsidiary develops Amazon's AI chips?"
    vague = "When was it bought?"
    # The same question answered in-process over the same corpus, with and without the
    # other session's question as history: the two must differ, or a leak would hide.
    settings = isolated_settings(tmp_path, data_dir=tmp_path / "data", cache_dir=model_cache_dir)
    ingest(settings, embedder=embedder)
    pipeline = build_pipeline(settings)
    try:
        alone = _opening(pipeline.ask(vague).answer)
        leaked = _opening(pipeline.ask(vague, [earlier]).answer)
    finally:
        pipeline.close()
    assert alone != leaked
    first = browser.new_context().new_page()
    second = browser.new_context().new_page()
    first.goto(app_url)
    second.goto(app_url)
    ask(first, earlier)
    # In the second session "it" has no antecedent: it must not borrow the first's.
    ask(second, vague)
    second_text = second.locator("#rag-chat").inner_text()
    assert "Which subsidiary" not in second_text
    # The answer opens as the history-free one does (the leaked one opens otherwise).
    assert _opening(last_answer(second)) == alone
    assert first.locator(USER).count() == 1 and first.locator(BOT).count() == 1
    assert second.locator(USER).count() == 1
    first.context.close()
    second.context.close()
