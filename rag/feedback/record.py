"""A rating of one answer: what a client sends, how it is checked, what is stored.

The answer is the JSON contract exactly as ``rag ask --json`` / ``POST /api/ask``
returned it. Nothing about it is trusted: each citation must still be the text of an
indexed document at its offsets (``check``), so a forged quote, or one from a document
that has changed since, is refused with a message that says which and why. The stored
record keeps the cited documents' fingerprints (content hashes), so an export can flag
a rating whose documents have changed since.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rag.errors import InputError
from rag.types import Document

RATINGS = ("up", "down")
MAX_CORRECTION_CHARS = 2000
MAX_HISTORY = 50


class FeedbackError(InputError):
    """A rating that cannot be stored as sent (a 4xx from ``rag serve``)."""


@dataclass(frozen=True)
class Picked:
    """A sentence the user picked as the right one: where it is in which document."""

    source: str
    start: int
    end: int
    quote: str

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "start": self.start, "end": self.end, "quote": self.quote}


@dataclass(frozen=True)
class Feedback:
    """What a client sends: the question, the answer it got and the rating."""

    question: str
    answer: Mapping[str, Any]
    rating: str
    history: tuple[str, ...] = ()
    correction: str = ""
    should_refuse: bool | None = None
    picked: Picked | None = None


@dataclass(frozen=True)
class FeedbackRecord:
    """A stored rating (``to_json`` is what ``rag feedback show --json`` prints)."""

    id: str
    created_at: str
    question: str
    history: tuple[str, ...]
    answer: dict[str, Any]
    rating: str
    correction: str = ""
    should_refuse: bool | None = None
    picked: Picked | None = None
    # source -> content hash of every document the answer cites (or, for a picked
    # sentence, its document), when the rating was given.
    documents: dict[str, str] = field(default_factory=dict)
    key_fingerprint: str = ""  # sha256 prefix of the API key used, never the key

    @property
    def citations(self) -> list[dict[str, Any]]:
        return list(self.answer.get("citations") or [])

    @property
    def refused(self) -> bool:
        return bool(self.answer.get("refused"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "question": self.question,
            "history": list(self.history),
            "answer": self.answer,
            "rating": self.rating,
            "correction": self.correction,
            "should_refuse": self.should_refuse,
            "picked": self.picked.to_json() if self.picked else None,
            "documents": dict(self.documents),
            "key_fingerprint": self.key_fingerprint,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FeedbackRecord:
        picked = raw.get("picked")
        return cls(
            id=str(raw["id"]),
            created_at=str(raw["created_at"]),
            question=str(raw["question"]),
            history=tuple(str(h) for h in raw.get("history") or ()),
            answer=dict(raw.get("answer") or {}),
            rating=str(raw["rating"]),
            correction=str(raw.get("correction") or ""),
            should_refuse=raw.get("should_refuse"),
            picked=Picked(**picked) if picked else None,
            documents={str(k): str(v) for k, v in (raw.get("documents") or {}).items()},
            key_fingerprint=str(raw.get("key_fingerprint") or ""),
        )


def key_fingerprint(key: str | None) -> str:
    """Which key rated, without the key: its sha256, cut to 16 hex digits."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else ""


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise FeedbackError(f"{what} must be a string.")
    text = " ".join(value.split())
    if len(text) > limit:
        raise FeedbackError(f"{what} is too long ({len(text)} characters; at most {limit}).")
    return text


def _citation(raw: object, number: int) -> tuple[str, int, int, str]:
    if not isinstance(raw, Mapping):
        raise FeedbackError(f"Citation {number} of the answer is not an object.")
    source, start, end, quote = (raw.get(k) for k in ("source", "start", "end", "quote"))
    if not isinstance(source, str) or not isinstance(quote, str):
        raise FeedbackError(f"Citation {number} needs a string source and quote.")
    if not (isinstance(start, int) and isinstance(end, int)) or isinstance(start, bool):
        raise FeedbackError(f"Citation {number} needs integer start and end offsets.")
    return source, start, end, quote


def _same_text(
    document: Callable[[str], Document | None],
    source: str,
    start: int,
    end: int,
    quote: str,
    what: str,
) -> Document:
    doc = document(source)
    if doc is None:
        raise FeedbackError(
            f"{what} cites {source!r}, which is not in the index (removed since, or never "
            "indexed): ask the question again and rate the new answer."
        )
    if not (0 <= start < end <= len(doc.text)) or doc.text[start:end] != quote:
        raise FeedbackError(
            f"{what} is not the text of {source!r} at {start}-{end}: the answer was changed "
            "after it was given, or the document has changed since. Ask the question again "
            "and rate the new answer."
        )
    return doc


def check(
    feedback: Feedback,
    document: Callable[[str], Document | None],
    max_question_chars: int,
    key: str | None = None,
) -> FeedbackRecord:
    """The record to store for ``feedback``, or a ``FeedbackError`` saying what is wrong.

    ``document`` looks a source up in the live index. Every citation of the answer, and
    a picked sentence, must be that document's text at its offsets.
    """
    if feedback.rating not in RATINGS:
        raise FeedbackError(f"rating must be 'up' or 'down', not {feedback.rating!r}.")
    question = _text(feedback.question, "question", max_question_chars)
    if not question:
        raise FeedbackError("question is empty: rate the answer to a question you asked.")
    history = feedback.history
    if not isinstance(history, Sequence) or isinstance(history, str):
        raise FeedbackError("history must be a list of earlier questions.")
    if len(history) > MAX_HISTORY:
        raise FeedbackError(f"history has {len(history)} questions; at most {MAX_HISTORY}.")
    history = tuple(_text(h, "each history entry", max_question_chars) for h in history)
    correction = _text(feedback.correction or "", "correction", MAX_CORRECTION_CHARS)
    if feedback.should_refuse is not None and not isinstance(feedback.should_refuse, bool):
        raise FeedbackError("should_refuse must be true or false.")
    answer = feedback.answer
    if not (
        isinstance(answer, Mapping)
        and isinstance(answer.get("answer"), str)
        and isinstance(answer.get("refused"), bool)
        and isinstance(answer.get("citations"), list)
    ):
        raise FeedbackError(
            "answer must be the answer JSON exactly as it was returned (its answer text, "
            "refused and citations)."
        )
    if not answer["refused"] and not answer["citations"]:
        # Every answer that is not a refusal cites what it quotes: one without a
        # citation was not given by this server.
        raise FeedbackError(
            "answer is not a refusal but cites nothing: send the answer JSON exactly as it "
            "was returned."
        )
    documents: dict[str, str] = {}
    for number, raw in enumerate(answer.get("citations") or [], start=1):
        source, start, end, quote = _citation(raw, number)
        doc = _same_text(document, source, start, end, quote, f"Citation {number}")
        documents[source] = doc.content_hash
    picked = feedback.picked
    if picked is not None:
        doc = _same_text(
            document, picked.source, picked.start, picked.end, picked.quote, "The picked sentence"
        )
        documents[picked.source] = doc.content_hash
    return FeedbackRecord(
        id=uuid.uuid4().hex[:12],
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        question=question,
        history=history,
        answer=dict(answer),
        rating=feedback.rating,
        correction=correction,
        should_refuse=feedback.should_refuse,
        picked=picked,
        documents=documents,
        key_fingerprint=key_fingerprint(key),
    )
