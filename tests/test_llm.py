"""Generative answers with a real llama.cpp: the packaged Gemma 3 270M base model is
the adversary (it invents prices, names and dates freely). Nothing it invents may
reach the user; answers still come back with valid quotes. The ``openai`` backend is
tested against llama-cpp-python's own OpenAI-compatible server, started here."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.metrics import CorpusFacts
from rag.answering.verify import Verifier
from rag.errors import RagError
from rag.index.ingest import ingest
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings, load_settings
from tests.helpers import free_port, isolated_settings, serving

pytestmark = pytest.mark.slow

if not os.environ.get("CI"):
    pytest.importorskip("llama_cpp", reason="the [llm] extra is not installed (make llm)")

REPO = Path(__file__).resolve().parent.parent
ARTICLE = (REPO / "corpus" / "trainium-article.md").read_text(encoding="utf-8")
QUESTIONS = [
    "How big is Trainium 3?",
    "How much cheaper could Trainium 3 make AI models?",
    "Where is Annapurna Labs based?",
    "When did Amazon buy Annapurna Labs?",
    "Does Amazon sell its chips?",
    "Which companies dominate the GPU market?",
    "What does AI training require?",
    "How much more powerful is Trainium 4 expected to be than Trainium 3?",
]


@pytest.fixture(scope="module")
def gemma_settings(
    tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> Settings:
    from rag.llm.models import gemma_path

    settings = isolated_settings(
        tmp_path_factory.getbasetemp(),
        data_dir=tmp_path_factory.mktemp("llm-data"),
        cache_dir=model_cache_dir,
        llm_model_path=gemma_path(model_cache_dir),
        llm_chat_format="gemma",
        llm_max_tokens=80,
        llm_context=2048,
    )
    ingest(settings, embedder=embedder)
    return settings


@pytest.fixture(scope="module")
def pipeline(gemma_settings: Settings) -> Iterator[Pipeline]:
    built = build_pipeline(gemma_settings)
    yield built
    built.close()


def assert_trustworthy(answer: Any, facts: CorpusFacts) -> None:
    """Every released sentence is supported by its own quotes; nothing is invented."""
    data = answer.to_json()
    assert not data["refused"], data
    assert data["sentences"] and data["citations"]
    documents = {"trainium-article.md": ARTICLE}
    by_id = {c.id: c for c in answer.citations}
    for citation in data["citations"]:
        assert ARTICLE[citation["start"] : citation["end"]] == citation["quote"]
    for sentence in answer.sentences:
        assert sentence.citations, sentence
        verdict = Verifier().check(sentence.text, [by_id[i] for i in sentence.citations],
                                   documents)  # fmt: skip
        assert verdict.ok, (sentence.text, verdict.reasons)
    assert facts.unknown(data["answer"]) == [], data["answer"]


def test_adversary_inventions_never_reach_the_user(pipeline: Pipeline) -> None:
    facts = CorpusFacts([ARTICLE])
    dropped = 0
    for question in QUESTIONS:
        answer = pipeline.ask(question, generator="llama-cpp")
        assert answer.generator == "llama-cpp"
        assert_trustworthy(answer, facts)
        dropped += len(answer.dropped)
    # The adversary did invent things (or this test would prove nothing), and the
    # verifier removed them.
    assert dropped > 0


def test_llm_is_not_asked_when_the_documents_do_not_say(pipeline: Pipeline) -> None:
    answer = pipeline.ask("How do you say good morning in Japanese?", generator="llama-cpp")
    assert answer.refused and answer.citations == []


@pytest.fixture(scope="module")
def llm_server(gemma_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("llm-server") / "server.log"
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gemma_settings.llm_model_path),
        "--host", "127.0.0.1", "--port", str(port), "--chat_format", "gemma", "--n_ctx", "2048",
        "--model_alias", "gemma",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    with serving(command, log, f"{base}/models", timeout=120):
        yield base


def test_openai_backend_against_a_real_server(gemma_settings: Settings, llm_server: str) -> None:
    settings = gemma_settings.model_copy(update={"llm_base_url": llm_server, "llm_model": "gemma"})
    served = build_pipeline(settings)
    facts = CorpusFacts([ARTICLE])
    try:
        for question in QUESTIONS[:2]:
            answer = served.ask(question, generator="openai")
            assert answer.generator == "openai"
            assert_trustworthy(answer, facts)
    finally:
        served.close()


def test_unreachable_server_is_a_clear_error(gemma_settings: Settings) -> None:
    settings = gemma_settings.model_copy(
        update={"llm_base_url": f"http://127.0.0.1:{free_port()}/v1", "llm_timeout_s": 5.0}
    )
    served = build_pipeline(settings)
    try:
        with pytest.raises(RagError, match="server failed"):
            served.ask("Where is Annapurna Labs based?", generator="openai")
    finally:
        served.close()


def test_llm_support_check_separates_stated_from_contradicted(model_cache_dir: Path) -> None:
    """The packaged Qwen as judge: P(yes) for a stated fact beats a contradicted one."""
    from rag.llm.judge import SUPPORT_THRESHOLD, LlmJudge

    settings = load_settings(cache_dir=model_cache_dir, llm_threads=2)
    judge = LlmJudge(settings, "llama-cpp")
    quote = ["Unlike Nvidia, Amazon does not sell its chips."]
    stated = judge.support("Amazon does not sell its chips.", quote)
    contradicted = judge.support("Amazon sells its chips to other companies.", quote)
    assert stated > SUPPORT_THRESHOLD > contradicted, (stated, contradicted)
