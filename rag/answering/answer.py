"""Answering: choose evidence sentences that answer the question, or refuse.

The extractive answerer (the default generator) quotes the documents word for
word. Its work is deciding *whether* the evidence answers the question:

1. Score each retrieved sentence: semantic similarity (dense cosine) and how much
   of the question's weighted terms the sentence, its heading and its previous
   sentence cover.
2. Keep only sentences that can answer: they hold a value of the type asked for
   (a date for "when", an amount for "how much does it cost", ...), mention the
   attribute asked about ("CEO", "revenue"), and mention the question's names.
3. Refuse when nothing is left or the best is too weak. A sentence that
   contradicts the question's premise (a different number, a negation) is
   answered with instead: the documents' actual fact.

Each rule is a public function that can be called on its own (``term_coverage``,
``names_covered``, ``corrects_premise``, ``ordinal_clash``, and the answer-type table
of ``rag.answering.question``): signals a learned selector can take as features. Every weight
and threshold is named below with where its value came from. Word lists and
negation live in ``rag.text``. Does not verify (``rag.answering.verify``), retrieve
(``rag.index.retrieval``) or write the answer (``rag.llm.answerers``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from rag.answering.question import (
    QuestionAnalysis,
    analyze,
    defines,
    has_answer_type,
    is_role_question,
    mentions_attribute,
)
from rag.index.retrieval import CorpusView, Evidence
from rag.text import (
    ORDINALS,
    WH_WORDS,
    content_tokens,
    names,
    negated_terms,
    number_ordinals,
    numbers,
    stem,
    words,
)

REFUSAL = "The documents don't say."

# Every weight and threshold below was set by hand on the bundled article's
# questions (evals/suites/trainium.yaml, the dev questions of the first version) and
# has not been re-tuned on the multi-document benchmark. They are named so that a
# learned selector can take the same signals as features.

# relevance = DENSE_WEIGHT * cosine + COVERAGE_WEIGHT * term coverage: meaning counts
# more than shared words, which paraphrases lack.
DENSE_WEIGHT = 0.6
COVERAGE_WEIGHT = 0.4
# A term found only in the heading or previous sentence counts this much.
CONTEXT_TERM_WEIGHT = 0.5
# A follow-up: the user's own words weigh three times what the history adds.
ASKED_TERMS_WEIGHT = 0.75
HISTORY_TERMS_WEIGHT = 0.25
# The best sentence must reach this relevance, or this cosine alone, to be quoted.
MIN_RELEVANCE = 0.22
MIN_DENSE_ALONE = 0.5
# A premise-correcting sentence wins when it is within this much of the best answer.
PREMISE_TIE_MARGIN = 0.05
# A second sentence is quoted only when this close to the best, and at most
# MAX_SENTENCES are (antecedents and list items come on top).
SECOND_SENTENCE_RATIO = 0.92
MAX_SENTENCES = 2
DEFINITION_BONUS = 0.3  # "What is X?": "chips called X" beats a sentence that uses X
# How far to look back for a pronoun's antecedent, and ahead for a list's items.
ANTECEDENT_LOOKBACK = 4
LIST_ITEMS_AHEAD = 6
PRONOUN_START = re.compile(r"^(?:it|its|they|their|them|this|these|those|he|she)\b", re.I)


@dataclass(frozen=True)
class Scored:
    evidence: Evidence
    dense: float
    coverage: float
    relevance: float
    can_answer: bool
    corrects_premise: bool
    reason: str


@dataclass(frozen=True)
class Selection:
    """What the answerer chose: sentences to quote (in document order) or a refusal."""

    sentences: list[Evidence]
    refused: bool
    reason: str
    scored: list[Scored]


def _idf(view: CorpusView, term: str) -> float:
    df = view.document_frequency(term)
    n = max(1, len(view.ids))
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def weighted_coverage(
    terms: tuple[str, ...], own: set[str], around: set[str], view: CorpusView
) -> float:
    """IDF-weighted share of ``terms`` in ``own``; a term only ``around`` counts
    CONTEXT_TERM_WEIGHT."""
    total = got = 0.0
    for term in terms:
        weight = _idf(view, term)
        total += weight
        if term in own:
            got += weight
        elif term in around:
            got += CONTEXT_TERM_WEIGHT * weight
    return got / total if total else 0.0


def term_coverage(terms: tuple[str, ...], evidence: Evidence, view: CorpusView) -> float:
    """IDF-weighted share of ``terms`` found in the sentence (context counts half)."""
    if not terms:
        return 0.0
    own = set(content_tokens(evidence.quote))
    around = set(content_tokens(f"{evidence.heading} {evidence.context}"))
    return weighted_coverage(terms, own, around, view)


def corrects_premise(analysis: QuestionAnalysis, evidence: Evidence) -> bool:
    """The sentence states a different number, or negates what the question assumes."""
    own = set(content_tokens(evidence.quote))
    shared = len(set(analysis.terms) & own)
    if shared < 2:
        return False
    negated = negated_terms(evidence.quote) - negated_terms(analysis.text)
    if negated & set(analysis.terms):
        return True
    quoted_numbers = numbers(evidence.quote)
    asked = {n for n in analysis.numbers if not n.isdigit() or len(n) == 4 or n.endswith("%")}
    # "three times as powerful" against "twice as powerful": a different figure for
    # the same claim. Entity numbers ("Trainium 3") are single digits and ignored.
    multipliers = {n for n in analysis.numbers if n in {"2", "3", "4", "5", "6", "10", "100"}}
    if asked and quoted_numbers and not asked & quoted_numbers:
        return True
    question_times = re.search(r"\b(times|twice|as \w+ as)\b", analysis.text.lower())
    quote_times = re.search(r"\b(times|twice)\b", evidence.quote.lower())
    return bool(multipliers and question_times and quote_times and not multipliers & quoted_numbers)


def ordinal_clash(analysis: QuestionAnalysis, quote: str) -> str:
    """ "When did the second version come out?" against "The first chip came in 2020,
    followed by a second version": the figure belongs to another thing."""
    asked = {w.lower() for w in words(analysis.text)} & ORDINALS
    if not asked:
        return ""
    for value, ordinal in number_ordinals(quote).items():
        if ordinal not in asked:
            return f"its {value} belongs to the {ordinal}, not the {'/'.join(sorted(asked))}"
    return ""


def names_covered(analysis: QuestionAnalysis, evidence: Evidence) -> bool:
    """Every name in the question appears in the sentence, its heading or its context."""
    if not analysis.names:
        return True
    around = f"{evidence.heading} {evidence.context} {evidence.quote}"
    normalised = " ".join(w.lower() for w in words(around))
    stems = {stem(w) for w in words(around)}
    return all(
        re.search(rf"\b{re.escape(n)}\b", normalised) or (" " not in n and stem(n) in stems)
        for n in analysis.names
    )


def score(
    analysis: QuestionAnalysis,
    candidates: list[Evidence],
    view: CorpusView,
    asked: tuple[str, ...] | None = None,
) -> list[Scored]:
    """Score candidates; ``asked`` are the terms of the user's own words when the
    analysed query also carries earlier turns (a follow-up): what is asked weighs
    three times what the history contributes."""
    dense_floor = min((e.dense for e in candidates if e.dense > 0), default=0.0)
    scored = []
    for evidence in candidates:
        dense = evidence.dense if evidence.dense > 0 else dense_floor
        if asked is None:
            coverage = term_coverage(analysis.terms, evidence, view)
        else:
            history_terms = tuple(t for t in analysis.terms if t not in asked)
            coverage = ASKED_TERMS_WEIGHT * term_coverage(
                asked, evidence, view
            ) + HISTORY_TERMS_WEIGHT * term_coverage(history_terms, evidence, view)
        relevance = DENSE_WEIGHT * dense + COVERAGE_WEIGHT * coverage
        if analysis.defines and defines(analysis.defines, evidence.quote):
            relevance += DEFINITION_BONUS
        reason = ""
        if evidence.instruction_like:
            reason = "reads as an instruction to an AI (possible prompt injection)"
        elif evidence.is_heading and (
            len(words(evidence.quote)) < 6 or words(evidence.quote)[0].lower() in WH_WORDS
        ):
            reason = "a heading, not a statement"
        elif not names_covered(analysis, evidence):
            reason = "does not mention " + ", ".join(sorted(analysis.names))
        elif not has_answer_type(analysis.answer_type, evidence.quote, analysis.names):
            reason = f"holds no {analysis.answer_type}"
        elif analysis.answer_type and (clash := ordinal_clash(analysis, evidence.quote)):
            reason = clash
        else:
            missing = [
                g for g in analysis.attributes
                if not mentions_attribute(g, f"{evidence.quote} {evidence.context}")
            ]  # fmt: skip
            if missing or (is_role_question(analysis) and analysis.answer_type == "name"
                           and not names(evidence.quote) - analysis.names):  # fmt: skip
                reason = "does not state the " + "/".join(sorted(missing[0])[:2] if missing else ())
        corrects = not evidence.instruction_like and corrects_premise(analysis, evidence)
        scored.append(
            Scored(
                evidence=evidence,
                dense=dense,
                coverage=coverage,
                relevance=relevance,
                can_answer=not reason,
                corrects_premise=corrects,
                reason=reason,
            )
        )
    return sorted(scored, key=lambda s: -s.relevance)


def _antecedent(chosen: Evidence, view: CorpusView) -> Evidence | None:
    """For "It is twice as powerful...", the nearest earlier sentence naming "it"."""
    if not PRONOUN_START.match(chosen.quote):
        return None
    for earlier in reversed(view.neighbours(chosen, before=ANTECEDENT_LOOKBACK, after=0)):
        if earlier.is_heading or earlier.heading != chosen.heading or earlier.instruction_like:
            return None
        if not PRONOUN_START.match(earlier.quote):
            return earlier
    return None


def _list_items(chosen: Evidence, view: CorpusView) -> list[Evidence]:
    """A sentence ending in ":" introduces what follows; quote the items too."""
    if not chosen.quote.rstrip().endswith(":"):
        return []
    items = []
    for following in view.neighbours(chosen, before=0, after=LIST_ITEMS_AHEAD):
        if following.is_heading or following.instruction_like:
            break
        if following.ordinal <= chosen.ordinal:
            continue
        items.append(following)
        if following.quote.rstrip().endswith("."):
            break
    return items


def select(
    question: str, candidates: list[Evidence], view: CorpusView, asked: str | None = None
) -> Selection:
    """Pick the sentences that answer ``question`` from ``candidates``, or refuse.

    ``question`` is the self-contained query (follow-ups resolved); ``asked`` the
    user's own words when they differ.
    """
    analysis = analyze(question)
    return decide(analysis, score(analysis, candidates, view, asked_terms(question, asked)), view)


def asked_terms(question: str, asked: str | None) -> tuple[str, ...] | None:
    """The terms of the user's own words when they differ from the self-contained
    ``question`` (a follow-up resolved); None when they are the same."""
    if asked is None or asked == question:
        return None
    return tuple(dict.fromkeys(content_tokens(asked)))


def decide(analysis: QuestionAnalysis, scored: list[Scored], view: CorpusView) -> Selection:
    """The rules' choice among candidates already ``score``d: the sentences to quote,
    or a refusal."""
    if not scored:
        return Selection([], True, "nothing retrieved", scored)

    corrections = [s for s in scored if s.corrects_premise and s.relevance >= MIN_RELEVANCE]
    answering = [s for s in scored if s.can_answer]
    if corrections and (
        not answering or corrections[0].relevance >= answering[0].relevance - PREMISE_TIE_MARGIN
    ):
        best = corrections[0]
    elif answering:
        best = answering[0]
    else:
        return Selection([], True, scored[0].reason, scored)

    strong_enough = best.relevance >= MIN_RELEVANCE or best.dense >= MIN_DENSE_ALONE
    if not strong_enough:
        reason = f"best evidence too weak (relevance {best.relevance:.2f})"
        return Selection([], True, reason, scored)

    chosen = [best.evidence]
    for other in answering:
        if other is best or len(chosen) >= MAX_SENTENCES:
            continue
        # A second sentence only when it is nearly as good and adds question terms.
        if other.relevance >= SECOND_SENTENCE_RATIO * best.relevance and other.coverage > 0:
            adds = set(analysis.terms) & set(content_tokens(other.evidence.quote))
            if adds - set(content_tokens(best.evidence.quote)):
                chosen.append(other.evidence)
    return Selection(with_context(analysis, chosen, view), False, "", scored)


def with_context(
    analysis: QuestionAnalysis, chosen: list[Evidence], view: CorpusView, by_rank: bool = False
) -> list[Evidence]:
    """The chosen sentences with what they need to stand alone: a pronoun's antecedent
    (unless the sentence names what was asked) and the items of a list the sentence
    introduces. In document order, or with ``by_rank`` each chosen sentence's group in
    the order ``chosen`` ranks them (the likeliest answer first)."""
    groups: list[list[Evidence]] = []
    for evidence in chosen:
        group = [evidence]
        antecedent = _antecedent(evidence, view)
        if antecedent is not None and not names_covered(analysis, _without_context(evidence)):
            group.insert(0, antecedent)
        group.extend(_list_items(evidence, view))
        groups.append(group)
    # A sentence both chosen and another's context keeps its retrieved (scored) form.
    retrieved = {(e.source, e.start): e for e in chosen}
    ordered: dict[tuple[str, int], Evidence] = {}
    for group in groups:
        for evidence in group:
            key = (evidence.source, evidence.start)
            ordered.setdefault(key, retrieved.get(key, evidence))
    if by_rank:
        return list(ordered.values())
    return sorted(ordered.values(), key=lambda e: (e.source, e.start))


def _without_context(evidence: Evidence) -> Evidence:
    return replace(evidence, heading="", context="")
