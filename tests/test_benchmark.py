"""The multi-document benchmark is what its README says it is, and its test split is
frozen. Fast: loads the documents, runs no model."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
import yaml

from evals.benchmark import check, document_path, problems
from evals.schema import BENCHMARK_DIR, BENCHMARK_SUITES, Case, load_suite

SPLITS = {suite.stem: load_suite(suite) for suite in BENCHMARK_SUITES}


def test_the_test_split_is_frozen() -> None:
    """Never edited after it was committed: tuning on it would make its figures lie."""
    for line in (BENCHMARK_DIR / "test.sha256").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((BENCHMARK_DIR / name).read_bytes()).hexdigest() == digest, name


def test_the_splits_hold_different_documents_of_every_kind() -> None:
    dev, test = SPLITS["dev"], SPLITS["test"]
    assert (dev.split, test.split) == ("dev", "test")
    documents = {
        name: {c.document for c in suite.cases} for name, suite in (("dev", dev), ("test", test))
    }
    assert not documents["dev"] & documents["test"]
    assert len(documents["dev"] | documents["test"]) >= 8
    assert len(documents["test"]) >= 3 and len(test.cases) >= 100
    assert len(dev.cases) + len(test.cases) >= 300
    sources = yaml.safe_load((BENCHMARK_DIR / "sources.yaml").read_text())["documents"]
    assert len({s["registry"].split()[0] for s in sources}) >= 3
    assert sum(s["kind"].startswith("hard-wrapped") for s in sources) >= 2
    assert sum(s["kind"].startswith("pdf") for s in sources) >= 2
    for entry in sources:  # every document is recorded with where it came from
        assert {"package", "version", "licence", "original"} <= set(entry)
        assert document_path(entry["file"].split("/")[1]) is not None
    test_kinds = {s["kind"].split()[0] for s in sources if s["split"] == "test"}
    assert {"pdf", "hard-wrapped"} <= test_kinds
    for suite in (dev, test):
        assert set(Counter(c.kind for c in suite.cases)) == {
            "answerable", "unanswerable", "false_premise", "followup",
        }  # fmt: skip


@pytest.mark.parametrize("split", ["dev", "test"])
def test_every_expected_fact_is_in_its_document(split: str) -> None:
    paths = sorted((BENCHMARK_DIR / "cases" / split).glob("*.yaml"))
    assert check(paths) == 0


def test_the_checker_finds_a_fact_that_is_not_there() -> None:
    case = Case(
        id="x",
        kind="answerable",
        question="Which port?",
        expected=(("port 65000",),),
        document="http-server-README.md",
    )
    assert problems(case) == ["expected fact not in the document: port 65000"]
    refusing = Case(id="y", kind="unanswerable", question="?", expected=(("8080",),))
    assert problems(refusing) == ["no document"]
