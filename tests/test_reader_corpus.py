"""The reader's training corpus (evals/reader/) keeps away from what we evaluate on.

The source list is the contract: every document on disk is listed with where it came from,
and nothing listed comes from a benchmark package (dev or test), from the npm packages kept
for evaluation, or is a licence text, a language's own documentation or a freedesktop.org
specification. A document that slipped in would leak held-out answers into training.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
READER = ROOT / "evals" / "reader"
BENCHMARK = ROOT / "evals" / "benchmark"

RESERVED_NPM = {"multer", "busboy", "express", "ws", "pino", "got", "helmet", "formidable"}
# Languages' own documentation and packages that copy a standard library.
LANGUAGE_PACKAGES = {
    "python3-doc", "python3.11-doc", "nodejs-doc", "perl-doc", "ruby-doc", "golang-doc",
    "openjdk-17-doc", "mock", "typing_extensions", "typing-extensions", "importlib_metadata",
    "importlib-metadata", "dataclasses", "enum34", "futures", "pathlib2", "backports",
}  # fmt: skip
REQUIRED_KEYS = {"file", "kind", "registry", "package", "version", "original", "licence"}


def sources() -> list[dict[str, str]]:
    return yaml.safe_load((READER / "sources.yaml").read_text(encoding="utf-8"))["documents"]


def benchmark_sources() -> list[dict[str, str]]:
    return yaml.safe_load((BENCHMARK / "sources.yaml").read_text(encoding="utf-8"))["documents"]


def test_every_document_is_listed_once_with_its_origin() -> None:
    listed = [d["file"] for d in sources()]
    on_disk = sorted(p.name for p in (READER / "docs").iterdir())
    assert sorted(listed) == on_disk
    assert len(set(listed)) == len(listed)
    for doc in sources():
        assert set(doc) >= REQUIRED_KEYS, doc["file"]
        assert all(str(doc[k]).strip() for k in REQUIRED_KEYS), doc["file"]
        assert doc["registry"] in ("debian", "npm", "pypi (sdist)"), doc["file"]


def test_the_corpus_is_large_and_varied_enough() -> None:
    docs = sources()
    assert len(docs) >= 80
    assert sum(not d["kind"].startswith("readme") for d in docs) >= 30
    kinds = " ".join(d["kind"] for d in docs)
    for kind in ("markdown", "plain text", "html", "pdf", "changelog", "faq", "man page"):
        assert kind in kinds, kind


def test_no_benchmark_package_or_document_is_in_the_corpus() -> None:
    bench_packages = {d["package"] for d in benchmark_sources()}
    assert {"time", "httplib2", "dotenv"} <= bench_packages  # the test split is listed there
    bench_files = {Path(d["file"]).name for d in benchmark_sources()}
    bench_texts = {
        p.read_bytes() for p in (BENCHMARK / "docs").rglob("*") if p.is_file()
    }  # fmt: skip
    for doc in sources():
        assert doc["package"] not in bench_packages, doc["file"]
        assert doc["file"] not in bench_files, doc["file"]
        assert (READER / "docs" / doc["file"]).read_bytes() not in bench_texts, doc["file"]


def test_no_reserved_licence_language_or_freedesktop_document() -> None:
    for doc in sources():
        name = doc["file"].lower()
        original = doc["original"].lower()
        if doc["registry"] == "npm":
            assert doc["package"] not in RESERVED_NPM, doc["file"]
        assert doc["package"].lower() not in LANGUAGE_PACKAGES, doc["file"]
        assert not re.search(r"licen[cs]e|copying|copyright", name + " " + original), name
        assert "freedesktop" not in original and "xdg" not in name, name


def test_every_label_is_consistent_with_its_document() -> None:
    """What `python -m evals.benchmark check` checks, on every case file: facts and
    quotes are in the loaded text and each answer span holds its fact."""
    from evals.benchmark import problems
    from evals.schema import ANSWERING_KINDS, REFUSING_KINDS, load_case_file

    files = sorted((READER / "cases").glob("*.yaml"))
    assert files, "no case files"
    listed = {d["file"] for d in sources()}
    ids: set[str] = set()
    bad: list[str] = []
    for path in files:
        for case in load_case_file(path):
            assert case.document in listed, case.id
            assert case.id not in ids, f"duplicate id {case.id}"
            ids.add(case.id)
            assert case.kind in ANSWERING_KINDS + REFUSING_KINDS, case.id
            if case.kind in ANSWERING_KINDS:
                assert case.spans, f"{case.id}: no answer span (run evals.reader_labels anchor)"
            bad += [f"{case.id}: {p}" for p in problems(case)]
    assert bad == []


def test_anchor_finds_facts_inside_their_quote_across_line_wraps(tmp_path: Path) -> None:
    from evals.reader_labels import anchor_case, loaded_text

    text = loaded_text("xz-faq.txt")
    # A passage of the FAQ that the file wraps over two lines, written on one.
    lines = [ln.strip() for ln in text.splitlines()]
    i = next(
        n for n, ln in enumerate(lines) if len(ln.split()) >= 6 and len(lines[n + 1].split()) >= 6
    )
    quote = f"{lines[i]} {lines[i + 1]}"
    fact = lines[i + 1].split()[-1]
    spans, problems = anchor_case({"expected": [[fact]], "expected_quote": [quote]}, text)
    assert problems == [] and spans is not None
    ((start, end),) = spans
    assert text[start:end].lower() == fact.lower()
    assert start > text.index(lines[i])  # the occurrence inside the quote, not an earlier one

    _, problems = anchor_case({"expected": [["no such fact"]], "expected_quote": [quote]}, text)
    assert problems == ["fact not inside its quote: no such fact"]
    _, problems = anchor_case({"expected": [[fact]], "expected_quote": ["not in this FAQ"]}, text)
    assert problems and problems[0].startswith("quote not in the loaded text")


def test_anchor_refuses_a_reference_yaml_read_as_a_number(tmp_path: Path) -> None:
    from evals.reader_labels import anchor_file, loaded_text

    line = next(ln.strip() for ln in loaded_text("xz-faq.txt").splitlines() if len(ln) > 40)
    fact = line.split()[-1]
    case = tmp_path / "case.yaml"
    body = (
        "- id: t-a01\n  kind: answerable\n  document: xz-faq.txt\n  question: q?\n"
        f"  expected: [['{fact}']]\n  expected_quote: ['{line}']\n  reference: {{}}\n"
    )
    case.write_text(body.format("30."), encoding="utf-8")
    assert anchor_file(case) == 1
    case.write_text(body.format("It is 30."), encoding="utf-8")
    assert anchor_file(case) == 0
    assert "spans:" in case.read_text(encoding="utf-8")
