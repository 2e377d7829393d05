"""The server's logic without a server or a model: keys, the rate limit, the body cap,
the exposure rule, how a chat's messages become a question, the SSE stream's shape,
and the question cleaning every entry point shares. The real server is
``tests/test_server.py``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from rag.answering.conversation import resolved_history
from rag.errors import (
    IndexMissingError,
    IngestBusyError,
    ModelUnavailableError,
    RagError,
    StoreUnavailableError,
)
from rag.pipeline import QuestionError, check_question
from rag.settings import Settings
from rag.settings_report import describe
from rag.text import clean_text
from rag.types import Answer, AnswerSentence, Citation
from server.cli import ExposureError, check_exposure, check_port
from server.completions import conversation_of, sse
from server.limits import BodyLimit, RateLimiter, identity_of, key_matches
from server.schemas import ApiError, ChatMessage, status_of
from tests.helpers import clean_env, run_rag

# -- keys and the rate limit ---------------------------------------------------------------


def test_keys_match_exactly() -> None:
    assert key_matches("k1", ["k0", "k1"])
    assert not key_matches("k", ["k0", "k1"])
    assert not key_matches("", ["k0"])


def test_an_identity_never_holds_the_key_itself() -> None:
    who = identity_of("secret-key", "127.0.0.1")
    assert "secret-key" not in who and who.startswith("key:")
    assert identity_of(None, "10.0.0.2") == "addr:10.0.0.2"


def test_rate_limit_allows_a_burst_then_says_when_to_retry() -> None:
    now = [100.0]
    limiter = RateLimiter(per_minute=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(20.0)  # one request every 20 s at 3 per minute
    assert RateLimiter.retry_after(wait) == "20"
    assert limiter.acquire("b") == 0.0, "each identity has its own bucket"
    now[0] += 20.0
    assert limiter.acquire("a") == 0.0
    assert RateLimiter.retry_after(0.01) == "1"


def test_rate_limit_zero_means_none() -> None:
    limiter = RateLimiter(per_minute=0)
    assert all(limiter.acquire("a") == 0.0 for _ in range(1000))


# -- the body cap --------------------------------------------------------------------------


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"size": len(await request.body())})


def _capped(limit: int) -> TestClient:
    app = Starlette(routes=[Route("/api/x", _echo, methods=["POST"]),
                            Route("/other", _echo, methods=["POST"])])  # fmt: skip
    return TestClient(BodyLimit(app, prefixes=("/api/",), limit_for=lambda m, p: limit))


def test_body_cap_by_declared_length_and_by_what_arrives() -> None:
    with _capped(100) as client:
        assert client.post("/api/x", content=b"x" * 100).json() == {"size": 100}
        too_big = client.post("/api/x", content=b"x" * 101)
        assert too_big.status_code == 413
        assert "RAG_API_MAX_BODY_KB" in too_big.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield from [b"x" * 60, b"x" * 60]

        assert client.post("/api/x", content=chunks()).status_code == 413
        assert client.post("/other", content=b"x" * 500).json() == {"size": 500}


# -- binding -------------------------------------------------------------------------------


def _settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, **values)


def test_loopback_needs_no_key(tmp_path: Path) -> None:
    check_exposure(_settings(tmp_path))
    check_exposure(_settings(tmp_path, api_host="::1"))
    check_exposure(_settings(tmp_path, api_host="localhost"))


def test_off_loopback_without_keys_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ExposureError, match="RAG_API_KEYS") as raised:
        check_exposure(_settings(tmp_path, api_host="0.0.0.0"))
    assert raised.value.exit_code == 2
    with pytest.raises(ExposureError, match="RAG_UI_AUTH"):
        check_exposure(_settings(tmp_path, api_host="0.0.0.0", api_keys="k1"))
    check_exposure(_settings(tmp_path, api_host="0.0.0.0", api_keys="k1", api_chat=False))
    check_exposure(_settings(tmp_path, api_host="0.0.0.0", api_keys="k1", ui_auth="a:b"))


def test_rag_serve_refuses_to_start_exposed_without_keys(tmp_path: Path) -> None:
    env = clean_env(tmp_path / "cache")
    result = run_rag("--data-dir", tmp_path / "d", "serve", "--host", "0.0.0.0", env=env,
                     timeout=60)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "RAG_API_KEYS" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "d").exists(), "refused before building anything"


def test_a_taken_port_is_named_before_anything_is_built() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RagError, match=f"127.0.0.1:{port}.*RAG_API_PORT"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again


def test_config_masks_api_keys(tmp_path: Path) -> None:
    settings = _settings(tmp_path, api_keys="alpha-secret, beta-secret,")
    assert settings.api_key_list == ["alpha-secret", "beta-secret"]
    shown = {row.name: row.value for row in describe(settings)}["api_keys"]
    assert shown == "*** (2 keys)"
    assert "alpha" not in json.dumps([row.value for row in describe(settings)], default=str)


# -- chats and questions -------------------------------------------------------------------


def _messages(*pairs: tuple[str, Any]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in pairs]


def test_a_chat_is_its_messages() -> None:
    question, history, turns = conversation_of(
        _messages(
            ("system", "Be brief."),
            ("user", "Which subsidiary develops Amazon's AI chips?"),
            ("assistant", "It is Annapurna Labs. [1]"),
            ("user", [{"type": "text", "text": "Where is it based?"}]),
        )
    )
    assert question == "Where is it based?"
    assert history == ["Which subsidiary develops Amazon's AI chips?"]
    assert turns == [("Which subsidiary develops Amazon's AI chips?", "It is Annapurna Labs.")]


@pytest.mark.parametrize(
    "messages", [[("user", "hi"), ("assistant", "hello")], [("user", "  ")], [("user", None)]]
)
def test_a_chat_must_end_with_a_question(messages: list[tuple[str, Any]]) -> None:
    with pytest.raises(ApiError) as raised:
        conversation_of(_messages(*messages))
    assert raised.value.status == 400


def test_history_is_resolved_turn_by_turn() -> None:
    history = resolved_history(
        ["Which subsidiary develops Amazon's AI chips?", "Where is it\x00 based?"]
    )
    assert history[1] == "Where is it based? (Which subsidiary develops Amazon's AI chips?)"


def test_questions_are_cleaned_of_control_characters_and_undecodable_bytes() -> None:
    # Bytes that are not UTF-8 arrive as lone surrogates (argv, surrogateescape).
    raw = b"Where is\xff Annapurna\x00 Labs\x1b based?\x07".decode("utf-8", "surrogateescape")
    assert check_question(raw, 1000) == "Where is\ufffd Annapurna Labs based?"
    assert clean_text("a\ud800b\tc") == "a\ufffdb c"
    assert clean_text("café 🚀 \u200d") == "café 🚀 \u200d", "only control characters go"


def test_an_empty_scope_is_said_as_such() -> None:
    from rag.pipeline import unmatched_scope

    assert unmatched_scope([]).startswith("The scope names no document, so nothing was searched")
    many = unmatched_scope([f"p{n}" for n in range(7)])
    assert many.startswith("No indexed document matches 'p0', 'p1', 'p2', 'p3', 'p4' ...")


def test_a_huge_question_is_refused_before_it_is_scanned() -> None:
    with pytest.raises(QuestionError, match="RAG_MAX_QUESTION_CHARS"):
        check_question("\x00" * 10_000, 1000)


@pytest.mark.parametrize(
    ("error", "status"),
    [(QuestionError("empty"), 400), (IngestBusyError("busy"), 409),
     (IndexMissingError("none"), 503), (ModelUnavailableError("no GGUF"), 503),
     (StoreUnavailableError("Chroma is down"), 503),
     (RagError("The openai server failed"), 502)],
)  # fmt: skip
def test_errors_map_to_whose_fault_they_are(error: RagError, status: int) -> None:
    assert status_of(error)[0] == status


# -- the SSE stream ------------------------------------------------------------------------


def _answer(sentences: list[str], refused: bool = False) -> Answer:
    citation = Citation(1, "a.md", "A", None, "Quote.", 0, 6)
    return Answer(
        question="q", answer=" ".join(sentences), refused=refused, generator="extractive",
        sentences=[AnswerSentence(s, () if refused else (1,)) for s in sentences],
        citations=[] if refused else [citation], evidence=[],
    )  # fmt: skip


def _events(snapshots: list[Answer]) -> list[dict[str, Any]]:
    stream = sse(snapshots[0], iter(snapshots[1:]), "chatcmpl-1", 0)
    lines = [event.removeprefix("data: ").strip() for event in stream]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_sentences_stream_and_citations_come_once_in_the_final_chunk() -> None:
    events = _events([_answer(["One."]), _answer(["One.", "Two."])])
    deltas = [e["choices"][0]["delta"].get("content", "") for e in events]
    assert "".join(deltas) == "One. [1] Two. [1]"
    assert [("rag" in e) for e in events] == [False, False, False, True]
    final = events[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    assert final["rag"]["citations"][0] == {
        "id": 1, "source": "a.md", "title": "A", "page": None, "quote": "Quote.", "start": 0,
        "end": 6,
    }  # fmt: skip


def test_a_refusal_streams_as_one_final_sentence() -> None:
    events = _events([_answer(["The documents don't say."], refused=True)])
    assert "".join(e["choices"][0]["delta"].get("content", "") for e in events) == (
        "The documents don't say."
    )
    assert events[-1]["rag"]["refused"] is True


def test_a_replaced_answer_is_said_not_retracted() -> None:
    events = _events([_answer(["Guess."]), _answer(["Quoted."])])
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert text == "Guess. [1]\n\nReplaced by the quoted answer: Quoted. [1]"


# -- rag bench serve's workload ------------------------------------------------------------


def test_each_bench_client_asks_its_own_conversations() -> None:
    from server.bench import CONVERSATIONS, workload

    first, second = workload(0, 25), workload(1, 25)
    assert len(first) == 25 and first[0] != second[0], "clients start at different offsets"
    for history, question in first:
        if history:  # a follow-up carries the question it follows, and only that
            assert (history[0], question) in CONVERSATIONS
    assert [h for h, _ in first[:2]] == [(), (first[0][1],)]
