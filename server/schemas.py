"""The API's request bodies and its error shape: what ``rag serve`` accepts and how it
refuses (``{"error": {"message", "type", "code"}}`` with a 4xx). No routes here
(``server.app``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

import rag  # noqa: F401  (offline and no-telemetry environment before any library)
from rag.documents.loading import LoadError
from rag.errors import (
    IndexCorruptError,
    IndexMissingError,
    IngestBusyError,
    InputError,
    ModelUnavailableError,
    RagError,
    StoreUnavailableError,
)
from rag.feedback.store import FeedbackFullError, FeedbackStoreError

MAX_MESSAGES = 200  # a conversation longer than this is a client bug, not a chat
MAX_PATTERNS = 100
EXTENSION = "rag"  # the extension field of chat completions that carries the answer
MARKER = re.compile(r" ?\[\d+\]")


class ApiError(Exception):
    """An error answered with ``status`` and an OpenAI-style error body."""

    def __init__(
        self, status: int, message: str, code: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}


def error_body(message: str, code: str, status: int) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    if status in (401, 403):
        kind = "authentication_error"
    elif status == 429:
        kind = "rate_limit_error"
    return {"error": {"message": message, "type": kind, "code": code}}


def status_of(exc: RagError) -> tuple[int, str]:
    """The HTTP status of a user-facing error: the caller's input (4xx), a busy index
    (409), not ready (503), or what remains: a generator's LLM server failed (502)."""
    if isinstance(exc, InputError | LoadError):
        return 400, "invalid_request"
    if isinstance(exc, IngestBusyError):
        return 409, "ingest_busy"
    if isinstance(exc, FeedbackFullError):
        return 507, "feedback_full"
    if isinstance(exc, FeedbackStoreError):
        return 503, "unavailable"
    if isinstance(
        exc,
        IndexMissingError | IndexCorruptError | ModelUnavailableError | StoreUnavailableError,
    ):
        return 503, "unavailable"
    return 502, "upstream_error"


# -- request and response bodies ---------------------------------------------------------

Patterns = Annotated[
    list[Annotated[str, Field(max_length=1000)]] | None,
    Field(
        max_length=MAX_PATTERNS,
        description="Search only these documents: sources (as GET /api/documents lists "
        "them) or glob patterns. A scope that matches nothing is refused, never widened.",
    ),
]
TopK = Annotated[int | None, Field(ge=1, le=50, description="Evidence sentences kept.")]
History = Annotated[
    list[str],
    Field(
        max_length=MAX_MESSAGES, description="Earlier questions of the conversation, oldest first."
    ),
]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question (RAG_MAX_QUESTION_CHARS at most).")
    history: History = Field(default_factory=list)
    top_k: TopK = None
    generator: str | None = Field(default=None, description="A name from GET /v1/models.")
    documents: Patterns = None


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(description="The question to find evidence for.")
    history: History = Field(default_factory=list)
    top_k: TopK = None
    documents: Patterns = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    # Clients send fields this server has no use for (name, tool_calls): accepted, ignored.
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return " ".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatRequest(BaseModel):
    # OpenAI clients send sampling options (temperature, ...): answers here are
    # extractive or verified at temperature 0, so they are accepted and ignored.
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(
        default=None, description="A generator (GET /v1/models); default: the server's."
    )
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    top_k: TopK = None
    documents: Patterns = None


class FeedbackRequest(BaseModel):
    """A rating of an answer (``POST /api/feedback``)."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question that was answered.")
    history: History = Field(default_factory=list)
    answer: dict[str, Any] = Field(
        description="The answer JSON exactly as POST /api/ask returned it: its citations are "
        "checked against the index (a changed quote or offset is refused)."
    )
    rating: Literal["up", "down"]
    correction: str | None = Field(
        default=None, max_length=2000, description="What the right answer is, in your words."
    )
    should_refuse: bool | None = Field(
        default=None,
        description="True: the documents do not say this (the answer should have been a refusal).",
    )


class FeedbackCreated(BaseModel):
    id: str = Field(description="The stored rating's id (rag feedback show ID).")


# -- the app ----------------------------------------------------------------------------
