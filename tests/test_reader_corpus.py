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
        assert REQUIRED_KEYS <= set(doc), doc["file"]
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
