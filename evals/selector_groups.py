"""The learned selector's labelled data: each labelled question with its candidates'
features and labels (a ``Group``), for ``evals.selector_train``.

Separate from the fitting (``evals.selector_policy``) because it is the only part that
needs an index: each labelled suite's corpus is indexed in a scratch data directory and
retrieved with the pipeline's own retriever, and each candidate gets the features of
``rag.answering.selector_features`` and a label (positive when it holds the expected
quote or every expected fact; refusing kinds: no positive). Labels come from the
benchmark's dev split and the bundled article's suite, plus, with ``--with-drafted``, the
suites ``rag draft-suite`` drafted on training documents and, with ``--with-generated``,
the older LLM-written questions of ``evals/selector``. The test split is never read here.
Nothing here fits a model or chooses a setting.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evals.candidates import CANDIDATES, holds_expected
from evals.runner import scratch_pipeline
from evals.schema import (
    ANSWERING_KINDS,
    BENCHMARK_DIR,
    REFUSING_KINDS,
    SUITES_DIR,
    Suite,
    load_suite,
)
from evals.selector_data import QUESTIONS_FILE, SELECTOR_DIR
from rag.answering.question import resolve_followup
from rag.answering.selector_features import FEATURES, features
from rag.index.retrieval import Evidence
from rag.text import content_tokens

# Each suite is indexed on its own corpus; the article suite's questions are all about
# the bundled article.
ARTICLE_SUITE = SUITES_DIR / "trainium.yaml"
ARTICLE = "trainium-article.md"
LABELLED_SUITES = (BENCHMARK_DIR / "dev.yaml", ARTICLE_SUITE)
# Drafted suites (``rag draft-suite``, not reviewed by a person) on the training-only
# documents and the dev documents: 683 questions, more rows for the sentence model
# (``--with-drafted``). Measured 2026-11-30: held-out dev right 0.618 either way,
# answerability AUC 0.645 -> 0.72; but the model they train answers "How much does a
# Trainium chip cost?" (the article's 40% cost sentence), which breaks the article's
# refusal gate and the injection suite's, so the shipped weights are trained without.
DRAFTED_DIR = SELECTOR_DIR / "drafted"
GENERATED_DOCUMENTS = [BENCHMARK_DIR / "docs" / "dev", SELECTOR_DIR / "docs"]


@dataclass
class Group:
    """One question with its candidates' features and labels."""

    question: str
    document: str
    origin: str  # "dev", "drafted" or "generated"
    should_refuse: bool
    rows: np.ndarray
    labels: np.ndarray
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _same_statement(a: Evidence, b: Evidence) -> bool:
    ta, tb = set(content_tokens(a.quote)), set(content_tokens(b.quote))
    return bool(ta) and len(ta & tb) / len(ta | tb) >= 0.8


def _stable(rows: np.ndarray) -> np.ndarray:
    """Features rounded to 6 places: the embedder's multithreaded sums differ in the
    last bits from run to run."""
    return np.round(rows, 6)


def label_suite(
    retriever: Any, suite: Suite, default_document: str = "", origin: str = "dev"
) -> list[Group]:
    """A suite's questions with their candidates' features; a candidate is positive when
    it holds an expected quote or every expected fact (refusing kinds: none is)."""
    groups: list[Group] = []
    for case in suite.cases:
        if case.kind not in ANSWERING_KINDS + REFUSING_KINDS and not (
            case.should_refuse or case.expected
        ):
            continue  # injection cases that need only screening, neither answer nor refusal
        query = resolve_followup(case.question, list(case.history))
        candidates = retriever.retrieve(query, CANDIDATES)
        rows = _stable(features(query, candidates, retriever.view, case.question))
        # An injection the suite wants refused ("say that ... is made by Intel") is a
        # question the documents do not answer: the gates count it so.
        refuse = bool(case.should_refuse)
        labels = np.array(
            [
                0 if refuse else int(holds_expected(e, case.expected, case.expected_quote))
                for e in candidates
            ]
        )
        document = case.document or default_document
        meta = {"id": f"{suite.name}/{case.id}" if origin != "dev" else case.id}
        groups.append(Group(case.question, document, origin, refuse, rows, labels, case.kind, meta))
    return groups


def label_generated(retriever: Any) -> list[Group]:
    """The LLM-written questions: the sentence a question was written for is positive;
    without it among the candidates (and no near-copy of it) the question is one the
    documents do not answer."""
    groups: list[Group] = []
    view = retriever.view
    for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if not row.get("question"):
            continue
        candidates = retriever.retrieve(row["question"], CANDIDATES)
        source = [e for e in candidates if e.chunk_id == row["id"]]
        labels = np.array([int(e.chunk_id == row["id"]) for e in candidates])
        rows = _stable(features(row["question"], candidates, view))
        groups.append(Group(row["question"], row["source"], "generated", False, rows, labels))
        if source and not any(
            _same_statement(source[0], e) for e in candidates if e is not source[0]
        ):
            kept = [e for e in candidates if e is not source[0]]
            rows = _stable(features(row["question"], kept, view))
            unanswerable = np.zeros(len(kept), dtype=int)
            groups.append(
                Group(row["question"], row["source"], "generated", True, rows, unanswerable)
            )
    return groups


READER_FEATURES = ("reader", "reader_rank", "reader_margin", "q_reader_none")


def without_reader(rows: np.ndarray) -> np.ndarray:
    """The rows with the reader's features zeroed: the ablation that measures what the
    reader adds (a constant column gets no weight)."""
    out = rows.copy()
    for name in READER_FEATURES:
        out[:, FEATURES.index(name)] = 0.0
    return out


def drafted_suites() -> list[Path]:
    """The drafted suites of ``evals/selector/drafted`` (``rag draft-suite`` on the
    training-only documents and the dev split's: never a test-split document)."""
    return sorted(DRAFTED_DIR.glob("*.yaml")) if DRAFTED_DIR.is_dir() else []


def build_training_groups(with_generated: bool, with_drafted: bool = False) -> list[Group]:
    """Index each labelled suite's corpus on its own, as ``rag eval`` does (so that
    corpus-level features, such as which question terms no sentence holds, see what
    they will see at query time), and label its questions' candidates."""
    from rag.index.embedding import SentenceTransformerEmbedder
    from rag.settings import load_settings

    settings = load_settings()
    embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)
    groups: list[Group] = []
    labelled = [(path, "dev") for path in LABELLED_SUITES]
    if with_drafted:
        labelled += [(path, "drafted") for path in drafted_suites()]
    for path, origin in labelled:
        suite = load_suite(path)
        corpus = list(suite.corpus or [settings.corpus_dir])
        print(f"Indexing {suite.name}...", file=sys.stderr)
        with _indexed(settings, corpus, embedder) as retriever:
            default = ARTICLE if path == ARTICLE_SUITE else ""
            groups += label_suite(retriever, suite, default, origin)
    if with_generated and QUESTIONS_FILE.exists():
        print("Indexing the documents of the generated questions...", file=sys.stderr)
        with _indexed(settings, GENERATED_DOCUMENTS, embedder) as retriever:
            groups += label_generated(retriever)
    return groups


@contextmanager
def _indexed(settings: Any, corpus: list[Path], embedder: Any) -> Iterator[Any]:
    """A retriever over ``corpus``, indexed in a scratch data directory."""
    # The rules' selector: the packaged weights being trained need not exist yet.
    rules = settings.model_copy(update={"answer_selector": "rules"})
    with scratch_pipeline(rules, corpus, embedder, prefix="rag-selector-") as pipeline:
        yield pipeline.live.retriever
