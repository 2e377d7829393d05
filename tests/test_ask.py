"""Integration tests of the answer path with the real model and a real on-disk Chroma:
exact quotes, the dev question set, follow-ups, refusals, and the CLI contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from evals.metrics import CorpusFacts, score_case
from evals.schema import load_suite
from rag.index.ingest import ingest
from rag.pipeline import Conversation, Pipeline, QuestionError, build_pipeline
from rag.settings import Settings
from tests.helpers import ANSWER_KEYS, isolated_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
SUITE = REPO / "evals" / "suites" / "trainium.yaml"


@pytest.fixture(scope="module")
def corpus_settings(
    tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> Settings:
    settings = isolated_settings(
        tmp_path_factory.getbasetemp(),
        data_dir=tmp_path_factory.mktemp("ask-data"),
        cache_dir=model_cache_dir,
    )
    ingest(settings, embedder=embedder)
    return settings


@pytest.fixture(scope="module")
def pipeline(corpus_settings: Settings) -> Iterator[Pipeline]:
    built = build_pipeline(corpus_settings)
    yield built
    built.close()


def dev_cases() -> list[dict[str, Any]]:
    """The dev questions (issue 3) now live in the eval suite's schema."""
    cases: list[dict[str, Any]] = yaml.safe_load(SUITE.read_text())["cases"]
    return cases


def test_dev_set_at_least_90_percent_right(pipeline: Pipeline) -> None:
    suite = load_suite(SUITE)
    assert len(suite.cases) >= 40
    corpus = (REPO / "corpus" / "trainium-article.md").read_text(encoding="utf-8")
    documents = {"trainium-article.md": corpus}
    facts = CorpusFacts([corpus])
    wrong = []
    for case in suite.cases:
        answer = pipeline.ask(case.question, case.history).to_json()
        result = score_case(case, answer, 0.0, documents, facts)
        if not result.correct:
            wrong.append((case.id, answer["answer"][:80]))
    share = 1 - len(wrong) / len(suite.cases)
    assert share >= 0.9, f"{share:.0%} right; wrong: {wrong}"


def test_every_quote_is_the_exact_source_text(pipeline: Pipeline) -> None:
    corpus_text = (REPO / "corpus" / "trainium-article.md").read_text(encoding="utf-8")
    checked = 0
    for case in dev_cases():
        answer = pipeline.ask(case["question"], case.get("history", [])).to_json()
        for citation in answer["citations"]:
            assert citation["source"] == "trainium-article.md"
            assert corpus_text[citation["start"] : citation["end"]] == citation["quote"]
            checked += 1
        for item in answer["evidence"]:
            assert corpus_text[item["start"] : item["end"]] == item["quote"]
        for sentence in answer["sentences"]:
            assert set(sentence["citations"]) <= {c["id"] for c in answer["citations"]}
    assert checked >= 40


def test_refusal_shape(pipeline: Pipeline) -> None:
    answer = pipeline.ask("How do you say good morning in Japanese?").to_json()
    assert answer["refused"] is True
    assert "documents don't say" in answer["answer"]
    assert answer["citations"] == []
    assert answer["sentences"] == [{"text": answer["answer"], "citations": []}]
    assert answer["evidence"], "a refusal still reports what was retrieved"


def test_followups_use_the_conversation(pipeline: Pipeline) -> None:
    conversation = Conversation()
    first = pipeline.chat("Which subsidiary develops Amazon's AI chips?", conversation)
    assert "Annapurna Labs" in first.answer
    second = pipeline.chat("Where is it based?", conversation)
    assert "Austin" in second.answer
    conversation.reset()
    assert conversation.turns == []


def test_question_limits(pipeline: Pipeline, corpus_settings: Settings) -> None:
    with pytest.raises(QuestionError, match="empty"):
        pipeline.ask("   \n ")
    with pytest.raises(QuestionError, match=str(corpus_settings.max_question_chars)):
        pipeline.ask("why " * corpus_settings.max_question_chars)


# -- the CLI ---------------------------------------------------------------------------------


def rag_cli(
    settings: Settings, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CACHE_DIR=str(settings.cache_dir), RAG_CONFIG=os.environ["RAG_CONFIG"])
    return subprocess.run(
        [sys.executable, "-m", "rag", "--data-dir", str(settings.data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_ask_json_contract(corpus_settings: Settings) -> None:
    result = rag_cli(corpus_settings, "ask", "--json", "When did Amazon buy Annapurna Labs?")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == ANSWER_KEYS
    assert answer["generator"] == "extractive" and answer["refused"] is False
    assert "2015" in answer["answer"]
    citation = answer["citations"][0]
    assert set(citation) == {"id", "source", "title", "page", "quote", "start", "end"}
    assert citation["page"] is None
    assert set(answer["timings_ms"]) == {"retrieve", "answer", "first_sentence", "total"}
    assert answer["fallback"] is None


def test_cli_ask_text_shows_numbered_citations(corpus_settings: Settings) -> None:
    result = rag_cli(corpus_settings, "ask", "How big is Trainium 3?")
    assert result.returncode == 0, result.stderr
    assert "credit card" in result.stdout
    assert "[1]" in result.stdout and "trainium-article.md" in result.stdout


@pytest.mark.parametrize("question", ["", "   "])
def test_cli_empty_question_is_a_usage_error(corpus_settings: Settings, question: str) -> None:
    result = rag_cli(corpus_settings, "ask", question)
    assert result.returncode == 2
    assert "empty" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_overlong_question_names_the_limit(corpus_settings: Settings) -> None:
    result = rag_cli(corpus_settings, "ask", "x" * 5000)
    assert result.returncode == 2
    assert str(corpus_settings.max_question_chars) in result.stderr


def test_chat_json_line_protocol(corpus_settings: Settings) -> None:
    lines = [
        "Which subsidiary develops Amazon's AI chips?",
        "Where is it based?",
        "",
        "/help",
        "/reset",
        "/nonsense",
        "   ",
        "x" * 5000,
        "How do you say good morning in Japanese?",
        "/quit",
        "Never read after quit",
    ]
    result = rag_cli(corpus_settings, "chat", "--json", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    # Exactly one object per non-empty input line, up to and including /quit.
    assert len(out) == 8
    assert "Annapurna" in out[0]["answer"] and set(out[0]) == ANSWER_KEYS
    assert "Austin" in out[1]["answer"]
    assert out[2] == {"command": "help"}
    assert out[3] == {"command": "reset"}
    assert set(out[4]) == {"error"}
    assert set(out[5]) == {"error"} and "1000" in out[5]["error"]
    assert out[6]["refused"] is True
    assert out[7] == {"command": "quit"}


def test_first_ask_builds_the_index_and_says_so(tmp_path: Path, corpus_settings: Settings) -> None:
    fresh = corpus_settings.model_copy(update={"data_dir": tmp_path / "fresh"})
    result = rag_cli(fresh, "ask", "--json", "What are Amazon's AI chips called?")
    assert result.returncode == 0, result.stderr
    assert "building it" in result.stderr
    assert "Trainium" in json.loads(result.stdout)["answer"]
    assert (tmp_path / "fresh" / "index.json").is_file()


NO_NETWORK = textwrap.dedent(
    """
    import socket, sys
    attempts = []
    def hook(event, args):
        if event == "socket.connect":
            sock, address = args[0], args[1]
            if sock.family != socket.AF_UNIX:
                attempts.append(repr(address))
        elif event == "socket.getaddrinfo":
            attempts.append("getaddrinfo " + repr(args[0]))
    sys.addaudithook(hook)
    from rag.cli import cli
    try:
        cli.main(args=sys.argv[1:], standalone_mode=False)
    finally:
        print("ATTEMPTS=" + repr(attempts), file=sys.stderr)
    """
)


def test_ask_makes_no_network_connection(corpus_settings: Settings, tmp_path: Path) -> None:
    script = tmp_path / "no_network.py"
    script.write_text(NO_NETWORK)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CACHE_DIR=str(corpus_settings.cache_dir), RAG_CONFIG=os.environ["RAG_CONFIG"])
    result = subprocess.run(
        [sys.executable, str(script), "--data-dir", str(corpus_settings.data_dir),
         "ask", "--json", "When was Trainium 3 launched?"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "December" in json.loads(result.stdout)["answer"]
    assert "ATTEMPTS=[]" in result.stderr, result.stderr[-2000:]


def test_the_langchain_face_runs_the_same_path(pipeline: Pipeline) -> None:
    """Other people's chains get the real retrieval and the real answer path."""
    from rag.langchain_face import EvidenceRetriever, answer_runnable

    question = "When did Amazon buy Annapurna Labs?"
    documents = EvidenceRetriever(live=pipeline.live, k=3).invoke(question)
    assert len(documents) == 3
    for found in documents:
        text = pipeline.live.document(found.metadata["source"])
        assert text is not None
        assert text.text[found.metadata["start"] : found.metadata["end"]] == found.page_content
    assert any("2015" in d.page_content for d in documents)

    runnable = answer_runnable(pipeline)
    direct = pipeline.ask(question).to_json()
    through = runnable.invoke({"question": question}).to_json()
    for key in ("answer", "refused", "citations", "sentences", "generator"):
        assert through[key] == direct[key]
    snapshots = list(runnable.stream(question))
    assert snapshots and snapshots[-1].answer == direct["answer"]
    refused = runnable.invoke("What is the phone number of Annapurna Labs?")
    assert refused.refused and refused.citations == []


def test_the_live_index_sees_another_process_ingest(
    corpus_settings: Settings, tmp_path: Path, embedder: Any
) -> None:
    """A long-running pipeline answers from documents ingested elsewhere, and forgets
    removed ones, without being rebuilt."""
    settings = corpus_settings.model_copy(update={"data_dir": tmp_path / "data"})
    ingest(settings, embedder=embedder)
    live_pipeline = build_pipeline(settings)
    try:
        extra = tmp_path / "depot.md"
        extra.write_text("# Depot\n\nThe Harbor depot was opened in 2011 by the port.\n")
        ingest(settings, [extra], embedder=embedder)  # as `rag ingest` in another process
        assert "depot.md" in [d.source for d in live_pipeline.live.documents()]
        answer = live_pipeline.ask("In which year was the Harbor depot opened?")
        assert not answer.refused and "2011" in answer.answer
        document, removed = live_pipeline.live.remove("depot.md")
        assert document is not None and removed >= 1
        assert "depot.md" not in [d.source for d in live_pipeline.live.documents()]
        assert live_pipeline.ask("In which year was the Harbor depot opened?").refused
    finally:
        live_pipeline.close()


def test_an_unknown_generator_is_refused_before_anything_runs(pipeline: Pipeline) -> None:
    from rag.errors import InputError

    # Even a question the documents do not answer: its refusal would carry a false label.
    with pytest.raises(InputError, match="Unknown generator 'gpt-9'"):
        pipeline.ask("What is the phone number of Annapurna Labs?", generator="gpt-9")
    with pytest.raises(InputError, match="Unknown generator 'gpt-9'"):  # and on an empty scope
        pipeline.ask("Where is Annapurna Labs?", generator="gpt-9", documents=["nope.md"])


# -- scoping and dirty input (issue 13) ------------------------------------------------------


def test_a_scope_that_names_nothing_is_refused_never_widened(pipeline: Pipeline) -> None:
    question = "Where is Annapurna Labs based?"
    scoped = pipeline.ask(question, documents=["trainium-*.md"])
    assert "Austin" in scoped.answer
    assert scoped.to_json() | {"timings_ms": {}} == pipeline.ask(question).to_json() | {
        "timings_ms": {}
    }
    nothing = pipeline.ask(question, documents=["reports/*.pdf", "nope.md"])
    assert nothing.refused and "No indexed document matches" in nothing.answer
    assert "'reports/*.pdf', 'nope.md'" in nothing.answer
    assert nothing.evidence == [] and nothing.citations == []
    query, evidence = pipeline.retrieve(question, documents=["nope.md"])
    assert evidence == [] and query == question


def _rag_bytes(settings: Settings, *args: bytes, stdin: bytes | None = None) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_CACHE_DIR=str(settings.cache_dir), RAG_CONFIG=os.environ["RAG_CONFIG"])
    command = [sys.executable.encode(), b"-m", b"rag", b"--data-dir", bytes(settings.data_dir)]
    return subprocess.run([*command, *args], input=stdin, capture_output=True, env=env, timeout=300)


def test_cli_ask_cleans_undecodable_bytes_and_control_characters(
    corpus_settings: Settings,
) -> None:
    # Was "Internal error: TypeError" from the tokenizer.
    result = _rag_bytes(
        corpus_settings, b"ask", b"--json", b"Where is Annapurna\xff\xfe Labs\x01\x1b based?"
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == "Where is Annapurna\ufffd\ufffd Labs based?"
    assert "Austin" in answer["answer"]


def test_cli_chat_json_answers_every_dirty_line(corpus_settings: Settings) -> None:
    lines = [
        b"Which subsidiary develops Amazon\xe2\x80\x99s AI chips\xff?",
        b"Where is it\x07 based?",
        b"\x00\x01\x02",
        b"\xff\xfe\xfd",
    ]
    result = _rag_bytes(corpus_settings, b"chat", b"--json", stdin=b"\n".join(lines) + b"\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(out) == 4, result.stdout
    assert "Annapurna" in out[0]["answer"] and "Austin" in out[1]["answer"]
    assert set(out[2]) == {"error"} and "empty" in out[2]["error"]
    # Nothing but undecodable bytes: answered (as a follow-up of the chat so far).
    assert set(out[3]) == ANSWER_KEYS and out[3]["question"] == "\ufffd\ufffd\ufffd"


def test_cli_doc_scopes_ask_and_chat(corpus_settings: Settings) -> None:
    refused = rag_cli(corpus_settings, "ask", "--doc", "nope*", "Where is Annapurna Labs based?")
    assert refused.returncode == 0, refused.stderr
    assert "No indexed document matches 'nope*'" in refused.stdout
    chat = rag_cli(
        corpus_settings, "chat", "--json", "--doc", "trainium*",
        stdin="Where is Annapurna Labs based?\n",
    )  # fmt: skip
    assert "Austin" in json.loads(chat.stdout)["answer"]


def test_retrieval_filters_candidates_to_the_allowed_sources(
    tmp_path: Path, model_cache_dir: Path, embedder: Any
) -> None:
    """The scope is applied in Chroma and in BM25, so a scoped document's sentences are
    found even when closer ones elsewhere would fill every slot."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "zephyr.md").write_text("# Zephyr\n\nThe Zephyr widgets are purple.\n")
    settings = isolated_settings(tmp_path, data_dir=tmp_path / "d", cache_dir=model_cache_dir)
    ingest(settings, [REPO / "corpus", extra], embedder=embedder)
    pipeline = build_pipeline(settings)
    try:
        retriever = pipeline.live.retriever
        question = "Where is Annapurna Labs based?"
        unscoped = retriever.retrieve(question, k=3)
        assert {e.source for e in unscoped} == {"trainium-article.md"}
        scoped = retriever.retrieve(question, k=3, sources={"zephyr.md"})
        assert scoped and {e.source for e in scoped} == {"zephyr.md"}
        assert retriever.retrieve(question, k=3, sources=set()) == []
        dense = retriever.dense_scores(question, 3, sources={"zephyr.md"})
        assert dense and {retriever.view.chunks[i].source for i in dense} == {"zephyr.md"}
        assert pipeline.scope(["*.md"]) == {"trainium-article.md", "zephyr.md"}
        assert pipeline.scope(["zeph*", "nope"]) == {"zephyr.md"}
        assert pipeline.scope(None) is None
    finally:
        pipeline.close()
