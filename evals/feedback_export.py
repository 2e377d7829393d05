"""Turning stored ratings into eval cases: the rules, without any I/O.

``build_export(records, documents)`` reads ratings (``rag.feedback``) and the indexed
documents (source -> ``Document``) and says what each rating becomes:

- an unanswerable case: "the documents don't say this" (``should_refuse``), or a
  thumbs-up on a refusal;
- an answerable case: a picked sentence (its quote is the expected fact), or a typed
  correction the documents state (``evals.feedback_anchor``; the fact is the
  documents' text, never the user's);
- a regression case (``include_up``): a thumbs-up on an answer, whose first quoted
  sentence must stay within the first two quotes: its text is the expected fact, and
  ``evals.metrics``' lead-two rule is what checks it;
- for review: a thumbs-down with nothing else, or a rating that contradicts itself;
- left out, with the reason: a correction that cannot be anchored, a picked sentence no
  longer in its document, a thumbs-up without ``include_up``.

Ratings of one question and answer are read together: agreeing ones make one case
that lists all their ids; disagreeing ones are a conflict, reported and left out, never
merged. A case whose documents changed since the rating is flagged (and tagged
``document-changed``). Writing the suite file and the documents' text is
``evals.feedback_suite``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evals.feedback_anchor import Anchorer
from rag.feedback.record import FeedbackRecord
from rag.types import Document

CHANGED_TAG = "document-changed"


@dataclass(frozen=True)
class ExportCase:
    """One case of the exported suite, before its documents get their file names."""

    id: str
    kind: str  # answerable / unanswerable
    question: str
    history: tuple[str, ...]
    origin: str  # why the rating(s) made this case, for the reviewer
    record_ids: tuple[str, ...]
    created_at: str
    expected: tuple[str, ...] = ()  # one fact per group
    expected_quote: tuple[str, ...] = ()
    document: str | None = None  # the source (in the index) the case is about
    changed: tuple[str, ...] = ()  # sources changed (or removed) since the rating

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "question": self.question,
            "history": list(self.history), "origin": self.origin,
            "record_ids": list(self.record_ids), "expected": list(self.expected),
            "expected_quote": list(self.expected_quote), "document": self.document,
            "changed_documents": list(self.changed),
        }  # fmt: skip


@dataclass(frozen=True)
class LeftOut:
    """Ratings that became no case: ``review`` ones need a person, the others say why not."""

    record_ids: tuple[str, ...]
    question: str
    reason: str
    review: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"record_ids": list(self.record_ids), "question": self.question,
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class Conflict:
    """Ratings of one question and answer that disagree; none of them is exported."""

    question: str
    answer: str
    record_ids: tuple[str, ...]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "answer": self.answer,
                "record_ids": list(self.record_ids), "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class ChangedDocument:
    case_id: str
    source: str
    rated: str  # its content hash when the rating was given
    now: str | None  # None: no longer indexed

    def to_json(self) -> dict[str, Any]:
        return {"case": self.case_id, "source": self.source, "rated_hash": self.rated,
                "current_hash": self.now}  # fmt: skip


@dataclass
class ExportReport:
    ratings: int
    cases: list[ExportCase] = field(default_factory=list)
    skipped: list[LeftOut] = field(default_factory=list)
    review: list[LeftOut] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    changed: list[ChangedDocument] = field(default_factory=list)

    def sources(self, indexed: Iterable[str]) -> list[str]:
        """The documents the suite needs: all of them once a case must be refused (a
        refusal is right only if no document says otherwise), else the cases' own."""
        if any(c.kind == "unanswerable" for c in self.cases):
            return sorted(indexed)
        return sorted({c.document for c in self.cases if c.document})

    def to_json(self) -> dict[str, Any]:
        return {
            "ratings": self.ratings,
            "cases": [c.to_json() for c in self.cases],
            "skipped": [s.to_json() for s in self.skipped],
            "for_review": [s.to_json() for s in self.review],
            "conflicts": [c.to_json() for c in self.conflicts],
            "changed_documents": [c.to_json() for c in self.changed],
        }


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace("’", "'").split())


def _fact(record: FeedbackRecord) -> str:
    """What the user said the answer is: a picked sentence, else a typed correction."""
    return record.picked.quote if record.picked else record.correction


def _contradiction(record: FeedbackRecord) -> str:
    """Why one rating contradicts itself ("" when it does not)."""
    fact = _fact(record)
    if record.should_refuse is True and fact:
        return "says the documents don't say this, and also gives the answer"
    if record.rating == "up" and record.refused and (record.should_refuse is False or fact):
        return "rates the refusal up, and also says the documents answer it"
    if record.rating == "up" and not record.refused and record.should_refuse is True:
        return "rates the answer up, and also says the documents don't say this"
    return ""


def _right(record: FeedbackRecord) -> bool:
    """Whether the rating says the reply as given (an answer or a refusal) was right."""
    if record.refused:
        return record.should_refuse is True or record.rating == "up"
    return record.rating == "up"


def _refuse(record: FeedbackRecord) -> bool:
    return record.should_refuse is True or (record.refused and record.rating == "up")


def _conflict(group: Sequence[FeedbackRecord]) -> str:
    """Why the ratings of one question and answer disagree ("" when they agree)."""
    ups = [r.id for r in group if _right(r)]
    downs = [r.id for r in group if not _right(r)]
    if ups and downs:
        return f"rated right ({', '.join(ups)}) and wrong ({', '.join(downs)})"
    facts = sorted({_norm(f) for r in group if (f := _fact(r))}, key=len)
    if any(_refuse(r) for r in group) and facts:
        return "one rating says the documents don't say this, another gives the answer"
    # A shorter fact inside a longer one ("2015" and "In 2015, it bought...") agrees.
    if any(short not in long for i, short in enumerate(facts) for long in facts[i + 1 :]):
        return "different answers given: " + " / ".join(repr(f) for f in facts)
    return ""


def _priority(record: FeedbackRecord) -> int:
    """Which rating of an agreeing group speaks for it: the one that says most."""
    if _refuse(record):
        return 0
    if record.picked:
        return 1
    return 2 if record.correction else 3


def _changed(group: Sequence[FeedbackRecord], documents: Mapping[str, Document],
             case_id: str) -> list[ChangedDocument]:  # fmt: skip
    found: dict[str, ChangedDocument] = {}
    for record in group:
        for source, rated in record.documents.items():
            doc = documents.get(source)
            now = doc.content_hash if doc else None
            if now != rated and source not in found:
                found[source] = ChangedDocument(case_id, source, rated, now)
    return list(found.values())


def _first_quote(record: FeedbackRecord) -> dict[str, Any] | None:
    """The answer's first quoted sentence, in the order the answer first cites them
    (the order ``evals.metrics.lead_text`` counts the lead two in)."""
    by_id = {c.get("id"): c for c in record.citations}
    for sentence in record.answer.get("sentences") or []:
        for cited in sentence.get("citations") or []:
            if cited in by_id:
                return by_id[cited]
    return record.citations[0] if record.citations else None


def _in_document(
    documents: Mapping[str, Document], source: str, start: int, end: int, quote: str, what: str
) -> str:
    """Why ``quote`` cannot be a fact of ``source`` today ("" when it can)."""
    doc = documents.get(source)
    if doc is None:
        return f"{what}'s document {source!r} is no longer indexed"
    if doc.text[start:end] != quote and quote not in doc.text:
        return f"{what} is no longer in {source!r} (the document changed since the rating)"
    return ""


def _new(record: FeedbackRecord, ids: tuple[str, ...], kind: str, origin: str,
         fact: str = "", quotes: tuple[str, ...] = (), document: str | None = None,
         ) -> ExportCase:  # fmt: skip
    expected = (" ".join(fact.split()),) if fact else ()
    return ExportCase(
        id=f"fb-{record.id}", kind=kind, question=record.question, history=record.history,
        origin=origin, record_ids=ids, created_at=record.created_at, expected=expected,
        expected_quote=quotes or expected, document=document,
    )  # fmt: skip


def _answer_case(
    record: FeedbackRecord, ids: tuple[str, ...], documents: Mapping[str, Document],
    anchorer: Anchorer,
) -> ExportCase | LeftOut:  # fmt: skip
    """The case a picked sentence or a typed correction makes (the record has one)."""
    if record.picked:
        p = record.picked
        why = _in_document(documents, p.source, p.start, p.end, p.quote, "the picked sentence")
        if why:
            return LeftOut(ids, record.question, why)
        return _new(record, ids, "answerable", "the sentence the user picked", p.quote,
                    document=p.source)  # fmt: skip
    anchor = anchorer.anchor(record.correction)
    if not anchor.anchored:
        reason = f"correction {anchor.correction!r}: {anchor.reason}"
        return LeftOut(ids, record.question, reason)
    # Where the answer's own documents state it, if they do: that is where the user read.
    cited = {c.get("source") for c in record.citations}
    place = next((p for p in anchor.places if p.source in cited), anchor.places[0])
    origin = f"the user's correction {anchor.correction!r}, found ({anchor.method})"
    return _new(record, ids, "answerable", origin, place.text, place.sentences, place.source)


def _regression_case(
    record: FeedbackRecord, ids: tuple[str, ...], documents: Mapping[str, Document]
) -> ExportCase | LeftOut:
    """A thumbs-up answer kept as it is: its first quoted sentence must stay in the lead."""
    first = _first_quote(record)
    if first is None:
        return LeftOut(ids, record.question, "thumbs-up on an answer that quotes nothing")
    source, quote = str(first.get("source")), str(first.get("quote", ""))
    start, end = int(first.get("start", 0)), int(first.get("end", 0))
    why = _in_document(documents, source, start, end, quote, "the first quoted sentence")
    if why:
        return LeftOut(ids, record.question, why)
    origin = "thumbs-up: the first quoted sentence must stay within the first two quotes"
    return _new(record, ids, "answerable", origin, quote, document=source)


def _case(
    record: FeedbackRecord, group: Sequence[FeedbackRecord], documents: Mapping[str, Document],
    anchorer: Anchorer, include_up: bool,
) -> ExportCase | LeftOut:  # fmt: skip
    ids = tuple(r.id for r in group)
    if _refuse(record):
        if record.should_refuse:
            return _new(record, ids, "unanswerable", "the user said the documents don't say this")
        return _new(record, ids, "unanswerable", "thumbs-up on a refusal")
    if record.picked or record.correction:
        return _answer_case(record, ids, documents, anchorer)
    if record.rating == "down":
        what = "a refusal" if record.refused else "an answer"
        reason = (
            f"thumbs-down on {what} with no correction, picked sentence or "
            "'the documents don't say this'"
        )
        return LeftOut(ids, record.question, reason, review=True)
    if not include_up:
        reason = "thumbs-up: pass --include-up to keep the answer as a regression case"
        return LeftOut(ids, record.question, reason)
    return _regression_case(record, ids, documents)


def _key(record: FeedbackRecord) -> tuple[str, tuple[str, ...], str]:
    answer = _norm(str(record.answer.get("answer", "")))
    return _norm(record.question), tuple(_norm(h) for h in record.history), answer


def build_export(
    records: Sequence[FeedbackRecord],
    documents: Mapping[str, Document],
    include_up: bool = False,
) -> ExportReport:
    """What ``records`` become as eval cases over ``documents`` (the live index's)."""
    report = ExportReport(ratings=len(records))
    anchorer = Anchorer(documents)
    groups: dict[tuple[str, tuple[str, ...], str], list[FeedbackRecord]] = {}
    for record in sorted(records, key=lambda r: (r.created_at, r.id)):
        why = _contradiction(record)
        if why:
            report.review.append(LeftOut((record.id,), record.question, why, review=True))
        else:
            groups.setdefault(_key(record), []).append(record)
    for group in groups.values():
        why = _conflict(group)
        if why:
            answer = str(group[0].answer.get("answer", ""))
            report.conflicts.append(
                Conflict(group[0].question, answer, tuple(r.id for r in group), why)
            )
            continue
        speaker = min(group, key=_priority)
        outcome = _case(speaker, group, documents, anchorer, include_up)
        if isinstance(outcome, LeftOut):
            (report.review if outcome.review else report.skipped).append(outcome)
            continue
        changed = _changed(group, documents, outcome.id)
        if changed:
            outcome = replace(outcome, changed=tuple(c.source for c in changed))
            report.changed += changed
        report.cases.append(outcome)
    return report
