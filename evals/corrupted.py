"""Testing the metric: deliberately corrupted answers must score as unfaithful.

From each claim of a claims file (sentence + verbatim quote in the document) this
builds labelled pairs of (answer sentence, cited quote):

- faithful: the quote itself, the quote's own sentence, the claim's paraphrase, and
  the hand-written faithful paraphrases in ``suites/verifier.yaml``;
- unfaithful: a number changed, a negation flipped, a name invented, a true sentence
  cited to the wrong quote, a sentence cited to an unrelated quote, plus the
  hand-written corruptions in the same file.

``evaluate_verifier`` runs ``rag.answering.verify.Verifier`` on every pair and reports its
precision and recall at flagging the unfaithful ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from evals.schema import Claim
from rag.answering.verify import Verifier
from rag.documents.chunking import split_sentences
from rag.text import names, numbers
from rag.types import Citation, Document

_NUMBER_SWAPS = {
    "2015": "2017", "2020": "2021", "40%": "60%", "six": "four", "twice": "three times",
    "thousands": "hundreds", "December": "March", "3": "5", "4": "7",
}  # fmt: skip
_NEGATE = [
    (r"\bdoes not\b", "does"), (r"\bis\b", "is not"), (r"\bare\b", "are not"),
    (r"\bmay\b", "may not"), (r"\brequires\b", "does not require"), (r"\bwas\b", "was not"),
    (r"\bcame\b", "did not come"), (r"\bbought\b", "did not buy"), (r"\brelied\b", "never relied"),
    (r"\buses\b", "does not use"), (r"\bdominate\b", "do not dominate"),
]  # fmt: skip
_INVENTED = ["Zenith Semiconductor", "Dr. Maria Okafor", "Intel", "Samsung"]


@dataclass(frozen=True)
class Pair:
    id: str
    sentence: str
    quote: str
    faithful: bool
    corruption: str  # "none" for faithful pairs


def _swap_number(text: str) -> str | None:
    for old, new in _NUMBER_SWAPS.items():
        if re.search(rf"\b{re.escape(old)}(?!\w)", text):
            return re.sub(rf"\b{re.escape(old)}(?!\w)", new, text, count=1)
    return None


def _flip_negation(text: str) -> str | None:
    for pattern, replacement in _NEGATE:
        if re.search(pattern, text):
            return re.sub(pattern, replacement, text, count=1)
    return None


def _invent_name(text: str, n: int) -> str:
    name = _INVENTED[n % len(_INVENTED)]
    names = re.findall(
        r"\b(?:Amazon|AWS|Nvidia|AMD|Annapurna Labs|Google|OpenAI|Anthropic)\b", text
    )
    if names:
        return text.replace(names[0], name, 1)
    return f"According to {name}, {text[0].lower()}{text[1:]}"


def supporting_span(claim: Claim, document: Document) -> str:
    """The sentence(s) that support a claim: the sentence holding its quote, extended
    back (within its section) until the claim's names and numbers are all there,
    as an answer citing its context would ("It is smaller..." needs "Trainium 3")."""
    at = document.text.find(claim.quote, document.body_start)
    spans = [s for s in split_sentences(document) if not s.is_heading or s.start <= at < s.end]
    index = next(i for i, s in enumerate(spans) if s.start <= at < s.end or s.start >= at)
    last = index
    while last + 1 < len(spans) and spans[last].end < at + len(claim.quote):
        last += 1
    first = index
    needed = names(claim.text) | numbers(claim.text)
    while first > 0 and spans[first - 1].heading == spans[index].heading:
        have = document.text[spans[first].start : spans[last].end]
        if needed <= names(have) | numbers(have) | {w.lower() for w in have.split()}:
            break
        first -= 1
    return document.text[spans[first].start : spans[last].end]


def build_pairs(claims: list[Claim], document: Document, extra: Path | None = None) -> list[Pair]:
    pairs: list[Pair] = []
    for n, claim in enumerate(claims):
        quote = supporting_span(claim, document)
        pairs.append(Pair(f"{claim.id}-verbatim", claim.quote, quote, True, "none"))
        pairs.append(Pair(f"{claim.id}-claim", claim.text, quote, True, "none"))
        swapped = _swap_number(claim.text)
        if swapped:
            pairs.append(Pair(f"{claim.id}-number", swapped, quote, False, "number changed"))
        flipped = _flip_negation(claim.text)
        if flipped:
            pairs.append(Pair(f"{claim.id}-negation", flipped, quote, False, "negation flipped"))
        pairs.append(
            Pair(f"{claim.id}-name", _invent_name(claim.text, n), quote, False, "invented name")
        )
        other = claims[(n + 7) % len(claims)]
        pairs.append(Pair(f"{claim.id}-wrong-quote", claim.text, supporting_span(other, document),
                          False, "true sentence, wrong quote"))  # fmt: skip
        far = claims[(n + len(claims) // 2) % len(claims)]
        pairs.append(Pair(f"{claim.id}-unrelated", far.text, quote, False, "unrelated quote"))
    if extra is not None and extra.is_file():
        data = yaml.safe_load(extra.read_text(encoding="utf-8"))
        for row in data.get("pairs", []):
            pairs.append(
                Pair(
                    str(row["id"]),
                    str(row["sentence"]),
                    str(row["quote"]),
                    bool(row["faithful"]),
                    str(row.get("corruption", "none")),
                )
            )
    return pairs


def evaluate_verifier(
    pairs: list[Pair], document_text: str, source: str, verifier: Verifier | None = None
) -> dict[str, Any]:
    """Precision and recall of the verifier at flagging unfaithful pairs."""
    verifier = verifier or Verifier()
    documents = {source: document_text}
    rows = []
    for pair in pairs:
        start = document_text.find(pair.quote)
        if start < 0:
            raise ValueError(f"{pair.id}: quote not in {source}: {pair.quote!r}")
        citation = Citation(1, source, "", None, pair.quote, start, start + len(pair.quote))
        verdict = verifier.check(pair.sentence, [citation], documents)
        rows.append((pair, not verdict.ok, verdict.reasons))
    flagged_bad = sum(1 for p, flagged, _ in rows if flagged and not p.faithful)
    flagged = sum(1 for _, flagged, _ in rows if flagged)
    bad = sum(1 for p, _, _ in rows if not p.faithful)
    by_corruption: dict[str, dict[str, int]] = {}
    for pair, flag, _ in rows:
        stats = by_corruption.setdefault(pair.corruption, {"pairs": 0, "flagged": 0})
        stats["pairs"] += 1
        stats["flagged"] += int(flag)
    return {
        "pairs": len(rows),
        "unfaithful": bad,
        "precision": flagged_bad / flagged if flagged else 1.0,
        "recall": flagged_bad / bad if bad else 1.0,
        "by_corruption": by_corruption,
        "misses": [
            {"id": p.id, "sentence": p.sentence, "quote": p.quote, "corruption": p.corruption}
            for p, flag, _ in rows if not flag and not p.faithful
        ],
        "false_alarms": [
            {"id": p.id, "sentence": p.sentence, "reasons": list(r)}
            for p, flag, r in rows if flag and p.faithful
        ],
    }  # fmt: skip


def calibrate(
    pairs: list[Pair],
    document_text: str,
    source: str,
    similarity: Any = None,
    thresholds: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.65, 0.7, 0.8, 0.9, 1.0),
) -> dict[str, Any]:
    """Precision/recall of the verifier across content-coverage thresholds, and the
    embedding-similarity distribution per corruption (to place ``MIN_SIMILARITY``)."""
    sweep = []
    for threshold in thresholds:
        result = evaluate_verifier(pairs, document_text, source, Verifier(min_coverage=threshold))
        sweep.append({"min_coverage": threshold, "precision": round(result["precision"], 4),
                      "recall": round(result["recall"], 4)})  # fmt: skip
    spread: dict[str, dict[str, float]] = {}
    if similarity is not None:
        by_kind: dict[str, list[float]] = {}
        for pair in pairs:
            by_kind.setdefault(pair.corruption, []).append(similarity(pair.sentence, pair.quote))
        for kind, values in by_kind.items():
            ordered = sorted(values)
            spread[kind] = {"min": round(ordered[0], 3),
                            "median": round(ordered[len(ordered) // 2], 3),
                            "max": round(ordered[-1], 3)}  # fmt: skip
    return {"coverage_sweep": sweep, "similarity": spread}
