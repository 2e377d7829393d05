"""Chat completions in the OpenAI shape: a conversation out of ``messages``, answers
rendered with citation markers, and the server-sent events of a streamed answer (the
verified answer in the ``rag`` extension field of the final chunk). No routes here
(``server.app``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import rag  # noqa: F401  (offline and no-telemetry environment before any library)
from rag.errors import (
    RagError,
)
from rag.types import Answer
from server.schemas import EXTENSION, MARKER, ApiError, ChatMessage, error_body, status_of


def rendered(answer: Answer) -> str:
    """The answer as chat text: each sentence followed by its citation markers."""
    if answer.refused:
        return answer.answer
    return " ".join(sentence_text(s.text, s.citations) for s in answer.sentences)


def sentence_text(text: str, citations: tuple[int, ...]) -> str:
    return text + "".join(f" [{c}]" for c in citations)


def conversation_of(messages: list[ChatMessage]) -> tuple[str, list[str], list[tuple[str, str]]]:
    """(the question, earlier questions, earlier (question, answer) pairs) of a chat."""
    if messages[-1].role != "user":
        raise ApiError(400, "The last message must be the user's question.", "invalid_messages")
    questions: list[str] = []
    turns: list[tuple[str, str]] = []
    for message in messages:
        if message.role == "user":
            questions.append(message.text())
        elif message.role == "assistant" and questions:
            # Markers are ours, not the answer's words: an LLM sees the plain text.
            turns.append((questions[-1], MARKER.sub("", message.text())))
    question = questions[-1]
    if not question.strip():
        raise ApiError(400, "The last user message is empty: ask a question.", "empty_question")
    return question, questions[:-1], turns


def last(answers: Iterator[Answer]) -> Answer:
    final = deque(answers, maxlen=1)  # the complete answer is the last snapshot
    if not final:
        raise RuntimeError("the answer stream ended without an answer")
    return final[0]


def sse(first: Answer, rest: Iterator[Answer], completion: str, created: int) -> Iterator[str]:
    """Server-sent events in OpenAI's chunk format: verified sentences as they are
    released, then a final chunk with ``finish_reason`` and the ``rag`` answer."""
    import json

    def event(delta: dict[str, str], finish: str | None = None, **extra: object) -> str:
        chunk = {
            "id": completion,
            "object": "chat.completion.chunk",
            "created": created,
            "model": first.generator,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    shown: list[str] = []
    answer = first
    try:
        for answer in chain(first, rest):
            if answer.refused:
                continue  # a refusal is only ever the final answer: sent below
            for sentence in answer.sentences[len(shown) :]:
                text = sentence_text(sentence.text, sentence.citations)
                yield event({"content": (" " if shown else "") + text})
                shown.append(text)
    except RagError as exc:
        status, code = status_of(exc)
        yield f"data: {json.dumps(error_body(str(exc), code, status), ensure_ascii=False)}\n\n"
        yield "data: [DONE]\n\n"
        return
    final = [sentence_text(s.text, s.citations) for s in answer.sentences]
    if answer.refused:
        yield event({"content": answer.answer})
    elif final[: len(shown)] != shown:
        # The verifier replaced what was streamed (an LLM's sentences that did not use
        # the answering evidence) by the quoted answer; say so rather than retract.
        yield event({"content": "\n\nReplaced by the quoted answer: " + " ".join(final)})
    yield event({}, "stop", **{EXTENSION: answer.to_json()})
    yield "data: [DONE]\n\n"


def chain(first: Answer, rest: Iterator[Answer]) -> Iterator[Answer]:
    yield first
    yield from rest
