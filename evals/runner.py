"""Running a suite: index its corpus in a scratch data directory, ask every case
through the same pipeline the CLI and UI use, and score it (``evals.metrics``). It does
not decide what counts as right (``evals.metrics``) or print (``evals.report``)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.metrics import CaseResult, CorpusFacts, Judge, aggregate, check_gate, score_case
from evals.schema import Suite
from evals.selector_curve import selector_report
from rag.index.embedding import Embedder
from rag.index.ingest import ingest
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings

Progress = Callable[[int, int], None]


@dataclass
class SuiteResult:
    suite: Suite
    generator: str
    results: list[CaseResult]
    thresholds: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    claims: list[dict[str, Any]] = field(default_factory=list)
    gate_failures: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)
    by_document: dict[str, dict[str, Any]] = field(default_factory=dict)
    selector: dict[str, Any] | None = None  # the learned selector's curve (benchmark splits)

    @property
    def passed(self) -> bool:
        return not self.gate_failures

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite.name,
            "path": str(self.suite.path),
            "split": self.suite.split,
            "documents": self.documents,
            "generator": self.generator,
            "thresholds": self.thresholds,
            "passed": self.passed,
            "gate_failures": self.gate_failures,
            "summary": self.summary,
            "by_kind": self.by_kind,
            "by_document": self.by_document,
            "claims": self.claims,
            "selector": self.selector,
            "cases": [r.to_json() for r in self.results],
        }


def claim_coverage(suite: Suite, results: list[CaseResult]) -> list[dict[str, Any]]:
    rows = []
    for claim in suite.claims:
        mine = [r for r in results if r.case.claim == claim.id]
        rows.append(
            {
                "id": claim.id,
                "text": claim.text,
                "covered": bool(mine),
                "answered": any(r.correct for r in mine),
                "cases": [r.case.id for r in mine],
            }
        )
    return rows


def summarise(suite: Suite, generator: str, results: list[CaseResult],
              thresholds: dict[str, float], documents: list[str] | None = None,
              ) -> SuiteResult:  # fmt: skip
    outcome = SuiteResult(suite, generator, results, thresholds, documents=documents or [])
    outcome.summary = aggregate(results)
    kinds = sorted({r.case.kind for r in results})
    outcome.by_kind = {k: aggregate([r for r in results if r.case.kind == k]) for k in kinds}
    named = sorted({r.case.document for r in results if r.case.document})
    outcome.by_document = {
        d: aggregate([r for r in results if r.case.document == d]) for d in named
    }
    outcome.claims = claim_coverage(suite, results)
    outcome.gate_failures = check_gate(outcome.summary, thresholds)
    return outcome


@contextmanager
def scratch_pipeline(
    settings: Settings,
    corpus: Sequence[Path],
    embedder: Embedder | None = None,
    prefix: str = "rag-scratch-",
) -> Iterator[Pipeline]:
    """A pipeline over ``corpus`` indexed in a temporary data directory, removed after."""
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        run_settings = settings.model_copy(update={"data_dir": scratch / "data"})
        ingest(run_settings, list(corpus), embedder=embedder)
        pipeline = build_pipeline(run_settings)
        try:
            yield pipeline
        finally:
            pipeline.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_suite(
    suite: Suite,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    thresholds: dict[str, float] | None = None,
    progress: Progress | None = None,
    judge: Judge | None = None,
) -> SuiteResult:
    """Index the suite's corpus (scratch data dir), answer every case, score the run."""
    corpus = suite.corpus or [settings.corpus_dir]
    with scratch_pipeline(settings, corpus, embedder, prefix=f"rag-eval-{suite.name}-") as pipeline:
        documents = {
            r.source: doc.text
            for r in pipeline.live.documents()
            if (doc := pipeline.live.document(r.source)) is not None
        }
        facts = CorpusFacts(list(documents.values()))
        results = []
        for n, case in enumerate(suite.cases, start=1):
            started = time.perf_counter()
            answer = pipeline.ask(case.question, case.history).to_json()
            latency = (time.perf_counter() - started) * 1000
            results.append(score_case(case, answer, latency, documents, facts, judge=judge))
            if progress:
                progress(n, len(suite.cases))
        curve = None
        if suite.split and pipeline.settings.answer_selector == "learned":
            curve = selector_report(pipeline, suite)
    merged = {**suite.thresholds, **(thresholds or {})}
    outcome = summarise(suite, settings.generator, results, merged, sorted(documents))
    outcome.selector = curve
    return outcome
