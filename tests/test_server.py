"""End-to-end: a real ``rag serve`` (a subprocess on a free loopback port, with API
keys) over the bundled article and a second document, driven by the ``openai``
client (streaming and not), ``httpx``, Schemathesis over its OpenAPI schema, and the
browser for the web chat mounted at ``/``. One server for the whole module."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

from rag.documents.loading import load_file
from rag.index.ingest import ingest
from tests.helpers import (
    ANSWER_KEYS,
    CORPUS,
    clean_env,
    free_port,
    isolated_settings,
    run_rag,
    serving,
)
from tests.test_ui_e2e import BOT, CHROMIUM, REPO, ask, last_answer

pytestmark = pytest.mark.slow

KEY, OTHER_KEY = "test-key-one", "test-key-two"
AUTH = {"Authorization": f"Bearer {KEY}"}
RATE_LIMIT = 1000  # per minute per key: the rate-limit test exhausts OTHER_KEY's only
ZEPHYR = (
    "# Zephyr field notes\n\nThe Zephyr project paints its widgets purple in Oslo. "
    "Its budget for widgets is 40 kroner a week.\n"
)


SERVE_DATA: dict[str, str] = {}  # each server's data directory, by its URL


@pytest.fixture(scope="module")
def base_url(
    tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> Iterator[str]:
    extra = tmp_path_factory.mktemp("extra")
    (extra / "zephyr-notes.md").write_text(ZEPHYR, encoding="utf-8")
    data_dir = tmp_path_factory.mktemp("serve-data")
    settings = isolated_settings(
        tmp_path_factory.getbasetemp(), data_dir=data_dir, cache_dir=model_cache_dir
    )
    ingest(settings, [CORPUS, extra], embedder=embedder)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        RAG_CACHE_DIR=str(model_cache_dir),
        RAG_CONFIG=str(tmp_path_factory.getbasetemp() / "no-config.toml"),
        RAG_API_KEYS=f"{KEY},{OTHER_KEY}",
        RAG_API_RATE_LIMIT=str(RATE_LIMIT),
        RAG_API_MAX_BODY_KB="64",
    )
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rag", "--data-dir", str(data_dir), "serve", "--port",
               str(port)]  # fmt: skip
    SERVE_DATA[url] = str(data_dir)
    with serving(command, log, f"{url}/readyz", timeout=120, env=env, cwd=REPO):
        yield url
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, headers=AUTH, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def client(base_url: str) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=KEY, max_retries=0)


ARTICLE = load_file(CORPUS / "trainium-article.md", "trainium-article.md").text


def assert_exact_quotes(rag: dict[str, Any]) -> None:
    texts = {"trainium-article.md": ARTICLE, "zephyr-notes.md": ZEPHYR}
    assert rag["citations"], rag
    for c in rag["citations"]:
        assert set(c) == {"id", "source", "title", "page", "quote", "start", "end"}
        assert texts[c["source"]][c["start"] : c["end"]] == c["quote"]


# -- probes and keys -----------------------------------------------------------------------


def test_probes_are_open_and_everything_else_needs_a_key(base_url: str) -> None:
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{base_url}/readyz").json()
    assert ready["status"] == "ready" and ready["documents"] == 2
    assert httpx.get(f"{base_url}/docs").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = httpx.get(f"{base_url}/v1/models", headers=headers)
        assert response.status_code == 401
        assert "RAG_API_KEYS" in response.json()["error"]["message"]
        assert response.headers["www-authenticate"] == "Bearer"


# -- the OpenAI-compatible endpoint --------------------------------------------------------


def test_openai_client_gets_the_answer_and_its_citations(client: Any) -> None:
    assert next(m.id for m in client.models.list()) == "extractive"
    reply = client.chat.completions.create(
        model="extractive",
        messages=[{"role": "user", "content": "How big is Trainium 3?"}],
    )
    assert "credit card" in reply.choices[0].message.content
    assert "[1]" in reply.choices[0].message.content
    rag = reply.model_extra["rag"]
    assert set(rag) == ANSWER_KEYS and rag["refused"] is False
    assert_exact_quotes(rag)


def test_followups_resolve_from_the_messages(client: Any) -> None:
    messages = [{"role": "user", "content": "Which subsidiary develops Amazon's AI chips?"}]
    first = client.chat.completions.create(model="extractive", messages=messages)
    assert "Annapurna" in first.choices[0].message.content
    messages += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "Where is it based?"},
    ]
    second = client.chat.completions.create(model="extractive", messages=messages)
    assert "Austin" in second.choices[0].message.content


def test_streaming_carries_the_citations_in_the_final_chunk_only(client: Any) -> None:
    question = [{"role": "user", "content": "When was the first Trainium chip released?"}]
    whole = client.chat.completions.create(model="extractive", messages=question)
    chunks = list(client.chat.completions.create(model="extractive", messages=question,
                                                 stream=True))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content
    carrying = [i for i, c in enumerate(chunks) if (c.model_extra or {}).get("rag")]
    assert carrying == [len(chunks) - 1]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["rag"]["citations"] == whole.model_extra["rag"]["citations"]


def test_unanswerable_is_a_refusal_not_an_error(client: Any) -> None:
    reply = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": "Who is the CEO of Annapurna?"}]
    )
    assert reply.model_extra["rag"]["refused"] is True
    assert reply.choices[0].message.content == reply.model_extra["rag"]["answer"]


def test_model_names_a_generator(client: Any) -> None:
    from openai import BadRequestError

    with pytest.raises(BadRequestError, match="extractive, llama-cpp"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
    with pytest.raises(BadRequestError, match="Unknown generator"):
        client.chat.completions.create(
            model="gpt-4o", stream=True, messages=[{"role": "user", "content": "Hi"}]
        )


# -- /api and /v1/retrieve ------------------------------------------------------------------


def test_api_ask_is_the_cli_contract_with_history(http: httpx.Client) -> None:
    answer = http.post(
        "/api/ask",
        json={"question": "Where is it based?",
              "history": ["Which subsidiary develops Amazon's AI chips?"]},
    ).json()  # fmt: skip
    assert set(answer) == ANSWER_KEYS and "Austin" in answer["answer"]
    assert_exact_quotes(answer)


def test_retrieve_returns_evidence_only(http: httpx.Client) -> None:
    found = http.post("/v1/retrieve", json={"query": "Where is Annapurna Labs?", "top_k": 3})
    body = found.json()
    assert len(body["evidence"]) == 3
    first = body["evidence"][0]
    assert set(first) == {"source", "title", "page", "quote", "start", "end", "score", "dense",
                          "lexical"}  # fmt: skip
    assert ARTICLE[first["start"] : first["end"]] == first["quote"]


def test_scope_limits_the_search_and_an_empty_scope_says_so(
    http: httpx.Client, client: Any
) -> None:
    scoped = http.post("/v1/retrieve", json={"query": "Where is Annapurna Labs?",
                                             "documents": ["zephyr*"]}).json()  # fmt: skip
    assert scoped["evidence"] and {e["source"] for e in scoped["evidence"]} == {"zephyr-notes.md"}
    # The answer is in the article; scoped to the notes, it is not found there.
    outside = http.post("/api/ask", json={"question": "Where is Annapurna Labs based?",
                                          "documents": ["zephyr-notes.md"]}).json()  # fmt: skip
    assert outside["refused"] is True
    inside = client.chat.completions.create(
        model="extractive",
        messages=[{"role": "user", "content": "What colour are the Zephyr widgets?"}],
        extra_body={"documents": ["zephyr*"]},
    )
    assert "purple" in inside.choices[0].message.content
    assert_exact_quotes(inside.model_extra["rag"])
    nothing = http.post("/api/ask", json={"question": "Where is Annapurna Labs based?",
                                          "documents": ["reports/*.pdf"]}).json()  # fmt: skip
    assert nothing["refused"] is True and "No indexed document matches" in nothing["answer"]
    assert nothing["evidence"] == [] and nothing["citations"] == []


def test_documents_upload_ask_and_delete(http: httpx.Client) -> None:
    listed = [d["source"] for d in http.get("/api/documents").json()]
    assert listed == ["trainium-article.md", "zephyr-notes.md"]
    note = b"# Lighthouse\n\nThe lighthouse keeper feeds 11 gulls every Tuesday.\n"
    report = http.post("/api/documents", files={"files": ("light house.md", note)}).json()
    assert report["documents_added"] == 1
    question = "How many gulls does the lighthouse keeper feed?"
    answer = http.post("/api/ask", json={"question": question, "documents": ["light*"]}).json()
    assert "11 gulls" in answer["answer"]
    deleted = http.delete("/api/documents/light house.md")
    assert deleted.json()["chunks_removed"] >= 1, deleted.text
    again = http.delete("/api/documents/light house.md")
    assert again.status_code == 404 and "light house.md" in again.json()["error"]["message"]
    bad = http.post("/api/documents", files={"files": ("tool.exe", b"MZ")})
    assert bad.status_code == 400 and "unsupported" in bad.json()["error"]["message"]


# -- bad input -----------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
BAD_INPUT: list[tuple[str, str, bytes, int, str]] = [
    ("malformed JSON", "/api/ask", b'{"question": ', 422, "JSON"),
    ("wrong type", "/api/ask", b'{"question": 5}', 422, "question"),
    ("not an object", "/v1/chat/completions", b"[1, 2]", 422, "body"),
    ("no messages", "/v1/chat/completions", b'{"messages": []}', 422, "messages"),
    ("unknown field", "/api/ask", b'{"question": "x", "q": 1}', 422, "q"),
    ("invalid UTF-8", "/api/ask", b'{"question": "wh\xff\xfere?"}', 400, "UTF-8"),
    ("oversized body", "/api/ask", json.dumps({"question": "a" * 70_000}).encode(), 413,
     "RAG_API_MAX_BODY_KB"),
    ("huge question", "/api/ask", json.dumps({"question": "why " * 4000}).encode(), 400,
     "RAG_MAX_QUESTION_CHARS"),
    ("empty question", "/api/ask", b'{"question": "\\u0000 \\u001b "}', 400, "empty"),
    ("unknown generator", "/api/ask", b'{"question": "x?", "generator": "gpt"}', 400,
     "Unknown generator"),
    ("top_k out of range", "/v1/retrieve", b'{"query": "x", "top_k": 0}', 422, "top_k"),
    ("too many patterns", "/api/ask", json.dumps({"question": "x", "documents": ["a"] * 101})
     .encode(), 422, "documents"),
    ("assistant last", "/v1/chat/completions",
     b'{"messages": [{"role": "assistant", "content": "x"}]}', 400, "last message"),
    ("bad role", "/v1/chat/completions", b'{"messages": [{"role": "robot", "content": "x"}]}',
     422, "role"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "says"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_is_a_4xx_with_a_message(
    http: httpx.Client, path: str, body: bytes, status: int, says: str
) -> None:
    response = http.post(path, content=body, headers=JSON)
    assert response.status_code == status, response.text
    assert says in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [json.dumps({"question": "Where is\x00 Annapurna\x1b Labs based?\x07"}).encode(),
     b'{"question": "Where is Annapurna\\ud800 Labs based?"}',
     json.dumps({"question": bytes(range(256)).decode("latin-1")}).encode()],
    ids=["control characters", "lone surrogate", "binary"],
)  # fmt: skip
def test_dirty_questions_are_cleaned_and_answered(http: httpx.Client, body: bytes) -> None:
    answer = http.post("/api/ask", content=body, headers=JSON).json()
    assert set(answer) == ANSWER_KEYS
    assert not any(ord(c) < 32 for c in answer["question"])


def test_rate_limit_is_a_429_with_retry_after(base_url: str) -> None:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {OTHER_KEY}"}) as c:
        for _ in range(RATE_LIMIT * 2):
            response = c.get("/v1/models")
            if response.status_code != 200:
                break
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "RAG_API_RATE_LIMIT" in response.json()["error"]["message"]
    # Per key: the other key is not limited.
    assert httpx.get(f"{base_url}/v1/models", headers=AUTH).status_code == 200


# -- the schema, fuzzed --------------------------------------------------------------------


def test_generated_requests_never_get_a_server_error(base_url: str) -> None:
    """Schemathesis generates a few requests per operation from the OpenAPI schema
    (bounded: the suite's time budget); none may be answered with a 5xx."""
    from hypothesis import given

    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) == ("POST", "/api/documents"):
            continue  # each upload would be an ingest; the rest read, or 404 on a source

        @given(case=operation.as_strategy())
        # A few examples per operation and a per-request deadline generous enough for a
        # loaded CI machine: together they bound the test to seconds.
        @settings(max_examples=10, deadline=timedelta(seconds=10),
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), database=None)  # fmt: skip
        def check(case: Any) -> None:
            response = case.call(headers=AUTH, timeout=30)
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:500]}"
            if response.status_code >= 400:
                assert response.json()["error"]["message"]

        check()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) == 9, checked


# -- feedback ------------------------------------------------------------------------------


def _stored(base_url: str) -> list[Any]:
    """The ratings the server stored (its SQLite file, read as ``rag feedback`` does)."""
    from rag.feedback.store import open_feedback_store

    data_dir = Path(SERVE_DATA[base_url])
    store = open_feedback_store(isolated_settings(data_dir.parent, data_dir=data_dir))
    try:
        return store.records()
    finally:
        store.close()


def test_a_rating_of_an_openai_answer_is_stored_with_its_key_fingerprint(
    base_url: str, client: Any, http: httpx.Client
) -> None:
    import hashlib

    question = "How big is Trainium 3?"
    reply = client.chat.completions.create(
        model="extractive", messages=[{"role": "user", "content": question}]
    )
    answer = reply.model_extra["rag"]
    response = http.post(
        "/api/feedback",
        json={"question": question, "answer": answer, "rating": "down",
              "correction": "smaller than a credit card", "should_refuse": False},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    stored = {r.id: r for r in _stored(base_url)}[response.json()["id"]]
    assert stored.question == question and stored.rating == "down"
    assert stored.answer == answer and stored.correction == "smaller than a credit card"
    assert stored.documents == {"trainium-article.md": hashlib.sha256(ARTICLE.encode()).hexdigest()}
    # Which key rated, never the key itself.
    assert stored.key_fingerprint == hashlib.sha256(KEY.encode()).hexdigest()[:16]
    assert KEY not in json.dumps(stored.to_json())


def test_forged_stale_and_malformed_ratings_are_refused_with_a_reason(
    base_url: str, http: httpx.Client
) -> None:
    answer = http.post("/api/ask", json={"question": "Where is Annapurna Labs based?"}).json()
    before = len(_stored(base_url))

    def rate(**changes: Any) -> httpx.Response:
        body = {"question": "Where is Annapurna Labs based?", "answer": answer, "rating": "up"}
        return http.post("/api/feedback", json={**body, **changes})

    forged = json.loads(json.dumps(answer))
    forged["citations"][0]["quote"] = "Annapurna Labs is based in Paris."
    response = rate(answer=forged)
    assert response.status_code == 400 and "not the text of" in response.json()["error"]["message"]
    moved = json.loads(json.dumps(answer))
    moved["citations"][0]["source"] = "gone.md"
    response = rate(answer=moved)
    assert response.status_code == 400 and "not in the index" in response.json()["error"]["message"]
    uncited = {**answer, "citations": []}
    assert rate(answer=uncited).status_code == 400
    assert rate(answer={"nothing": 1}).status_code == 400
    assert rate(rating="meh").status_code == 422
    assert rate(answer="a string").status_code == 422
    assert rate(correction="x" * 2001).status_code == 422
    assert rate(history="not a list").status_code == 422
    huge = http.post(
        "/api/feedback",
        content=json.dumps({"question": "q", "answer": answer, "rating": "up",
                            "correction": "y" * 200_000}),
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert huge.status_code == 413
    # Keys and rate limits are the rest of the API's.
    assert httpx.post(f"{base_url}/api/feedback", json={}).status_code == 401
    assert len(_stored(base_url)) == before  # nothing refused was stored


# -- the web chat at / ---------------------------------------------------------------------


def test_the_web_chat_is_mounted_at_the_root(base_url: str) -> None:
    from playwright.sync_api import sync_playwright

    from tests.test_ui_e2e import BROWSER_ARGS

    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: apt-get install chromium (make test does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{base_url}/")
            ask(page, "How big is Trainium 3?")
            assert "credit card" in last_answer(page)
            assert page.locator(BOT).count() == 1
        finally:
            browser.close()


# -- rag bench serve -----------------------------------------------------------------------


def test_bench_serve_reports_every_level_without_errors_or_cross_talk(
    tmp_path: Path, model_cache_dir: Path, embedder: Any
) -> None:
    data_dir = tmp_path / "bench-data"
    settings = isolated_settings(tmp_path, data_dir=data_dir, cache_dir=model_cache_dir)
    ingest(settings, embedder=embedder)
    env = clean_env(model_cache_dir)
    result = run_rag("--data-dir", data_dir, "bench", "serve", "--clients", "1,3",
                     "--questions", "4", "--json", env=env, timeout=240)  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report["clients"]) == {"1", "3"}
    for level in report["clients"].values():
        assert level["errors"] == 0 and level["mismatches"] == 0, level["first_problems"]
        assert level["p50_ms"] <= level["p95_ms"]
    assert report["in_process"]["warm_rate_per_s"] > 0
    assert report["goals"]["zero errors, no cross-talk"] is True


# -- an LLM generator, in-process ----------------------------------------------------------


def test_an_llm_generator_streams_only_verified_sentences(
    tmp_path: Path, model_cache_dir: Path, embedder: Any, scripted_generator: Any
) -> None:
    """The same app in-process, so a scripted generator registered here is a model:
    each sentence it writes is verified before it is streamed."""
    from starlette.testclient import TestClient

    from rag.pipeline import build_pipeline
    from server.app import create_app

    settings = isolated_settings(tmp_path, data_dir=tmp_path / "d", cache_dir=model_cache_dir)
    ingest(settings, embedder=embedder)
    scripted_generator(
        "Annapurna Labs is in Austin, Texas [1]. Its CEO is Jane Roe [1]. "
        "Amazon bought Annapurna Labs in 2015 [2]."
    )
    pipeline = build_pipeline(settings)
    try:
        client = TestClient(create_app(settings, pipeline, chat=False))
        assert "scripted" in [m["id"] for m in client.get("/v1/models").json()["data"]]
        question = {"role": "user", "content": "Where is Annapurna Labs based?"}
        body = {"model": "scripted", "stream": True, "messages": [question]}
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    finally:
        pipeline.close()
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert "Austin" in deltas[1] and "2015" not in deltas[1], "one sentence at a time"
    assert "Jane Roe" not in "".join(d or "" for d in deltas)
    final = chunks[-1]["rag"]
    assert final["generator"] == "scripted" and chunks[-1]["model"] == "scripted"
    assert [d["text"] for d in final["dropped"]] == ["Its CEO is Jane Roe."]
    assert_exact_quotes(final)


# -- several workers -----------------------------------------------------------------------


def test_workers_read_the_flags_from_the_parent(
    tmp_path: Path, model_cache_dir: Path, embedder: Any
) -> None:
    """With --workers, uvicorn's processes build their own app: the data dir and
    --no-chat given as flags must reach them."""
    data_dir = tmp_path / "workers-data"
    settings = isolated_settings(tmp_path, data_dir=data_dir, cache_dir=model_cache_dir)
    ingest(settings, embedder=embedder)
    port = free_port()
    log = tmp_path / "workers.log"
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "rag", "--data-dir", str(data_dir), "serve", "--port",
               str(port), "--workers", "2", "--no-chat"]  # fmt: skip
    env = clean_env(model_cache_dir)
    with serving(command, log, f"{url}/readyz", timeout=120, env=env, cwd=REPO):
        assert httpx.get(f"{url}/readyz").json()["documents"] == 1
        answers = {
            httpx.post(f"{url}/api/ask", json={"question": "How big is Trainium 3?"},
                       timeout=60).json()["answer"]
            for _ in range(4)
        }  # fmt: skip
        assert len(answers) == 1 and "credit card" in answers.pop()
        assert httpx.get(f"{url}/").status_code == 404, "--no-chat reached the workers"
