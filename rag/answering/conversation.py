"""Conversations: the turns a chat keeps, and answering within one.

Follow-ups are resolved against the conversation's earlier questions (resolved
ones, so "And its size?" after a follow-up still has a subject); an LLM also sees
the earlier (question, answer) pairs. Each web-chat session and each terminal chat
owns one ``Conversation``; nothing here is shared between them. Answering within one
is ``rag.pipeline``'s (``Pipeline.stream_chat`` reads the history here and records the
turn): a chat turn flows one way, from the pipeline to the conversation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.answering.question import resolve_followup
from rag.text import clean_text
from rag.types import Answer


def resolved_history(questions: Sequence[str]) -> list[str]:
    """Earlier questions (oldest first) each resolved against those before it: the
    history a ``Conversation`` would hold, rebuilt from a stateless client's messages."""
    history: list[str] = []
    for question in questions:
        history.append(resolve_followup(" ".join(clean_text(question).split()), history))
    return history


@dataclass
class Turn:
    question: str
    answer: Answer


@dataclass
class Conversation:
    """The history a chat keeps; follow-ups are resolved against its user turns."""

    turns: list[Turn] = field(default_factory=list)

    def questions(self) -> list[str]:
        # Resolved questions, so "And its size?" after a follow-up still has a subject.
        return [t.answer.resolved_question or t.question for t in self.turns]

    def reset(self) -> None:
        self.turns.clear()

    def exchanges(self) -> list[tuple[str, str]]:
        """The earlier (question, answer) pairs, oldest first: what an LLM sees."""
        return [(t.question, t.answer.answer) for t in self.turns]

    def record(self, question: str, answer: Answer) -> None:
        """A completed turn (the pipeline calls this when the answer is complete)."""
        self.turns.append(Turn(question, answer))
