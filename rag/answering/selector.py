"""The learned answer selector: whether the documents answer, and which sentences
do, decided by models trained on labelled questions instead of hand-written rules.

Two logistic models, whose weights ship in ``rag/models/selector.json`` (trained by
``make train``: ``evals.selector_train``; numpy only at query time):

1. per candidate, P(this sentence answers the question) from the features of
   ``rag.answering.selector_features`` (retrieval scores and ranks, term coverage, and every
   old rule as a signal, not a veto);
2. per question, P(the documents answer it) from how the candidates scored and the
   question-wide signals (question terms no sentence holds, a name, value type or
   attribute asked about that no candidate has, the rules' verdict).

Deciding:

- the question is refused when P(the documents answer it) is below ``threshold``
  (calibrated at training time; the ``selector_threshold`` setting overrides it);
- otherwise the best candidate is quoted, plus up to ``max_sentences - 1`` more whose
  P(answers) reaches ``include_threshold``: the right sentence is often the second
  or third best, and a quote is never unfaithful, so a short list of likely answers
  beats a single guess;
- each quoted sentence brings its pronoun's antecedent and the items of a list it
  introduces, as with the rules (``rag.answering.answer.with_context``); the likeliest answer
  comes first.

The one rule that stays a veto is the screening of instruction-like text (possible
prompt injection): such a sentence is never quoted, whatever its score.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.answering import answer as rules
from rag.answering.answer import Scored, Selection, with_context
from rag.answering.question import analyze
from rag.answering.reader import READER_DIR, Reader, load_reader
from rag.answering.selector_features import FEATURES, features, reader_logits
from rag.documents.chunking import CHUNKER_VERSION
from rag.errors import IndexCorruptError
from rag.index.retrieval import CorpusView, Evidence
from rag.settings import Settings

MODEL_FORMAT = 3
PACKAGED_MODEL = Path(__file__).resolve().parent.parent / "models" / "selector.json"
RETRAIN_HINT = "Retrain it with: make train (or use the rules: RAG_ANSWER_SELECTOR=rules)"


# The answerability model's inputs: how the candidates scored, and the question-wide
# signals (``q_*`` in ``FEATURES``). Whether the documents answer is a decision about
# the question, not about one sentence.
QUESTION_FEATURES: tuple[str, ...] = (
    "best_reader",  # the reader's best logit
    "reader_gap",  # its best minus its second best
    "reader_none",  # the reader's P(no candidate answers)
    # What the reader's best sentence lacks: the value type asked for (a price, a
    # year, a count), an attribute asked about, a name asked about. A reader that
    # matched the topic but not the ask leaves these set.
    "reader_type_missing",
    "reader_attribute_missing",
    "reader_names_missing",
    "best",  # the best candidate's P(answers)
    "best_logit",
    "gap",  # best minus second best
    "top3",  # the three best summed
    "best_dense",
    "unknown_terms",
    "best_coverage",
    "names_nowhere",
    "type_nowhere",
    "attribute_nowhere",
    "rules_refused",
    "followup",
    "instructs",  # the question holds an instruction to an AI
)


def question_features(p: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One row of ``QUESTION_FEATURES`` from a question's candidate rows and their
    P(answers)."""
    if not len(p):
        return np.zeros(len(QUESTION_FEATURES))
    top = np.sort(p)[::-1]
    best = float(np.clip(top[0], 1e-6, 1 - 1e-6))
    second = float(top[1]) if len(top) > 1 else 0.0
    first = rows[0]

    def column(name: str) -> float:
        return float(first[FEATURES.index(name)])

    logits = np.sort(rows[:, FEATURES.index("reader")])[::-1]
    reader_gap = float(logits[0] - logits[1]) if len(logits) > 1 else 0.0
    read = rows[int(np.argmax(rows[:, FEATURES.index("reader")]))]

    def lacks(asked: str, present: str) -> float:
        return float(read[FEATURES.index(asked)] == 1 and read[FEATURES.index(present)] == 0)

    return np.array(
        [
            float(logits[0]),
            reader_gap,
            column("q_reader_none"),
            lacks("type_asked", "type_present"),
            lacks("attribute_asked", "attribute_present"),
            lacks("names_asked", "names_covered"),
            best,
            float(np.log(best / (1 - best))),
            best - second,
            float(top[:3].sum()),
            float(rows[:, FEATURES.index("dense")].max()),
            column("q_unknown_terms"),
            column("q_best_coverage"),
            column("q_names_nowhere"),
            column("q_type_nowhere"),
            column("q_attribute_nowhere"),
            column("rules_refused"),
            column("followup"),
            column("q_instructs"),
        ]
    )


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic regression: P = sigmoid(((x - mean) / scale) . coef + b)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(((x - self.mean) / self.scale) @ self.coef + self.intercept)))

    def to_json(self) -> dict[str, Any]:
        return {
            "mean": [round(float(v), 8) for v in self.mean],
            "scale": [round(float(v), 8) for v in self.scale],
            "coef": [round(float(v), 8) for v in self.coef],
            "intercept": round(float(self.intercept), 8),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Logistic:
        return cls(
            mean=np.asarray(raw["mean"], dtype=np.float64),
            scale=np.asarray(raw["scale"], dtype=np.float64),
            coef=np.asarray(raw["coef"], dtype=np.float64),
            intercept=float(raw["intercept"]),
        )


@dataclass(frozen=True)
class SelectorModel:
    """Two trained logistic models and their calibrated decision: ``sentence`` gives
    P(this candidate answers) over ``FEATURES``; ``answerable`` gives P(the documents
    answer the question) over ``QUESTION_FEATURES``."""

    features: tuple[str, ...]
    sentence: Logistic
    question_features: tuple[str, ...]
    answerable: Logistic
    threshold: float  # refuse when P(answerable) is below it
    include_threshold: float  # more sentences are quoted from this P(answers) on
    max_sentences: int
    embedding_model: str
    chunker_version: int
    trained: dict[str, Any]

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        return self.sentence(rows) if len(rows) else np.zeros(0)

    def answerability(self, p: np.ndarray, rows: np.ndarray) -> float:
        if not len(p):
            return 0.0
        return float(self.answerable(question_features(p, rows)[None, :])[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "kind": "logistic, two stages",
            "features": list(self.features),
            "sentence": self.sentence.to_json(),
            "question_features": list(self.question_features),
            "answerable": self.answerable.to_json(),
            "threshold": self.threshold,
            "include_threshold": self.include_threshold,
            "max_sentences": self.max_sentences,
            "embedding_model": self.embedding_model,
            "chunker_version": self.chunker_version,
            "trained": self.trained,
        }


def load_model(path: Path | None = None) -> SelectorModel:
    """The selector's weights (the packaged ones unless ``path``); refuses a file made
    for other features than this version computes."""
    return _load(str(path or PACKAGED_MODEL))


@lru_cache(maxsize=4)
def _load(path: str) -> SelectorModel:
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        model = SelectorModel(
            features=tuple(raw["features"]),
            sentence=Logistic.from_json(raw["sentence"]),
            question_features=tuple(raw["question_features"]),
            answerable=Logistic.from_json(raw["answerable"]),
            threshold=float(raw["threshold"]),
            include_threshold=float(raw["include_threshold"]),
            max_sentences=int(raw["max_sentences"]),
            embedding_model=str(raw["embedding_model"]),
            chunker_version=int(raw["chunker_version"]),
            trained=dict(raw.get("trained", {})),
        )
        fmt = raw.get("format")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(f"The answer selector's weights {path} are unreadable ({exc}). "
                                f"{RETRAIN_HINT}") from exc  # fmt: skip
    if (
        fmt != MODEL_FORMAT
        or model.features != FEATURES
        or model.question_features != QUESTION_FEATURES
    ):
        raise IndexCorruptError(
            f"The answer selector's weights {path} were made for other features than this "
            f"version computes. {RETRAIN_HINT}"
        )
    return model


def check_compatible(model: SelectorModel, embedding_model: str, chunker_version: int) -> None:
    """The model's scores are calibrated for one embedding model's cosines and one
    splitter's sentences: another pair needs a retrained selector."""
    if model.embedding_model != embedding_model or model.chunker_version != chunker_version:
        raise IndexCorruptError(
            f"The answer selector was trained for embedding model {model.embedding_model!r} "
            f"and chunker version {model.chunker_version}, but the index uses "
            f"{embedding_model!r} and chunker version {chunker_version}. {RETRAIN_HINT}"
        )


def check_reader(model: SelectorModel, reader: Reader) -> None:
    """The selector's weights are fitted to one reader's logits: another reader (a
    retrained one) needs the selector retrained on its scores."""
    wanted = model.trained.get("reader")
    if wanted is not None and wanted != reader.identity:
        raise IndexCorruptError(
            f"The answer selector was trained on the scores of reader {wanted}, but the "
            f"reader in use is {reader.identity}. {RETRAIN_HINT}"
        )


class Selector(Protocol):
    """Decides which retrieved sentences answer the question, or refuses."""

    name: str

    def select(
        self, question: str, candidates: list[Evidence], view: CorpusView, asked: str | None = None
    ) -> Selection: ...


class RuleSelector:
    """The hand-written rules of ``rag.answering.answer`` (the first version's selector)."""

    name = "rules"

    def select(
        self, question: str, candidates: list[Evidence], view: CorpusView, asked: str | None = None
    ) -> Selection:
        return rules.select(question, candidates, view, asked)


def make_selector(settings: Settings) -> Selector:
    """The selector the settings name (``answer_selector``)."""
    if settings.answer_selector == "rules":
        return RuleSelector()
    return learned_selector(settings)


def learned_selector(settings: Settings) -> LearnedSelector:
    """The learned selector with the settings' weights, threshold and sentence count,
    and the reader (``rag.answering.reader``) its features start from."""
    reader = load_reader(str(settings.reader_model_path or READER_DIR), settings.query_threads)
    return LearnedSelector(
        load_model(settings.selector_model_path),
        settings.embedding_model,
        settings.selector_threshold,
        settings.selector_max_sentences,
        reader=reader,
    )


@dataclass(frozen=True)
class Quote:
    """The learned selector's choice before the refusal bar: the sentences it would
    quote (likeliest first, with their context), every candidate scored, and P(the
    documents answer the question)."""

    sentences: list[Evidence]
    scored: list[Scored]
    answerable: float


class LearnedSelector:
    """Chooses the sentences to quote by the trained model's probabilities."""

    name = "learned"

    def __init__(
        self,
        model: SelectorModel,
        embedding_model: str,
        threshold: float | None = None,
        max_sentences: int | None = None,
        reader: Reader | None = None,
    ) -> None:
        check_compatible(model, embedding_model, CHUNKER_VERSION)
        self.reader = reader or load_reader()
        check_reader(model, self.reader)
        self.model = model
        self.threshold = model.threshold if threshold is None else threshold
        self.max_sentences = max_sentences or model.max_sentences
        self.include_threshold = model.include_threshold

    def quote(
        self, question: str, candidates: list[Evidence], view: CorpusView, asked: str | None
    ) -> Quote:
        """What it would quote at any refusal bar, with P(the documents answer it)."""
        logits = reader_logits(question, candidates, self.reader)
        rows = features(question, candidates, view, asked, logits)
        p = self.model.probabilities(rows)
        # Screening stays a veto: text that reads as an instruction is never quoted.
        screened = np.array([e.instruction_like for e in candidates], dtype=bool)
        p = np.where(screened, 0.0, p)
        answerable = self.model.answerability(p, rows)
        order = [int(i) for i in np.argsort(-p, kind="stable")]
        coverage = rows[:, FEATURES.index("coverage")]
        scored = [self._scored(candidates[i], float(p[i]), float(coverage[i])) for i in order]
        if not order or p[order[0]] <= 0.0:  # nothing retrieved, or only screened text
            return Quote([], scored, answerable)
        chosen = [candidates[order[0]]]
        for i in order[1:]:
            if len(chosen) >= self.max_sentences or p[i] < self.include_threshold:
                break
            if all((candidates[i].source, candidates[i].start) != (c.source, c.start)
                   for c in chosen):  # fmt: skip
                chosen.append(candidates[i])
        quoted = with_context(analyze(question), chosen, view, by_rank=True)
        return Quote(quoted, scored, answerable)

    def select(
        self, question: str, candidates: list[Evidence], view: CorpusView, asked: str | None = None
    ) -> Selection:
        if not candidates:
            return Selection([], True, "nothing retrieved", [])
        quote = self.quote(question, candidates, view, asked)
        if quote.answerable < self.threshold or not quote.sentences:
            reason = (
                f"the documents likely don't answer it (P {quote.answerable:.2f} < threshold "
                f"{self.threshold:.2f})"
            )
            return Selection([], True, reason, quote.scored)
        return Selection(quote.sentences, False, "", quote.scored)

    def _scored(self, evidence: Evidence, p: float, coverage: float) -> Scored:
        reason = ""
        if evidence.instruction_like:
            reason = "reads as an instruction to an AI (possible prompt injection)"
        elif p < self.include_threshold:
            reason = f"P(answers) {p:.2f} < {self.include_threshold:.2f}"
        return Scored(
            evidence=evidence,
            dense=evidence.dense,
            coverage=coverage,
            relevance=p,
            can_answer=not reason,
            corrects_premise=False,
            reason=reason,
        )
