"""Rating answers in the web chat, as plain functions (nothing here imports gradio).

Covers what a thumbs up or down on a chat message means: which turn of the session's
conversation the message shows (recorded by ``ChatService.respond``, so a rating lands
on the right answer after more turns, an error message or a streaming one), the
retrieved sentences the thumbs-down form offers as the right one, and the ``Feedback``
handed to ``Pipeline.rate``. It leaves out checking and storing a rating (``rag.feedback``,
through the pipeline) and turning ratings into eval cases (``rag feedback export``).
Ratings stay on this machine: nothing here sends them anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from rag.errors import InputError, RagError
from rag.feedback.record import Feedback, Picked
from rag.pipeline import Pipeline
from rag.types import Answer
from ui.handlers import Session, short_quote

_MARKUP = re.compile(r"([\\`*_\[\]{}()<>#+\-.!|~&])")
NOT_AN_ANSWER = (
    "This message is not a finished answer: wait until the answer is complete, or rate another one."
)


class Outcome(NamedTuple):
    """What saving a rating did: ``saved`` or not, and the status line that says so."""

    saved: bool
    status: str


@dataclass(frozen=True)
class RatedTurn:
    """What a rated chat message shows: the question as typed, its answer, and the
    questions before it (resolved, as the chat used them, so an eval replays it)."""

    question: str
    answer: Answer
    history: tuple[str, ...]


def rated_turn(session: Session | None, message: int | None) -> RatedTurn:
    """The turn chat message ``message`` (its index in the chat) shows, or an
    ``InputError`` when it shows none (a question, an error, an answer still streaming)."""
    turns = session.conversation.turns if session else []
    turn = session.shown.get(message) if session and message is not None else None
    if turn is None or not 0 <= turn < len(turns):
        raise InputError(NOT_AN_ANSWER)
    questions = session.conversation.questions() if session else []
    return RatedTurn(turns[turn].question, turns[turn].answer, tuple(questions[:turn]))


def evidence_label(item: dict[str, object]) -> str:
    return f"{item['source']}: “{short_quote(str(item['quote']), 110)}”"


class DislikeForm(NamedTuple):
    """The thumbs-down form for one answer: its heading (which question it is about,
    since the form stays open while the chat goes on) and the sentences it offers."""

    heading: str
    choices: list[tuple[str, int]]


def dislike_form(session: Session | None, message: int | None) -> DislikeForm:
    """The form for that message's answer. It offers the sentences retrieved for it, as
    (label, position in the answer's evidence), as the right one: a sentence at known
    offsets is the most exact correction a user can give."""
    turn = rated_turn(session, message)
    # The user's words, shown as typed: Markdown and HTML in them are escaped.
    question = _MARKUP.sub(r"\\\1", " ".join(turn.question.split()))
    heading = (
        f"**What was wrong with the answer to “{question}”?** All optional: *Save* records "
        "the thumbs-down with whatever you add."
    )
    choices = [(evidence_label(item), n) for n, item in enumerate(turn.answer.evidence)]
    return DislikeForm(heading, choices)


def picked_sentence(answer: Answer, position: int | None) -> Picked | None:
    if position is None:
        return None
    if not 0 <= position < len(answer.evidence):
        raise InputError("That sentence is not among this answer's evidence: pick it again.")
    item = answer.evidence[position]
    return Picked(
        source=str(item["source"]),
        start=int(str(item["start"])),
        end=int(str(item["end"])),
        quote=str(item["quote"]),
    )


def rate(
    pipeline: Pipeline,
    session: Session | None,
    message: int | None,
    liked: bool,
    pick: int | None = None,
    correction: str = "",
    not_in_documents: bool = False,
) -> Outcome:
    """Save a rating of chat message ``message``.

    Never raises a ``RagError``: a rating that cannot be saved (a bad form, a full or
    unwritable store, an answer whose document changed since) says why in the status,
    and the chat goes on.
    """
    try:
        turn = rated_turn(session, message)
        picked = picked_sentence(turn.answer, pick) if not liked else None
        if picked is not None and not_in_documents:
            raise InputError(
                "Pick the right sentence, or mark that the documents don't say this, not both."
            )
        feedback = Feedback(
            question=turn.question,
            answer=turn.answer.to_json(),
            rating="up" if liked else "down",
            history=turn.history,
            correction="" if liked else (correction or "").strip(),
            # Unchecked means "not said", not "the documents do say this".
            should_refuse=True if not liked and not_in_documents else None,
            picked=picked,
        )
        record = pipeline.rate(feedback)
    except RagError as exc:
        return Outcome(False, f"Not saved: {exc}")
    if session is not None and message is not None:
        session.ratings[message] = (record.id, record.rating)
    return Outcome(True, f"Saved: thank you — rating {record.id}")


def withdrawn(session: Session | None, message: int | None) -> str:
    """The status after a thumb is clicked off again: a saved rating is not undone."""
    saved = session.ratings.get(message) if session and message is not None else None
    if saved:
        return f"Rating {saved[0]} stays saved (clearing the thumb does not remove it)."
    return ""


def thumbs(session: Session | None, messages: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The thumb to show on each assistant message of ``messages`` (Gradio's
    ``feedback_value``): the rating saved for it, or none."""
    ratings = session.ratings if session else {}
    shown = {"up": "Like", "down": "Dislike"}
    return [
        shown[ratings[n][1]] if n in ratings else None
        for n, message in enumerate(messages)
        if message.get("role") == "assistant"
    ]
