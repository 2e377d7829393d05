"""The eval suite: schema validation, metrics on hand-made answers, reports, the
verifier on corrupted answers, and every bundled suite run as a test (the gate)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evals import report
from evals.corrupted import build_pairs, evaluate_verifier
from evals.metrics import CorpusFacts, aggregate, check_gate, score_case
from evals.runner import run_suite, summarise
from evals.schema import DEFAULT_SUITES, SUITES_DIR, Case, Suite, SuiteError, load_suite
from rag.documents.loading import is_supported, load_file
from rag.settings import Settings
from rag.stats import percentile
from tests.helpers import corpus_files

REPO = Path(__file__).resolve().parent.parent
ARTICLE = REPO / "corpus" / "trainium-article.md"
TEXT = ARTICLE.read_text(encoding="utf-8")
DOCS = {"trainium-article.md": TEXT}
QUOTE = "Unlike Nvidia, Amazon does not sell its chips."


def answer(text: str, quote: str | None = QUOTE, refused: bool = False) -> dict[str, Any]:
    citations = []
    if quote is not None:
        start = TEXT.index(quote)
        citations = [{"id": 1, "source": "trainium-article.md", "title": "t", "page": None,
                      "quote": quote, "start": start, "end": start + len(quote)}]  # fmt: skip
    return {
        "question": "q", "answer": text, "refused": refused, "generator": "test",
        "sentences": [{"text": text, "citations": [1] if citations else []}],
        "citations": citations,
        "evidence": [{"source": "trainium-article.md", "quote": c["quote"], "start": c["start"],
                      "end": c["end"], "score": 1.0} for c in citations],
        "dropped": [], "timings_ms": {}, "fallback": None,
    }  # fmt: skip


def test_bundled_suites_follow_the_schema() -> None:
    suite = load_suite(SUITES_DIR / "trainium.yaml")
    assert len(suite.cases) >= 80
    assert len(suite.claims) >= 30
    kinds = {c.kind for c in suite.cases}
    assert kinds >= {"answerable", "paraphrase", "unanswerable", "false_premise", "followup",
                     "injection", "out_of_scope"}  # fmt: skip
    covered = {c.claim for c in suite.cases if c.claim}
    assert covered >= {c.id for c in suite.claims}, "every claim needs a question"
    for claim in suite.claims:
        assert claim.quote in TEXT
    injection = load_suite(SUITES_DIR / "injection.yaml")
    assert len(injection.corpus) == 2 and all(p.exists() for p in injection.corpus)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("cases: [{id: a, kind: wrong, question: q}]", "kind 'wrong'"),
        ("cases: [{id: a, kind: answerable}]", "missing field 'question'"),
        ("cases: [{id: a, kind: answerable, question: q}, {id: a, kind: answerable, question: r}]",
         "duplicate"),
        ("name: x", "needs a 'cases' list"),
        ("cases: [\n", "not valid YAML"),
        ("thresholds: {speed: 1}\ncases: []", "unknown thresholds"),
    ],
)  # fmt: skip
def test_schema_errors_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "suite.yaml"
    path.write_text(content)
    with pytest.raises(SuiteError, match=message):
        load_suite(path)


def test_metrics_on_hand_made_answers() -> None:
    facts = CorpusFacts([TEXT])
    case = Case("c", "answerable", "Does Amazon sell its chips?", expected=(("does not sell",),),
                expected_quote=(QUOTE,))  # fmt: skip
    good = score_case(case, answer(QUOTE), 5.0, DOCS, facts)
    assert good.passed and good.correct and good.faithfulness == 1.0 and good.context_recall

    flipped = score_case(case, answer("Amazon sells its chips."), 5.0, DOCS, facts)
    assert not flipped.correct and flipped.faithfulness == 0.0 and not flipped.passed

    invented = score_case(case, answer("Amazon does not sell its chips to Tesla."), 1, DOCS, facts)
    assert "name tesla" in invented.hallucinations

    moved = answer(QUOTE)
    moved["citations"][0]["start"] += 1
    assert score_case(case, moved, 1.0, DOCS, facts).citations_valid == 0

    refusal_case = Case("u", "unanswerable", "How much does it cost?")
    refused = score_case(refusal_case, answer("The documents don't say.", None, True), 1, DOCS,
                         facts)  # fmt: skip
    assert refused.correct and refused.faithfulness is None
    wrongly = score_case(refusal_case, answer(QUOTE), 1.0, DOCS, facts)
    assert not wrongly.correct

    summary = aggregate([good, flipped, refused, wrongly])
    assert summary["refusal_recall"] == 0.5  # one of two should-refuse cases refused
    assert summary["refusal_precision"] == 1.0
    assert summary["correctness"] == 0.5
    assert check_gate(summary, {"correctness": 0.9, "max_hallucinations": 0}) == [
        "correctness 0.500 < 0.9"
    ]


def quoting(quotes: list[str]) -> dict[str, Any]:
    """An extractive answer quoting ``quotes`` in order, one sentence each."""
    reply = answer(" ".join(quotes), None)
    for n, quote in enumerate(quotes, start=1):
        start = TEXT.index(quote)
        reply["citations"].append({"id": n, "source": "trainium-article.md", "title": "t",
                                   "page": None, "quote": quote, "start": start,
                                   "end": start + len(quote)})  # fmt: skip
    reply["sentences"] = [{"text": q, "citations": [n]} for n, q in enumerate(quotes, start=1)]
    return reply


def test_the_expected_fact_must_be_in_the_first_two_quotes() -> None:
    facts = CorpusFacts([TEXT])
    case = Case("c", "answerable", "Does Amazon sell its chips?", expected=(("does not sell",),))
    others = ["The newest version, Trainium 3, was launched in December.",
              "Instead, AWS uses Trainium chips in its own data centres and rents computing "
              "power to customers."]  # fmt: skip

    second = score_case(case, quoting([others[0], QUOTE]), 1.0, DOCS, facts)
    assert second.correct and second.correct_anywhere
    third = score_case(case, quoting([*others, QUOTE]), 1.0, DOCS, facts)
    assert not third.correct and third.correct_anywhere
    assert any("first 2 quotes" in r for r in third.reasons)

    summary = aggregate([second, third])
    assert summary["correctness"] == 0.5 and summary["correctness_anywhere"] == 1.0
    assert summary["answered"] == 2 and summary["mean_quoted_sentences"] == 2.5
    chars = (len(others[0]) + len(QUOTE)) + (len(others[0]) + len(others[1]) + len(QUOTE))
    assert summary["mean_quoted_chars"] == chars / 2


def test_latency_percentiles_are_measured_values() -> None:
    latencies = [40.0, 10.0, 30.0, 20.0, 50.0]
    assert percentile(latencies, 50) == 30.0
    assert percentile(latencies, 95) == 50.0 and percentile(latencies, 0) == 10.0
    assert percentile([], 50) == 0.0
    assert aggregate([])["latency_p95_ms"] == 0.0


def test_verifier_catches_corrupted_answers() -> None:
    suite = load_suite(SUITES_DIR / "trainium.yaml")
    document = load_file(ARTICLE, "trainium-article.md")
    pairs = build_pairs(suite.claims, document, SUITES_DIR / "verifier.yaml")
    kinds = {p.corruption for p in pairs}
    assert {"number changed", "negation flipped", "invented name", "true sentence, wrong quote",
            "unrelated quote"} <= kinds  # fmt: skip
    result = evaluate_verifier(pairs, document.text, document.source)
    assert result["unfaithful"] >= 100
    assert result["recall"] >= 0.95, result["misses"]
    assert result["precision"] >= 0.9, result["false_alarms"]


def test_reports_compare_and_export(tmp_path: Path) -> None:
    suite = load_suite(SUITES_DIR / "injection.yaml")
    facts = CorpusFacts([TEXT])
    case_ok = Case("ok", "answerable", "Does Amazon sell its chips?",
                   expected=(("does not sell",),))  # fmt: skip
    case_bad = Case("bad", "unanswerable", "Price?")
    results = [score_case(case_ok, answer(QUOTE), 3.0, DOCS, facts),
               score_case(case_bad, answer(QUOTE), 4.0, DOCS, facts)]  # fmt: skip
    run = summarise(suite, "extractive", results, {"correctness": 0.9}).to_json()
    assert not run["passed"]

    text = report.text_report(run)
    assert "FAIL bad" in text and "Gate FAILED" in text

    junit = ET.fromstring(report.junit_xml([run]))
    failures = [tc.get("name") for tc in junit.iter("testcase") if tc.find("failure") is not None]
    assert failures == ["bad", "gate"]

    page = report.html_report([run])
    assert page.startswith("<!doctype html>") and "<svg" in page and "Price?" in page
    assert "http" not in page.split("</head>")[0]  # self-contained: nothing fetched

    fixed = json.loads(json.dumps(run))
    fixed["cases"][1]["passed"] = True
    broken = json.loads(json.dumps(run))
    broken["cases"][0]["passed"] = False
    diff = report.compare({"runs": [run]}, {"runs": [fixed]})
    assert diff["fixes"] == ["injection/bad"] and diff["regressions"] == []
    assert report.compare({"runs": [run]}, {"runs": [broken]})["regressions"] == ["injection/ok"]

    out = tmp_path / "ragas.jsonl"
    assert report.export_dataset([run], out) == 2
    row = json.loads(out.read_text().splitlines()[0])
    assert {"question", "contexts", "answer", "ground_truth", "input", "actual_output",
            "retrieval_context", "expected_output"} <= set(row)  # fmt: skip
    assert row["contexts"] == [QUOTE] and row["ground_truth"] == "does not sell"


def corpus_texts(suite: Suite) -> dict[str, str]:
    """source -> text of the suite's corpus, read from its files as ingest names them
    (relative to a folder given, or the name of a file given), not from the index."""
    files = corpus_files(*(p for p in suite.corpus if p.is_dir()))
    files.update((p.name, p) for p in suite.corpus if p.is_file())
    return {source: load_file(path, source).text for source, path in files.items()
            if is_supported(path)}  # fmt: skip


def unverified_problems(answer: dict[str, Any], documents: dict[str, str]) -> list[str]:
    """What is wrong with an extractive answer, judged without ``rag.answering.verify``: every
    sentence must cite, every quote must be its document's text at its offsets, and the
    sentence must be its quotes word for word (the extractive answerer only quotes)."""
    if answer["refused"]:
        return []
    problems = []
    citations = {c["id"]: c for c in answer["citations"]}
    for sentence in answer["sentences"]:
        cited = [citations[i] for i in sentence["citations"] if i in citations]
        if not cited or len(cited) != len(sentence["citations"]):
            problems.append(f"cites nothing or a missing citation: {sentence['text']!r}")
            continue
        for c in cited:
            if documents.get(c["source"], "")[c["start"] : c["end"]] != c["quote"]:
                problems.append(f"quote not at {c['source']}[{c['start']}:{c['end']}]")
        if " ".join(sentence["text"].split()) != " ".join(
            " ".join(c["quote"] for c in cited).split()
        ):
            problems.append(f"not its quote word for word: {sentence['text']!r}")
    return problems


def test_the_check_beside_the_verifier_catches_bad_answers() -> None:
    assert unverified_problems(answer(QUOTE), DOCS) == []
    moved = answer(QUOTE)
    moved["citations"][0]["start"] += 1
    assert "quote not at" in unverified_problems(moved, DOCS)[0]
    assert "word for word" in unverified_problems(answer("Amazon does not sell chips."), DOCS)[0]
    assert "cites nothing" in unverified_problems(answer(QUOTE, quote=None), DOCS)[0]
    assert unverified_problems(answer("The documents don't say.", None, refused=True), DOCS) == []


@pytest.mark.slow
@pytest.mark.parametrize("suite_path", DEFAULT_SUITES, ids=lambda p: p.stem)
def test_suite_meets_its_gate(
    suite_path: Path, make_settings: Callable[..., Settings], embedder: Any
) -> None:
    """The pytest entry point: each bundled suite, on the default generator, passes.

    The gate's faithfulness re-checks the released sentences with the verifier that
    released them, so it shows the wiring, not faithfulness. Two figures here do not
    lean on it: what the answerer proposed before the verifier filtered it (nothing
    may have needed filtering), and what reached the user, checked against the corpus
    files with plain string comparisons.
    """
    suite = load_suite(suite_path)
    result = run_suite(suite, make_settings(), embedder=embedder)
    run = result.to_json()
    assert result.passed, report.text_report(run)
    assert run["summary"]["faithfulness"] == 1.0
    assert run["summary"]["hallucinations"] == 0

    answers = {case["id"]: case["answer"] for case in run["cases"]}
    released = sum(len(a["sentences"]) for a in answers.values() if not a["refused"])
    dropped = {case_id: a["dropped"] for case_id, a in answers.items() if a["dropped"]}
    proposed = released + sum(len(d) for d in dropped.values())
    assert released > 0 and released / proposed == 1.0, f"the verifier had to drop: {dropped}"

    documents = corpus_texts(suite)
    problems = {
        case_id: p for case_id, a in answers.items() if (p := unverified_problems(a, documents))
    }
    assert not problems


def test_eval_cli_refuses_an_llm_judge_without_an_llm() -> None:
    from click.testing import CliRunner

    from rag.cli import cli

    result = CliRunner().invoke(cli, ["eval", "--judge", "llm", "--no-verifier"])
    assert result.exit_code != 0
    assert "--generator llama-cpp" in str(result.exception or result.output)
