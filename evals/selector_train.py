"""Training the learned answer selector (``make train``): labelled questions in,
``rag/models/selector.json`` out.

For each labelled question the training documents are indexed (a scratch data
directory) and retrieved with the pipeline's own retriever; each candidate gets the
features of ``rag.answering.selector_features`` and a label: positive when it holds the
expected quote or every expected fact (refusing kinds: no positive). Labels come
from the benchmark's dev split and the bundled article's suite, plus, for the
sentence model only and with ``--with-drafted``, the suites ``rag draft-suite``
drafted on training documents (``evals/selector/drafted``); the older
LLM-written questions of ``evals/selector`` join with ``--with-generated``. The test
split is never read here.

Two logistic regressions (scikit-learn at training time; numpy at query time): the
sentence model, P(this candidate answers), on every candidate row; and the
answerability model, P(the documents answer the question), on question-level rows
(``rag.answering.selector.question_features``) made from *held-out* sentence scores, as the
sentence model will score unseen questions at query time. Everything they decide is
chosen by leave-one-document-out cross-validation: each document's questions are
scored by models trained on the other documents only, and the regularisations, the
refusal threshold, the extra-sentence threshold and the number of sentences quoted
are those that answer most held-out benchmark questions right (the right sentence
among those quoted, or a refusal when the documents do not say), among the choices
whose final models keep the bundled article suite's own CI gates. The final models
are fitted on every document with those choices; the cross-validated figures, beside
the rules' own on the same candidates, are written into the weights file.

Deterministic for a given seed and data, up to Chroma's approximate nearest-neighbour
search: its graph depends on the threads that built it, so a few questions' 11th-15th
candidates can come in another order. Two runs on 2026-11-30 chose the same settings
and gave the same cross-validated figures, with weights differing in the fourth
decimal. Under a minute on 2 cores; never calls an LLM.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
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
from rag.answering.reader import load_reader
from rag.answering.selector import (
    PACKAGED_MODEL,
    QUESTION_FEATURES,
    Logistic,
    SelectorModel,
    question_features,
)
from rag.answering.selector_features import FEATURES, features
from rag.documents.chunking import CHUNKER_VERSION
from rag.index.retrieval import Evidence
from rag.text import content_tokens

SEED = 20261130
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
C_GRID = (0.03, 0.1, 0.3, 1.0)
C_ANSWERABLE_GRID = (0.1, 1.0)
THRESHOLDS = tuple(round(float(t), 3) for t in np.arange(0.05, 0.901, 0.025))
INCLUDE_GRID = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
# At most two: the answer is judged on its first two quotes (the lead-two rule), and
# a third sentence only lengthens it.
MAX_SENTENCES_GRID = (1, 2)
# An answer leads with the answer: a second sentence only where it likely answers too.
# Chosen policies quote at most this many candidates per answered dev question on
# average (a pronoun's antecedent or a list's items come on top of it).
MAX_MEAN_QUOTED = 1.4
# The article's gates must also hold one threshold step lower: Chroma's approximate
# search moves a borderline question's P(answerable) by a few thousandths from one
# index build to the next, and a gate met by one question's margin then fails in CI.
GATE_MARGIN = 0.025


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


def _fit_arrays(x: np.ndarray, y: np.ndarray, c: float) -> Logistic:
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, max_iter=5000, random_state=SEED)
    model.fit((x - mean) / scale, y)
    return Logistic(mean, scale, model.coef_[0], float(model.intercept_[0]))


def _fit(groups: Sequence[Group], c: float) -> Logistic:
    """The sentence model: every candidate row of ``groups``, labelled."""
    x = np.vstack([g.rows for g in groups if len(g.rows)])
    y = np.concatenate([g.labels for g in groups if len(g.rows)])
    return _fit_arrays(x, y, c)


def _probabilities(group: Group, sentence: Logistic) -> np.ndarray:
    return sentence(group.rows) if len(group.rows) else np.zeros(0)


def _question_rows(groups: Sequence[Group], scores: dict[str, np.ndarray]) -> np.ndarray:
    return np.array([question_features(scores[g.meta["id"]], g.rows) for g in groups])


def _fit_answerable(groups: Sequence[Group], scores: dict[str, np.ndarray], c: float
                    ) -> Logistic:  # fmt: skip
    """The answerability model, on held-out sentence scores (as at query time, the
    sentence model never saw the question it scores)."""
    x = _question_rows(groups, scores)
    y = np.array([int(not g.should_refuse) for g in groups])
    return _fit_arrays(x, y, c)


@dataclass(frozen=True)
class Policy:
    """How scores become an answer: refuse when P(answerable) is below ``threshold``,
    else quote the best sentence and up to ``max_sentences - 1`` more whose P(answers)
    reaches ``include_threshold``."""

    threshold: float
    include_threshold: float
    max_sentences: int

    def quoted(self, p: np.ndarray, answerable: float) -> list[int]:
        if not len(p) or answerable < self.threshold:
            return []
        order = np.argsort(-p, kind="stable")
        more = [int(i) for i in order[1 : self.max_sentences] if p[i] >= self.include_threshold]
        return [int(order[0]), *more]

    def right(self, group: Group, p: np.ndarray, answerable: float) -> bool:
        """A right sentence among those quoted, or a refusal when the documents don't say."""
        return judged_right(group, self.quoted(p, answerable))


def judged_right(group: Group, quoted: list[int]) -> bool:
    """Whether quoting the candidates ``quoted`` (none: a refusal) is right for ``group``."""
    if not quoted:
        return group.should_refuse
    return not group.should_refuse and bool(group.labels[quoted].any())


def policies() -> list[Policy]:
    found = []
    for k in MAX_SENTENCES_GRID:
        for t in THRESHOLDS:
            for include in INCLUDE_GRID if k > 1 else (1.0,):
                found.append(Policy(float(t), float(include), k))
    return found


def _by_document(groups: list[Group]) -> list[str]:
    return sorted({g.document for g in groups if g.origin == "dev"})


def cross_validate(groups: list[Group], c: float) -> dict[str, np.ndarray]:
    """Leave one labelled document out: its questions scored by a sentence model trained
    on the other documents (and the drafted or generated questions of other documents)
    only."""
    scores: dict[str, np.ndarray] = {}
    for document in _by_document(groups):
        sentence = _fit([g for g in groups if g.document != document], c)
        for g in groups:
            if g.origin == "dev" and g.document == document:
                scores[g.meta["id"]] = _probabilities(g, sentence)
    return scores


def cross_validate_answerable(
    groups: list[Group], scores: dict[str, np.ndarray], c: float
) -> dict[str, float]:
    """Leave one document out again, for the answerability model on held-out scores."""
    dev = [g for g in groups if g.origin == "dev"]
    answerable: dict[str, float] = {}
    for document in _by_document(groups):
        model = _fit_answerable([g for g in dev if g.document != document], scores, c)
        held = [g for g in dev if g.document == document]
        for g, value in zip(held, model(_question_rows(held, scores)), strict=True):
            answerable[g.meta["id"]] = float(value)
    return answerable


def rules_right(group: Group) -> bool:
    """The rules' own answer on the same candidates: what they quote, or a refusal."""
    picked = FEATURES.index("rules_pick")
    refused = FEATURES.index("rules_refused")
    if not len(group.rows) or group.rows[0, refused] == 1:
        return group.should_refuse
    chosen = np.where(group.rows[:, picked] == 1)[0]
    return not group.should_refuse and bool(group.labels[chosen].any())


@dataclass
class Choice:
    accuracy: float  # held out, on the benchmark's dev documents
    c: float
    c_answerable: float
    policy: Policy
    scores: dict[str, np.ndarray]
    answerable: dict[str, float]


def meets_gates(policy: Policy, groups: list[Group], scores: dict[str, np.ndarray],
                answerable: dict[str, float], gates: dict[str, float]) -> bool:  # fmt: skip
    """Whether ``policy`` keeps a gated suite's correctness and refusal gates."""

    quoted = [policy.quoted(scores[g.meta["id"]], answerable[g.meta["id"]]) for g in groups]
    right = [judged_right(g, q) for g, q in zip(groups, quoted, strict=True)]
    refusals = [g for g, q in zip(groups, quoted, strict=True) if not q]
    refused = {g.meta["id"] for g in refusals}
    refusing = [g for g in groups if g.should_refuse]
    recall = np.mean([g.meta["id"] in refused for g in refusing]) if refusing else 1.0
    precision = np.mean([g.should_refuse for g in refusals]) if refusals else 1.0
    return (
        len(refusals) < len(groups)
        and float(np.mean(right)) >= gates.get("correctness", 0.0)
        and float(recall) >= gates.get("refusal_recall", 0.0)
        and float(precision) >= gates.get("refusal_precision", 0.0)
    )


def keeps_gates(policy: Policy, groups: list[Group], scores: dict[str, np.ndarray],
                answerable: dict[str, float], gates: dict[str, float]) -> bool:  # fmt: skip
    """``meets_gates`` at the policy's threshold and ``GATE_MARGIN`` below it."""
    lower = replace(policy, threshold=policy.threshold - GATE_MARGIN)
    return meets_gates(policy, groups, scores, answerable, gates) and meets_gates(
        lower, groups, scores, answerable, gates
    )


def choose(groups: list[Group], gates: dict[str, float]) -> Choice:
    """The regularisations and policy with the most held-out benchmark questions right,
    among those whose final models keep the bundled article suite's own gates (its
    correctness and refusal thresholds: the suite CI gates on), at the threshold and
    ``GATE_MARGIN`` below it. Ties go to fewer sentences, then the higher refusal
    threshold (the cautious side)."""
    dev = [g for g in groups if g.origin == "dev"]
    benchmark = [g for g in dev if g.document != ARTICLE]
    article = [g for g in dev if g.document == ARTICLE]
    best: Choice | None = None
    fallback: Choice | None = None
    for c in C_GRID:
        scores = cross_validate(groups, c)
        sentence = _fit(groups, c)
        fitted = {g.meta["id"]: _probabilities(g, sentence) for g in article}
        for c_answerable in C_ANSWERABLE_GRID:
            held = cross_validate_answerable(groups, scores, c_answerable)
            final = _fit_answerable(dev, scores, c_answerable)
            article_answerable = dict(
                zip([g.meta["id"] for g in article],
                    map(float, final(_question_rows(article, fitted))), strict=True)
            )  # fmt: skip
            for policy in policies():
                if mean_quoted(policy, benchmark, scores, held) > MAX_MEAN_QUOTED:
                    continue
                accuracy = float(np.mean([
                    policy.right(g, scores[g.meta["id"]], held[g.meta["id"]]) for g in benchmark
                ]))  # fmt: skip
                candidate = Choice(accuracy, c, c_answerable, policy, scores, held)
                if fallback is None or _better(candidate, fallback):
                    fallback = candidate
                if (best is None or _better(candidate, best)) and keeps_gates(
                    policy, article, fitted, article_answerable, gates
                ):
                    best = candidate
    if best is None:
        print("No policy keeps the article suite's gates; taking the best held-out one.",
              file=sys.stderr)  # fmt: skip
    chosen = best or fallback
    assert chosen is not None
    return chosen


def mean_quoted(policy: Policy, groups: Sequence[Group], scores: dict[str, np.ndarray],
                answerable: dict[str, float]) -> float:  # fmt: skip
    """Candidates quoted per answered question (held out; antecedents come on top)."""
    counts = [len(policy.quoted(scores[g.meta["id"]], answerable[g.meta["id"]])) for g in groups]
    answered = [n for n in counts if n]
    return float(np.mean(answered)) if answered else 0.0


def _better(a: Choice, b: Choice) -> bool:
    def key(x: Choice) -> tuple[float, int, float]:
        return (round(x.accuracy, 6), -x.policy.max_sentences, x.policy.threshold)

    return key(a) > key(b)


def report(groups: list[Group], choice: Choice) -> dict[str, Any]:
    """Per labelled document: questions, the rules' right answers, the model's (held out)."""
    dev = [g for g in groups if g.origin == "dev"]
    by_document: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "rules": 0, "model": 0})
    for g in dev:
        row = by_document[g.document]
        row["n"] += 1
        row["rules"] += rules_right(g)
        row["model"] += choice.policy.right(
            g, choice.scores[g.meta["id"]], choice.answerable[g.meta["id"]]
        )
    reachable = [g for g in dev if g.labels.any()]
    first = np.mean([g.labels[int(np.argmax(choice.scores[g.meta["id"]]))] for g in reachable])
    return {
        "questions": len(dev),
        "answerable": sum(not g.should_refuse for g in dev),
        "reachable": len(reachable),
        # Both on the benchmark's dev documents (the article's questions are a gate).
        "cv_right": round(choice.accuracy, 4),
        "rules_right": round(
            float(np.mean([rules_right(g) for g in dev if g.document != ARTICLE])), 4
        ),
        "cv_right_first": round(float(first), 4),
        "by_document": dict(sorted(by_document.items())),
        "where_lost": where_lost([g for g in dev if g.document != ARTICLE], choice),
    }


def where_lost(groups: list[Group], choice: Choice) -> dict[str, float]:
    """Where held-out answers are lost, beside the share right as chosen (``cv_right``),
    on the same held-out scores: the share right if nothing were refused (what the
    answerability model adds); if every refusal were right and nothing else changed
    (what a perfect answerability model would add); and the ceiling of these candidates
    (every answerable question with a right sentence among them quoted, every other
    refused)."""
    if not groups:
        return {"never_refusing": 0.0, "perfect_refusal": 0.0, "ceiling": 0.0}

    def share(answerable: Callable[[Group], float]) -> float:
        right = [choice.policy.right(g, choice.scores[g.meta["id"]], answerable(g)) for g in groups]
        return round(float(np.mean(right)), 4)

    ceiling = np.mean([g.should_refuse or bool(g.labels.any()) for g in groups])
    return {
        "never_refusing": share(lambda g: 1.0),
        "perfect_refusal": share(lambda g: 0.0 if g.should_refuse else 1.0),
        "ceiling": round(float(ceiling), 4),
    }


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


def train(groups: list[Group], embedding_model: str, with_generated: bool) -> SelectorModel:
    gates = load_suite(ARTICLE_SUITE).thresholds
    choice = choose(groups, gates)
    dev = [g for g in groups if g.origin == "dev"]
    return SelectorModel(
        features=FEATURES,
        sentence=_fit(groups, choice.c),
        question_features=QUESTION_FEATURES,
        answerable=_fit_answerable(dev, choice.scores, choice.c_answerable),
        threshold=choice.policy.threshold,
        include_threshold=choice.policy.include_threshold,
        max_sentences=choice.policy.max_sentences,
        embedding_model=embedding_model,
        chunker_version=CHUNKER_VERSION,
        trained={
            "by": "python -m evals.selector_train",
            "seed": SEED,
            "reader": load_reader().identity,
            "regularisation_c": choice.c,
            "answerable_regularisation_c": choice.c_answerable,
            "with_generated": with_generated,
            "with_drafted": any(g.origin == "drafted" for g in groups),
            "candidates": CANDIDATES,
            "labels": _labels(groups),
            "cross_validation": report(groups, choice),
        },
    )


def _labels(groups: list[Group]) -> str:
    counts = Counter(g.origin for g in groups)
    named = {"dev": "labelled (benchmark dev + article)", "drafted": "drafted",
             "generated": "LLM-generated"}  # fmt: skip
    return ", ".join(f"{counts[k]} {named[k]} questions" for k in named if counts[k])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Train the learned answer selector from the committed labels."
    )
    parser.add_argument("--out", type=Path, default=PACKAGED_MODEL, help="weights file to write")
    parser.add_argument(
        "--with-generated",
        action="store_true",
        help="also train on the LLM-written questions (evals/selector; weak labels)",
    )
    parser.add_argument(
        "--with-drafted",
        action="store_true",
        help="also train the sentence model on the drafted suites of evals/selector/drafted "
        "(not the default: see DRAFTED_DIR)",
    )
    parser.add_argument(
        "--without-reader",
        action="store_true",
        help="ablation: the reader's features zeroed, to measure what it adds (write the "
        "weights elsewhere with --out: the selector is meant to use the reader)",
    )
    args = parser.parse_args(argv)
    from rag.settings import load_settings

    groups = build_training_groups(args.with_generated, args.with_drafted)
    if args.without_reader:
        groups = [replace(g, rows=without_reader(g.rows)) for g in groups]
    model = train(groups, load_settings().embedding_model, args.with_generated)
    cv = model.trained["cross_validation"]
    print(
        f"{cv['questions']} labelled questions; a right sentence among the {CANDIDATES} "
        f"candidates for {cv['reachable']} of {cv['answerable']} answerable"
    )
    print(
        "benchmark dev documents, each held out (leave one document out): "
        f"{cv['cv_right']:.3f} right against the rules' "
        f"{cv['rules_right']:.3f}; C={model.trained['regularisation_c']}/"
        f"{model.trained['answerable_regularisation_c']}, refuse below P(answerable) "
        f"{model.threshold:.3f}, extra sentences from P(answers) {model.include_threshold:.3f}, "
        f"at most {model.max_sentences} sentences"
    )
    lost = cv["where_lost"]
    print(
        f"where held-out answers are lost: {cv['cv_right']:.3f} right as chosen, "
        f"{lost['never_refusing']:.3f} if nothing were refused, {lost['perfect_refusal']:.3f} "
        f"with every refusal right, {lost['ceiling']:.3f} at most on these candidates"
    )
    print(f"{'document':<28} {'n':>4} {'rules':>6} {'model':>6}")
    for name, row in cv["by_document"].items():
        print(f"{name:<28} {row['n']:>4} {row['rules']:>6} {row['model']:>6}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
