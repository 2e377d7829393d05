"""``rag feedback``: what ratings become as eval cases (unit tests over hand-made records
and in-memory documents), the suite file and documents it writes, the list / show /
purge / export commands over a real SQLite store, the anchor rate of the labelled
corrections, and one end-to-end run: real answers rated, exported, and run by
``rag eval``, whose gate fails on the case that must fail."""

from __future__ import annotations

import json
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evals.feedback_anchor import MAX_PLACES, Anchorer, anchor_rate
from evals.feedback_export import CHANGED_TAG, ExportReport, build_export
from evals.feedback_suite import MARKER, THRESHOLDS, docs_folder, file_names, write_export
from evals.metrics import CorpusFacts, score_case
from evals.schema import load_suite
from rag.cli import main
from rag.documents.loading import content_hash, load_text
from rag.errors import InputError
from rag.feedback.record import FeedbackRecord, Picked
from rag.feedback.store import open_feedback_store
from rag.settings import Settings
from rag.types import Document

REPO = Path(__file__).resolve().parent.parent

ARTICLE = (
    "# Chips\n\n"
    "Amazon bought Annapurna Labs in 2015. The lab is in Austin, Texas.\n"
    "Amazon makes chips called Trainium. Amazon rents them out. Amazon sells none.\n\n"
    "Amazon says the chips are “twice as fast” as before.\n"
)
NOTES = "Notes\n\nThe Bedrock platform lists models from Anthropic and OpenAI.\n"
REPORT = "Quarterly report\n\nRevenue grew by 12% in the third quarter.\n"


def documents(article: str = ARTICLE) -> dict[str, Document]:
    report = Document("q3/report.pdf", "", "Report", REPORT, content_hash(REPORT), "pdf")
    docs = [load_text(article, "article.md", kind="md"), load_text(NOTES, "notes.txt"), report]
    return {d.source: d for d in docs}


def cite(source: str, quote: str, number: int = 1, docs: dict[str, Document] | None = None
         ) -> dict[str, Any]:  # fmt: skip
    text = (docs or documents())[source].text
    start = text.index(quote)
    return {"id": number, "source": source, "title": "", "page": None, "quote": quote,
            "start": start, "end": start + len(quote)}  # fmt: skip


def answer(*citations: dict[str, Any], refused: bool = False, order: list[int] | None = None
           ) -> dict[str, Any]:  # fmt: skip
    """An answer JSON as ``rag ask --json`` returns it: one sentence per citation, in
    ``order`` of citation ids (default: as given)."""
    by_id = {c["id"]: c for c in citations}
    ids = order or [c["id"] for c in citations]
    sentences = [{"text": by_id[i]["quote"], "citations": [i]} for i in ids]
    text = "The documents do not say." if refused else " ".join(s["text"] for s in sentences)
    return {"question": "", "answer": text, "refused": refused, "sentences": sentences,
            "citations": list(citations), "evidence": [], "dropped": [], "generator": "test",
            "timings_ms": {}, "fallback": False}  # fmt: skip


def record(
    rid: str, question: str, given: dict[str, Any], rating: str = "down", *,
    correction: str = "", should_refuse: bool | None = None, picked: Picked | None = None,
    rated: dict[str, str] | None = None, day: int = 1,
) -> FeedbackRecord:  # fmt: skip
    docs = documents()
    hashes = {c["source"]: docs[c["source"]].content_hash for c in given["citations"]}
    if picked:
        hashes[picked.source] = docs[picked.source].content_hash
    return FeedbackRecord(
        id=rid, created_at=f"2025-03-{day:02d}T10:00:00+00:00", question=question, history=(),
        answer=given, rating=rating, correction=correction, should_refuse=should_refuse,
        picked=picked, documents=rated if rated is not None else hashes,
    )  # fmt: skip


def pick(source: str, quote: str) -> Picked:
    c = cite(source, quote)
    return Picked(source, c["start"], c["end"], quote)


def only_case(report: ExportReport) -> Any:
    assert len(report.cases) == 1, report.to_json()
    return report.cases[0]


WRONG = answer(cite("article.md", "Amazon rents them out."))


# -- the rules ---------------------------------------------------------------------------


def test_a_picked_sentence_becomes_an_answerable_case_with_its_quote() -> None:
    quote = "Amazon bought Annapurna Labs in 2015."
    rec = record("r1", "When was Annapurna bought?", WRONG, picked=pick("article.md", quote))
    case = only_case(build_export([rec], documents()))
    assert (case.kind, case.expected, case.expected_quote) == ("answerable", (quote,), (quote,))
    assert case.document == "article.md" and case.id == "fb-r1" and not case.changed


def test_a_correction_found_in_the_documents_becomes_their_text() -> None:
    rec = record("r1", "Where is the lab?", WRONG, correction="no, it's austin texas")
    case = only_case(build_export([rec], documents()))
    assert case.expected == ("Austin, Texas",)  # the document's words, not the user's
    assert case.expected_quote == ("The lab is in Austin, Texas.",)
    assert case.document == "article.md" and "found (normalised)" in case.origin
    typo = record("r2", "Which platform?", WRONG, correction="the bedrock platfrom")
    assert only_case(build_export([typo], documents())).expected == ("The Bedrock platform",)
    quotes = record("r3", "How fast?", WRONG, correction='"Twice as fast"')
    assert only_case(build_export([quotes], documents())).expected == ("twice as fast",)


def test_a_correction_the_documents_do_not_state_is_left_out_with_the_reason() -> None:
    paraphrase = record("r1", "When?", WRONG, correction="Amazon purchased it back in 2015")
    elsewhere = record("r2", "Who runs AWS?", WRONG, correction="Matt Garman")
    report = build_export([paraphrase, elsewhere], documents())
    assert not report.cases and not report.review
    assert [s.record_ids for s in report.skipped] == [("r1",), ("r2",)]
    assert all("not in the documents" in s.reason for s in report.skipped)
    assert "'Matt Garman'" in report.skipped[1].reason


@pytest.mark.parametrize(
    ("typed", "why"),
    [("no", "too short"), ("it is the one", "only stop words"), ("Amazon", "too common")],
)
def test_short_stop_word_and_common_corrections_are_not_anchored(typed: str, why: str) -> None:
    rec = record("r1", "Who makes Trainium?", WRONG, correction=typed)
    report = build_export([rec], documents())
    assert not report.cases
    assert why in report.skipped[0].reason
    if why == "too common":
        assert f"5 places of the documents (more than {MAX_PLACES})" in report.skipped[0].reason


def test_anchoring_needs_whole_words_and_never_tolerates_a_wrong_number() -> None:
    anchorer = Anchorer(documents())
    assert not anchorer.anchor("201").anchored  # inside "2015"
    assert not anchorer.anchor("bought Annapurna Labs in 2016").anchored
    assert anchorer.anchor("Revenue grew by 12%").places[0].source == "q3/report.pdf"


def test_documents_dont_say_this_becomes_an_unanswerable_case() -> None:
    rec = record("r1", "Who is the CEO?", WRONG, should_refuse=True)
    case = only_case(build_export([rec], documents()))
    assert case.kind == "unanswerable" and not case.expected and case.document is None


def test_a_thumbs_up_on_a_refusal_becomes_an_unanswerable_case() -> None:
    rec = record("r1", "Who is the CEO?", answer(refused=True), "up")
    case = only_case(build_export([rec], documents()))
    assert case.kind == "unanswerable" and "thumbs-up on a refusal" in case.origin


@pytest.mark.parametrize("refused", [False, True])
def test_a_bare_thumbs_down_is_listed_for_review_not_exported(refused: bool) -> None:
    given = answer(refused=True) if refused else WRONG
    report = build_export([record("r1", "Why?", given)], documents())
    assert not report.cases and not report.skipped
    assert report.review[0].record_ids == ("r1",) and "thumbs-down" in report.review[0].reason


def test_a_rating_that_contradicts_itself_is_for_review() -> None:
    rec = record("r1", "Where?", WRONG, should_refuse=True, correction="Austin, Texas")
    report = build_export([rec], documents())
    assert not report.cases and "also gives the answer" in report.review[0].reason


def test_a_thumbs_up_is_a_regression_case_only_with_include_up() -> None:
    first, second = "Amazon sells none.", "Amazon makes chips called Trainium."
    # Cited as [1] second, [2] first, but the answer's first sentence quotes [2].
    given = answer(cite("article.md", second, 1), cite("article.md", first, 2), order=[2, 1])
    rec = record("r1", "Does Amazon sell chips?", given, "up")
    report = build_export([rec], documents())
    assert not report.cases and "--include-up" in report.skipped[0].reason
    case = only_case(build_export([rec], documents(), include_up=True))
    assert case.expected == case.expected_quote == (first,) and case.kind == "answerable"


def test_the_regression_fact_works_with_the_lead_two_rule() -> None:
    """An expected fact equal to the first quoted sentence passes while that sentence is
    within the first two quotes, and fails once it is pushed to the third."""
    sentences = ("Amazon sells none.", "Amazon rents them out.", "The lab is in Austin, Texas.")
    texts = [("article.md", q) for q in sentences]
    rec = record("r1", "Does Amazon sell chips?", answer(cite(*texts[0])), "up")
    case = load_suite_case(only_case(build_export([rec], documents(), include_up=True)))
    docs = {s: d.text for s, d in documents().items()}
    facts = CorpusFacts(list(docs.values()))

    def scored(order: list[int]) -> Any:
        cited = [cite(source, q, i + 1) for i, (source, q) in enumerate(texts)]
        return score_case(case, answer(*cited, order=order), 0.0, docs, facts)

    assert scored([1, 2, 3]).correct and scored([2, 1, 3]).correct
    late = scored([2, 3, 1])
    assert not late.correct and "only after the first 2 quotes" in late.reasons[0]


def load_suite_case(case: Any) -> Any:
    from evals.schema import Case

    groups = tuple((fact,) for fact in case.expected)
    return Case(
        case.id, case.kind, case.question, expected=groups, expected_quote=case.expected_quote
    )


def test_conflicting_ratings_are_reported_not_merged() -> None:
    question = "Does Amazon rent its chips?"
    up, down = record("r1", question, WRONG, "up"), record("r2", question, WRONG, day=2)
    report = build_export([up, down], documents(), include_up=True)
    assert not report.cases and len(report.conflicts) == 1
    assert report.conflicts[0].record_ids == ("r1", "r2")
    assert "rated right (r1) and wrong (r2)" in report.conflicts[0].reason

    two = [record("r3", "Where?", WRONG, correction="Austin, Texas"),
           record("r4", "Where?", WRONG, correction="Annapurna Labs", day=2)]  # fmt: skip
    assert "different answers given" in build_export(two, documents()).conflicts[0].reason
    refuse = [record("r5", "Where?", WRONG, should_refuse=True),
              record("r6", "Where?", WRONG, correction="Austin, Texas")]  # fmt: skip
    assert "don't say this" in build_export(refuse, documents()).conflicts[0].reason


def test_agreeing_ratings_make_one_case_that_lists_them_all() -> None:
    bare = record("r1", "Where is the lab?", WRONG)
    corrected = record("r2", "where is  the lab?", WRONG, correction="Austin", day=2)
    longer = record("r3", "Where is the lab?", WRONG, correction="in Austin, Texas", day=3)
    case = only_case(build_export([bare, corrected, longer], documents()))
    assert case.record_ids == ("r1", "r2", "r3") and case.expected == ("Austin",)


def test_a_case_whose_document_changed_is_flagged() -> None:
    quote = "Amazon bought Annapurna Labs in 2015."
    rec = record("r1", "When?", WRONG, picked=pick("article.md", quote))
    changed = documents(ARTICLE.replace("Amazon says", "Amazon claims"))
    report = build_export([rec], changed)
    case = only_case(report)
    assert case.changed == ("article.md",)
    (flag,) = report.changed
    before, now = documents()["article.md"].content_hash, changed["article.md"].content_hash
    assert (flag.case_id, flag.rated, flag.now) == ("fb-r1", before, now)

    gone = documents(ARTICLE.replace(quote, "Amazon bought a lab."))
    report = build_export([rec], gone)
    assert not report.cases and "no longer in 'article.md'" in report.skipped[0].reason


# -- the suite file and its documents -----------------------------------------------------


def mixed_report() -> tuple[ExportReport, dict[str, Document]]:
    docs = documents()
    records = [
        record(
            "r1",
            "When?",
            WRONG,
            picked=pick("article.md", "The lab is in Austin, Texas."),
            rated={"article.md": "0" * 64},
        ),
        record("r2", "Who is the CEO?", WRONG, should_refuse=True, day=2),
        record("r3", "Why?", WRONG, day=3),
        record("r4", "Who runs AWS?", WRONG, correction="Matt Garman", day=4),
    ]
    return build_export(records, docs), docs


def test_the_export_writes_a_suite_and_the_text_of_its_documents(tmp_path: Path) -> None:
    report, docs = mixed_report()
    out = tmp_path / "out" / "fb.yaml"
    written = write_export(report, docs, out, force=False, today="2025-03-09")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Exported from feedback by `rag feedback export` on 2025-03-09.")
    assert "REVIEW BEFORE COMMITTING" in text and "# FLAGGED: article.md changed" in text
    assert "#   r3: 'Why?': thumbs-down" in text and "#   r4: 'Who runs AWS?'" in text
    suite = load_suite(out)
    assert suite.corpus == [(tmp_path / "out" / "fb_docs").resolve()]
    assert suite.thresholds == THRESHOLDS
    picked, refuse = suite.cases
    assert picked.expected == (("The lab is in Austin, Texas.",),) and picked.tags == (CHANGED_TAG,)
    assert picked.document == "article.md" and refuse.should_refuse is True
    # An unanswerable case needs every document; a PDF's text is written as .txt.
    assert written.files == {"article.md": "article.md", "notes.txt": "notes.txt",
                             "q3/report.pdf": "q3/report.pdf.txt"}  # fmt: skip
    folder = docs_folder(out)
    assert (folder / "q3" / "report.pdf.txt").read_text(encoding="utf-8") == REPORT
    assert (folder / "article.md").read_bytes() == ARTICLE.encode("utf-8")
    assert (folder / MARKER).exists()


def test_without_unanswerable_cases_only_the_cases_documents_are_written(tmp_path: Path) -> None:
    rec = record("r1", "Which platform?", WRONG, correction="Bedrock platform")
    written = write_export(build_export([rec], documents()), documents(), tmp_path / "s.yaml",
                           force=False, today="2025-03-09")  # fmt: skip
    assert written.files == {"notes.txt": "notes.txt"}


def test_source_names_are_made_safe_and_unique() -> None:
    docs = [load_text("a", "../../etc/x.md", kind="md"), load_text("b", "X.md", kind="md"),
            load_text("c", "we?ird:name.txt")]  # fmt: skip
    assert file_names(docs) == {"../../etc/x.md": "etc/x.md", "X.md": "X.md",
                                "we?ird:name.txt": "we_ird_name.txt"}  # fmt: skip
    clash = [load_text("a", "a.md", kind="md"), load_text("b", "A.md", kind="md")]
    assert sorted(file_names(clash).values()) == ["A.md", "a-2.md"]


def test_an_existing_suite_needs_force_and_a_foreign_folder_is_kept(tmp_path: Path) -> None:
    report, docs = mixed_report()
    out = tmp_path / "fb.yaml"
    write_export(report, docs, out, force=False, today="2025-03-09")
    with pytest.raises(InputError, match="pass --force"):
        write_export(report, docs, out, force=False, today="2025-03-09")
    write_export(report, docs, out, force=True, today="2025-03-10")
    assert "on 2025-03-10" in out.read_text(encoding="utf-8")
    mine = tmp_path / "mine.yaml"
    docs_folder(mine).mkdir()
    (docs_folder(mine) / "precious.md").write_text("keep me")
    with pytest.raises(InputError, match="not written by rag feedback export"):
        write_export(report, docs, mine, force=True, today="2025-03-09")
    assert (docs_folder(mine) / "precious.md").exists()


def test_an_unwritable_output_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    report, docs = mixed_report()
    with pytest.raises(InputError, match=r"Cannot write .* choose another -o"):
        write_export(report, docs, tmp_path / "file" / "fb.yaml", force=False, today="2025")


# -- the commands -------------------------------------------------------------------------


def rag(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
        ) -> tuple[int, str, str]:  # fmt: skip
    """Run ``rag ARGS`` in-process through the real entry point (exit codes included)."""
    monkeypatch.setattr(sys, "argv", ["rag", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def stored(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings()
    store = open_feedback_store(settings)
    try:
        store.add(record("aaaa1111", "Where is the lab?", WRONG, correction="Austin, Texas"))
        store.add(record("bbbb2222", "Who is the CEO?", WRONG, should_refuse=True, day=5))
    finally:
        store.close()
    return settings


def test_list_show_and_purge(stored: Settings, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    data = ["--data-dir", str(stored.data_dir), "feedback"]
    code, out, _ = rag(monkeypatch, capsys, *data, "list")
    assert code == 0 and out.splitlines()[0].startswith("ID")
    assert "aaaa1111" in out and "corrected" in out and "docs don't say" in out
    code, out, _ = rag(monkeypatch, capsys, *data, "list", "--json", "--since", "2025-03-03")
    assert [r["id"] for r in json.loads(out)] == ["bbbb2222"]
    code, out, _ = rag(monkeypatch, capsys, *data, "show", "aaaa")  # a unique prefix
    assert code == 0 and "correction" in out and "Austin, Texas" in out
    code, out, _ = rag(monkeypatch, capsys, *data, "show", "bbbb2222", "--json")
    assert json.loads(out)["should_refuse"] is True
    code, _, err = rag(monkeypatch, capsys, *data, "show", "nope")
    assert code == 1 and "No rating with id 'nope'" in err and "rag feedback list" in err
    code, out, _ = rag(monkeypatch, capsys, *data, "purge", "--before", "2025-03-02", "--yes")
    assert code == 0 and "Removed 1 rating(s)" in out
    code, out, _ = rag(monkeypatch, capsys, *data, "purge", "--yes", "--json")
    assert json.loads(out)["removed"] == 1
    code, out, _ = rag(monkeypatch, capsys, *data, "list")
    assert code == 0 and out.startswith("No ratings in") and "rag ui" in out


def test_usage_and_empty_store_errors(make_settings: Callable[..., Settings], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    data = ["--data-dir", str(make_settings().data_dir), "feedback"]
    code, _, err = rag(monkeypatch, capsys, *data, "purge", "--before", "last week")
    assert code == 2 and "'last week' is not an ISO date" in err
    code, _, err = rag(monkeypatch, capsys, *data, "export", "-o", str(tmp_path / "s.yaml"))
    assert code == 1 and "No ratings in" in err and "nothing to export" in err
    code, _, err = rag(monkeypatch, capsys, *data, "export")
    assert code == 2 and "-o" in err


def test_the_command_is_a_rag_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    commands = project["project"]["entry-points"]["rag.commands"]
    assert commands["feedback"] == "evals.feedback_cli:feedback"


# -- the anchor rate ----------------------------------------------------------------------


def test_the_anchor_rate_of_the_labelled_corrections(capsys: pytest.CaptureFixture[str]) -> None:
    rows = anchor_rate(REPO / "evals" / "feedback" / "corrections.yaml")
    anchored = sum(r.anchor.anchored for r in rows)
    agree = sum(r.agrees for r in rows)
    with capsys.disabled():
        print(f"\nanchor rate {anchored}/{len(rows)}, agrees with the labels {agree}/{len(rows)}")
    assert len(rows) >= 30
    # Never invent: nothing the writer judged unanchorable is anchored.
    assert not [r.correction for r in rows if r.anchor.anchored and not r.should_anchor]
    assert agree / len(rows) >= 0.9


# -- end to end: real answers, rated, exported, run by rag eval ---------------------------


@pytest.mark.slow
def test_rated_answers_export_to_a_suite_whose_gate_works(
    tmp_path: Path, model_cache_dir: Path, embedder: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from rag.feedback.record import Feedback, check
    from rag.index.ingest import ingest
    from rag.pipeline import build_pipeline
    from tests.helpers import CORPUS, isolated_settings

    settings = isolated_settings(tmp_path, data_dir=tmp_path / "data", cache_dir=model_cache_dir)
    ingest(settings, [CORPUS], embedder=embedder)
    pipeline = build_pipeline(settings)
    try:

        def rate(question: str, rating: str, picked: Picked | None = None) -> FeedbackRecord:
            given = pipeline.ask(question).to_json()
            feedback = Feedback(question, given, rating, picked=picked)
            return check(feedback, pipeline.live.document, settings.max_question_chars)

        # Kept as it is: its first quoted sentence stays first, so the case passes.
        up = rate("When did Amazon buy Annapurna Labs?", "up")
        # A sentence the answerer does not quote first for this question: it must fail.
        article = pipeline.live.document("trainium-article.md")
        assert article is not None
        wrong = "The first Trainium chip came in 2020, followed by a faster second version."
        start = article.text.index(wrong)
        picked = Picked("trainium-article.md", start, start + len(wrong), wrong)
        down = rate("What are Graviton chips used for?", "down", picked)
    finally:
        pipeline.close()
    store = open_feedback_store(settings)
    try:
        store.add(up)
        store.add(down)
    finally:
        store.close()

    data = ["--data-dir", str(settings.data_dir)]
    code, out, _ = rag(monkeypatch, capsys, *data, "feedback", "list")
    assert code == 0 and up.id in out and down.id in out and "picked" in out
    code, out, _ = rag(monkeypatch, capsys, *data, "feedback", "show", down.id, "--json")
    assert code == 0 and json.loads(out)["picked"]["quote"] == wrong

    suite_path = tmp_path / "export" / "fb.yaml"
    args = ["feedback", "export", "-o", str(suite_path), "--include-up"]
    code, out, err = rag(monkeypatch, capsys, *data, *args)
    assert code == 0, err
    assert f"Wrote {suite_path}: 2 answerable case(s)" in out and "rag eval" in out
    suite = load_suite(suite_path)
    assert sorted(c.id for c in suite.cases) == sorted([f"fb-{up.id}", f"fb-{down.id}"])
    copied = docs_folder(suite_path) / "trainium-article.md"
    assert copied.read_text(encoding="utf-8") == article.text

    code, out, err = rag(monkeypatch, capsys, *data, "eval", str(suite_path), "--no-verifier",
                         "--json")  # fmt: skip
    assert code == 1, err  # the gate fails: one case is wrong
    (run,) = json.loads(out)["runs"]
    assert run["documents"] == ["trainium-article.md"]  # indexed from the exported folder
    results = {c["id"]: c for c in run["cases"]}
    assert results[f"fb-{up.id}"]["passed"], results[f"fb-{up.id}"]["reasons"]
    failed = results[f"fb-{down.id}"]
    assert not failed["passed"] and "expected fact" in " ".join(failed["reasons"])
    assert any(f.startswith("correctness") for f in run["gate_failures"])

    code, out, _ = rag(monkeypatch, capsys, *data, "feedback", "purge", "--before", "2000-01-01")
    assert code == 0 and "Nothing to remove." in out
    code, out, _ = rag(monkeypatch, capsys, *data, "feedback", "purge", "--yes")
    assert code == 0 and "Removed 2 rating(s)" in out
