"""Claim-level metrics without an LLM judge: per case, then per kind and overall.

- faithfulness: share of answer sentences the verifier (``rag.answering.verify``) finds
  supported by their cited quotes;
- citation validity: share of quotes that are exactly the source text at their offsets;
- correctness: the expected facts are stated within the answer's first two quoted
  sentences (the lead-two rule: a quoted antecedent or list item counts as a sentence,
  so an answer cannot earn the fact by quoting more), or the case is refused when it
  should be, and no forbidden content appears; ``correctness_anywhere`` is the older,
  looser figure (the facts anywhere in the answer);
- quoting: over answered cases, the mean quoted sentences and characters per answer;
- context recall: an expected quote is among the retrieved evidence;
- refusal precision / recall over cases that say whether to refuse;
- hallucinations: numbers and names in answers that the corpus does not contain;
- latency p50 / p95.

An optional judge (``Judge``) adds a second faithfulness score beside the
deterministic one; none ships here (the generative issue provides an LLM judge).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from evals.schema import Case
from rag.answering.verify import Verifier, quote_is_exact
from rag.stats import percentile
from rag.text import names, numbers, words
from rag.types import Citation

# (question, answer sentence, its quotes) -> support in [0, 1]
Judge = Callable[[str, str, Sequence[str]], float]


@dataclass
class CaseResult:
    case: Case
    answer: dict[str, Any]
    latency_ms: float
    correct: bool
    faithfulness: float | None  # None when there is nothing to check (a refusal)
    citations_valid: int
    citations_total: int
    context_recall: bool | None
    hallucinations: list[str]
    reasons: list[str] = field(default_factory=list)
    verifier: list[dict[str, Any]] = field(default_factory=list)
    judge_faithfulness: float | None = None
    # The expected facts are stated somewhere in the answer (the looser, older rule).
    correct_anywhere: bool | None = None

    @property
    def refused(self) -> bool:
        return bool(self.answer["refused"])

    @property
    def passed(self) -> bool:
        return (
            self.correct
            and (self.faithfulness is None or self.faithfulness >= 1.0)
            and self.citations_valid == self.citations_total
            and not self.hallucinations
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.case.id,
            "kind": self.case.kind,
            "claim": self.case.claim,
            "question": self.case.question,
            "history": list(self.case.history),
            "expected": [list(g) for g in self.case.expected],
            "reference": self.case.reference,
            "passed": self.passed,
            "correct": self.correct,
            "correct_anywhere": self.correct_anywhere,
            "refused": self.refused,
            "should_refuse": self.case.should_refuse,
            "faithfulness": self.faithfulness,
            "judge_faithfulness": self.judge_faithfulness,
            "citations_valid": self.citations_valid,
            "citations_total": self.citations_total,
            "context_recall": self.context_recall,
            "hallucinations": self.hallucinations,
            "latency_ms": round(self.latency_ms, 2),
            "reasons": self.reasons,
            "verifier": self.verifier,
            "answer": self.answer,
        }


class CorpusFacts:
    """The numbers and names the indexed corpus contains (for hallucination checks)."""

    def __init__(self, texts: Sequence[str]) -> None:
        joined = "\n".join(texts)
        self.numbers = numbers(joined)
        self.words = {w.lower().removesuffix("'s").removesuffix("’s") for w in words(joined)}

    def unknown(self, text: str) -> list[str]:
        missing = [f"number {n}" for n in sorted(numbers(text) - self.numbers)]
        missing += [f"name {n}" for n in sorted(names(text)) if not self._has_name(n)]
        return missing

    def _has_name(self, name: str) -> bool:
        return all(part in self.words for part in name.split())


def _states(text: str, fact: str) -> bool:
    return " ".join(fact.lower().split()) in " ".join(text.lower().split())


# How many quoted sentences an answer may take to state its expected facts.
LEAD_QUOTES = 2


def lead_text(answer: Mapping[str, Any], lead: int = LEAD_QUOTES) -> str:
    """What the answer says within its first ``lead`` quoted sentences: those quotes,
    and the answer sentences that cite nothing else (an LLM's own wording of them).

    Quotes count in the order the answer first cites them; each citation is one quoted
    sentence, a quoted antecedent or list item included."""
    order: list[int] = []
    for sentence in answer["sentences"]:
        order += [i for i in sentence["citations"] if i not in order]
    first = set(order[:lead])
    quotes = [str(c["quote"]) for c in answer["citations"] if c["id"] in first]
    said = [
        str(s["text"])
        for s in answer["sentences"]
        if s["citations"] and set(s["citations"]) <= first
    ]
    return "\n".join(quotes + said)


def score_case(
    case: Case,
    answer: dict[str, Any],
    latency_ms: float,
    documents: Mapping[str, str],
    facts: CorpusFacts,
    verifier: Verifier | None = None,
    judge: Judge | None = None,
) -> CaseResult:
    verifier = verifier or Verifier()
    text = str(answer["answer"])
    refused = bool(answer["refused"])
    reasons: list[str] = []

    should = case.should_refuse
    correct = True
    if should is True and not refused:
        correct = False
        reasons.append("answered, but the documents do not say this")
    elif should is False and refused:
        correct = False
        reasons.append("refused a question the documents answer")
    anywhere = correct
    if not refused:
        lead = lead_text(answer)
        for group in case.expected:
            if not any(_states(text, alt) for alt in group):
                correct = anywhere = False
                reasons.append("missing expected fact: " + " / ".join(group))
            elif not any(_states(lead, alt) for alt in group):
                correct = False
                reasons.append(
                    f"expected fact only after the first {LEAD_QUOTES} quotes: " + " / ".join(group)
                )
    for bad in case.forbidden:
        if _states(text, bad):
            correct = anywhere = False
            reasons.append(f"states forbidden content: {bad}")

    citations = {
        c["id"]: Citation(
            c["id"],
            c["source"],
            c["title"],
            c["page"],
            c["quote"],
            c["start"],
            c["end"],
            bool(c.get("ocr", False)),
        )
        for c in answer["citations"]
    }
    valid = sum(1 for c in citations.values() if quote_is_exact(c, documents))
    if valid < len(citations):
        reasons.append(f"{len(citations) - valid} citation(s) not at their offsets")

    faithfulness: float | None = None
    judge_scores: list[float] = []
    checks: list[dict[str, Any]] = []
    if not refused:
        supported = 0
        sentences = answer["sentences"]
        for sentence in sentences:
            cited = [citations[i] for i in sentence["citations"] if i in citations]
            verdict = verifier.check(sentence["text"], cited, documents)
            supported += verdict.ok
            checks.append(
                {"text": sentence["text"], "ok": verdict.ok, "reasons": list(verdict.reasons)}
            )
            if judge is not None:
                judge_scores.append(
                    judge(case.question, sentence["text"], [c.quote for c in cited])
                )
        faithfulness = supported / len(sentences) if sentences else 0.0
        if faithfulness < 1.0:
            reasons.append(f"faithfulness {faithfulness:.2f}: unsupported sentences")

    context_recall: bool | None = None
    if case.expected_quote:
        evidence = " ".join(str(e["quote"]) for e in answer["evidence"])
        context_recall = any(_states(evidence, q) for q in case.expected_quote)

    hallucinations = [] if refused else facts.unknown(text)
    if hallucinations:
        reasons.append("not in the corpus: " + ", ".join(hallucinations))

    return CaseResult(
        case=case,
        answer=answer,
        latency_ms=latency_ms,
        correct=correct,
        faithfulness=faithfulness,
        citations_valid=valid,
        citations_total=len(citations),
        context_recall=context_recall,
        hallucinations=hallucinations,
        reasons=reasons,
        verifier=checks,
        judge_faithfulness=(sum(judge_scores) / len(judge_scores)) if judge_scores else None,
        correct_anywhere=anywhere,
    )


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _right_anywhere(result: CaseResult) -> bool:
    return result.correct if result.correct_anywhere is None else result.correct_anywhere


def aggregate(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Suite-level figures for a set of case results (all cases, or one kind)."""
    decided = [r for r in results if r.case.should_refuse is not None]
    true_pos = sum(1 for r in decided if r.refused and r.case.should_refuse)
    predicted = sum(1 for r in decided if r.refused)
    actual = sum(1 for r in decided if r.case.should_refuse)
    faithful = [r.faithfulness for r in results if r.faithfulness is not None]
    judged = [r.judge_faithfulness for r in results if r.judge_faithfulness is not None]
    recall = [1.0 if r.context_recall else 0.0 for r in results if r.context_recall is not None]
    quotes = sum(r.citations_total for r in results)
    latencies = [r.latency_ms for r in results]
    answered = [r for r in results if not r.refused]
    return {
        "cases": len(results),
        "passed": sum(1 for r in results if r.passed),
        "correctness": _mean([1.0 if r.correct else 0.0 for r in results]),
        "correctness_anywhere": _mean([1.0 if _right_anywhere(r) else 0.0 for r in results]),
        "answered": len(answered),
        "mean_quoted_sentences": _mean([float(len(r.answer["citations"])) for r in answered]),
        "mean_quoted_chars": _mean(
            [float(sum(len(str(c["quote"])) for c in r.answer["citations"])) for r in answered]
        ),
        "faithfulness": _mean(faithful) if faithful else 1.0,
        "judge_faithfulness": _mean(judged),
        "citation_validity": (sum(r.citations_valid for r in results) / quotes) if quotes else 1.0,
        "context_recall": _mean(recall),
        "refusal_precision": (true_pos / predicted) if predicted else (1.0 if not actual else 0.0),
        "refusal_recall": (true_pos / actual) if actual else None,
        "hallucinations": sum(len(r.hallucinations) for r in results),
        "latency_p50_ms": round(percentile(latencies, 50), 2),
        "latency_p95_ms": round(percentile(latencies, 95), 2),
    }


def check_gate(summary: Mapping[str, Any], thresholds: Mapping[str, float]) -> list[str]:
    """Which thresholds the summary misses (empty: the gate passes)."""
    failures = []
    for key, limit in thresholds.items():
        if key == "max_hallucinations":
            if summary["hallucinations"] > limit:
                failures.append(f"hallucinations {summary['hallucinations']} > {limit:g}")
            continue
        value = summary.get(key)
        if value is not None and value < limit:
            failures.append(f"{key} {value:.3f} < {limit:g}")
    return failures
