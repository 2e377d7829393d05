"""Experiment: can a learned selector beat the answer rules on unseen documents?

Issue 11 asks for a trained model that decides whether a retrieved sentence answers
the question. This module is the measurement, not a product path: it computes, for
each (question, retrieved candidate), the retrieval scores and ranks, term coverage
and every answer rule as a feature (``features``), labels the candidates of the
benchmark's dev split and of the bundled article's suite (a candidate is positive
when it holds the expected quote or every expected fact), and scores a logistic
regression by leave-one-document-out cross-validation: each document's questions
are answered by a model trained on the other documents only. The figure is the
share of questions answered right (the top candidate positive, or a refusal when
the documents do not say), beside the rules' own choice on the same candidates.

Measured on 2026-11-30 (``python -m evals.selector_experiment``): 288 questions; a
right sentence is among the 15 candidates for 202 of the 227 answerable ones. Cross-
validated, the logistic model is right on 0.52 of all questions: 89 of 204 (0.44)
on the seven dev documents against the rules' 86 (0.42), and 61 of 84 (0.73) on the
held-out article against the rules' 77 (0.92; they were tuned on it). The right
sentence comes first for 0.65 of the questions that have one. Adding MiniLM
interaction features (q * s, |q - s|), the sentence-alone cosine, soft matching over
the model's word embeddings, or gradient-boosted trees moved none of these by more
than a point: these signals cannot tell the answering sentence from its on-topic
neighbours, so the selector is not used by the answerer yet. The test split is
never read here.

Never calls an LLM. A few minutes on a CPU (it indexes the training documents).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from evals.benchmark import normalise
from evals.schema import ANSWERING_KINDS, BENCHMARK_DIR, REFUSING_KINDS, SUITES_DIR, load_suite
from evals.selector_data import QUESTIONS_FILE, SELECTOR_DIR
from evals.selector_features import FEATURES, features
from rag.question import resolve_followup
from rag.retrieval import Evidence
from rag.text import content_tokens

SEED = 20261130
TRAINING_DOCUMENTS = [
    BENCHMARK_DIR / "docs" / "dev",
    SELECTOR_DIR / "docs",
    SUITES_DIR.parent.parent / "corpus",
]
CANDIDATES = 15  # what the pipeline retrieves for the answerer (max(3 * top_k, 15))
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
THRESHOLDS = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.01))


@dataclass
class Group:
    """One question with its candidates' features and labels."""

    question: str
    document: str
    origin: str  # "dev" or "generated"
    should_refuse: bool
    rows: np.ndarray
    labels: np.ndarray
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _positive(evidence: Evidence, expected: Sequence[Sequence[str]], quotes: Sequence[str]) -> bool:
    text = normalise(f"{evidence.quote}")
    if any(normalise(q) in text for q in quotes):
        return True
    return bool(expected) and all(any(normalise(a) in text for a in g) for g in expected)


def _same_statement(a: Evidence, b: Evidence) -> bool:
    ta, tb = set(content_tokens(a.quote)), set(content_tokens(b.quote))
    return bool(ta) and len(ta & tb) / len(ta | tb) >= 0.8


def build_groups(retriever: Any, generated: bool = False) -> list[Group]:
    groups: list[Group] = []
    view = retriever.view
    dev = load_suite(BENCHMARK_DIR / "dev.yaml")
    # The bundled article's suite is tuning data too (its answers were tuned on it).
    article = load_suite(SUITES_DIR / "trainium.yaml")
    cases = [*dev.cases, *(replace(c, document="trainium-article.md") for c in article.cases)]
    for case in cases:
        if case.kind not in ANSWERING_KINDS + REFUSING_KINDS:
            continue  # injection cases: screened by rule, not by the selector
        query = resolve_followup(case.question, list(case.history))
        candidates = retriever.retrieve(query, CANDIDATES)
        rows = features(query, candidates, view, case.question)
        refuse = case.kind in REFUSING_KINDS
        labels = np.array(
            [
                0 if refuse else int(_positive(e, case.expected, case.expected_quote))
                for e in candidates
            ]
        )
        groups.append(
            Group(
                case.question,
                case.document or "",
                "dev",
                refuse,
                rows,
                labels,
                case.kind,
                {"id": case.id},
            )
        )
    if generated and QUESTIONS_FILE.exists():
        for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if not row.get("question"):
                continue
            candidates = retriever.retrieve(row["question"], CANDIDATES)
            source = [e for e in candidates if e.chunk_id == row["id"]]
            labels = np.array([int(e.chunk_id == row["id"]) for e in candidates])
            rows = features(row["question"], candidates, view)
            groups.append(Group(row["question"], row["source"], "generated", False, rows, labels))
            if source and not any(
                _same_statement(source[0], e) for e in candidates if e is not source[0]
            ):
                kept = [e for e in candidates if e is not source[0]]
                rows = features(row["question"], kept, view)
                unanswerable = np.zeros(len(kept), dtype=int)
                groups.append(
                    Group(row["question"], row["source"], "generated", True, rows, unanswerable)
                )
    return groups


def _fit(groups: Sequence[Group], c: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([g.rows for g in groups if len(g.rows)])
    y = np.concatenate([g.labels for g in groups if len(g.rows)])
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, max_iter=2000, random_state=SEED)
    model.fit((x - mean) / scale, y)
    return mean, scale, model.coef_[0], float(model.intercept_[0])


def _probabilities(group: Group, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray,
                   intercept: float) -> np.ndarray:  # fmt: skip
    if not len(group.rows):
        return np.zeros(0)
    return 1.0 / (1.0 + np.exp(-(((group.rows - mean) / scale) @ coef + intercept)))


def right(group: Group, probabilities: np.ndarray, threshold: float) -> bool:
    """Answered with a right sentence first, or refused when it should be."""
    if not len(probabilities) or probabilities.max() < threshold:
        return group.should_refuse
    return not group.should_refuse and bool(group.labels[int(probabilities.argmax())])


def cross_validate(groups: list[Group], c: float) -> dict[str, list[float]]:
    """Leave one dev document out: the held-out document's cases scored by a model
    trained on the other documents (and the generated questions of other documents)."""
    documents = sorted({g.document for g in groups if g.origin == "dev"})
    scores: dict[str, list[float]] = {}
    for document in documents:
        train = [g for g in groups if g.document != document]
        params = _fit(train, c)
        for g in groups:
            if g.origin == "dev" and g.document == document:
                scores[g.meta["id"]] = list(_probabilities(g, *params))
    return scores


def rules_right(group: Group) -> bool:
    """The rules' own answer on the same candidates: what they quote, or a refusal."""
    picked = FEATURES.index("rules_pick")
    refused = FEATURES.index("rules_refused")
    if not len(group.rows) or group.rows[0, refused] == 1:
        return group.should_refuse
    chosen = np.where(group.rows[:, picked] == 1)[0]
    return not group.should_refuse and bool(group.labels[chosen].any())


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Cross-validate a learned answer selector.")
    parser.add_argument(
        "--with-generated",
        action="store_true",
        help="also train on the LLM-written questions (evals/selector; weak labels)",
    )
    args = parser.parse_args(argv)

    from rag.embedding import SentenceTransformerEmbedder
    from rag.ingest import ingest
    from rag.pipeline import build_pipeline
    from rag.settings import load_settings

    settings = load_settings()
    scratch = Path(tempfile.mkdtemp(prefix="rag-selector-"))
    try:
        run = settings.model_copy(update={"data_dir": scratch / "data"})
        embedder = SentenceTransformerEmbedder(run.embedding_model, run.embed_batch_size)
        print("Indexing the training documents...", file=sys.stderr)
        ingest(run, TRAINING_DOCUMENTS, embedder=embedder)
        pipeline = build_pipeline(run)
        try:
            groups = build_groups(pipeline.live.retriever, generated=args.with_generated)
        finally:
            pipeline.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    dev = [g for g in groups if g.origin == "dev"]
    reachable = [g for g in dev if g.labels.any()]
    print(f"{len(dev)} questions; a right sentence among the candidates for "
          f"{len(reachable)} of {sum(not g.should_refuse for g in dev)} answerable")  # fmt: skip
    best: tuple[float, float, float, dict[str, list[float]]] = (-1.0, 0.0, 0.5, {})
    for c in C_GRID:
        scores = cross_validate(groups, c)
        for t in THRESHOLDS:
            acc = float(np.mean([right(g, np.array(scores[g.meta["id"]]), t) for g in dev]))
            if acc > best[0]:
                best = (acc, c, t, scores)
    accuracy, c, threshold, scores = best
    first = np.mean([g.labels[int(np.argmax(scores[g.meta["id"]]))] for g in reachable])
    print(f"logistic, cross-validated: {accuracy:.3f} right (C={c}, threshold {threshold}); "
          f"right sentence first for {first:.2f} of those that have one")  # fmt: skip
    by_document: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for g in dev:
        row = by_document[g.document]
        row[0] += 1
        row[1] += rules_right(g)
        row[2] += right(g, np.array(scores[g.meta["id"]]), threshold)
    print(f"{'document':<28} {'n':>4} {'rules':>6} {'model':>6}")
    for name, (n, by_rules, by_model) in sorted(by_document.items()):
        print(f"{name:<28} {n:>4} {by_rules:>6} {by_model:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
