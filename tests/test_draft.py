"""``rag draft-suite``: the reply parsing and follow-up rewriting as plain functions; the
drafting logic over a real scratch index with scripted LLM replies; the command with a
scripted generator (registered through the real registry); and, in ``test_llm.py``'s
manner, end to end with the packaged Gemma 3 270M."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evals.cli import draft_suite
from evals.draft import (
    Drafter,
    draft,
    locate,
    parse_reply,
    pronoun_followup,
    quotas,
    read_reply,
    sample_sentences,
)
from evals.runner import scratch_pipeline
from evals.schema import load_suite
from rag.documents.loading import load_file
from rag.errors import InputError
from rag.settings import Settings
from tests.helpers import ScriptedBackend

REPO = Path(__file__).resolve().parent.parent
PUMPS = (
    "# Orion pump\n\nThe Orion-5 pump was released in March 2019 by Kestrel Works. "
    "The Orion-5 pump moves 40 litres of water per minute. "
    "At start-up the pump reads its settings from /etc/orion.conf on the controller. "
    "The Orion-5 pump was designed by the Kestrel team in Oslo. "
    "The warranty of every Orion-5 pump lasts 3 years from the day of purchase.\n"
)
# What a model might reply for each sentence (keyed by a word of it).
REPLIES = {
    "released": "Question: When did the Orion-5 pump come out?\nAnswer: March 2019\n",
    "litres": "Question: How much water does the pump move?\nAnswer: 90 litres a minute\n",
    "settings": "Question: Which file does the pump read its settings from?\n"
    "Answer: /etc/orion.conf\n",
    "designed": "Question: In which city was the Orion-5 pump designed?\nAnswer: Oslo.\n",
    "warranty": "Question: How long does the warranty of the Orion-5 pump last?\nAnswer: 3 years\n",
}


class RepliesBackend:
    """Replies by the sentence in the prompt, as a model would; records the prompts."""

    name = "replies"

    def __init__(self, replies: dict[str, str]) -> None:
        self.replies = replies
        self.prompts: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        self.prompts.append(messages)
        asked = messages[-1]["content"].split("Sentence:", 1)[1]
        reply = next((r for key, r in self.replies.items() if key in asked), "Question: NONE")
        yield from (reply[i : i + 5] for i in range(0, len(reply), 5))


# -- plain functions ----------------------------------------------------------------------


def test_the_fact_must_be_a_short_span_the_question_does_not_give_away() -> None:
    sentence = "The Orion-5 pump was released in March 2019 by Kestrel Works."
    assert parse_reply("Question: When did it come out?\nAnswer: march 2019.", sentence) == (
        "When did it come out?",
        "March 2019",  # as the sentence writes it
    )
    assert parse_reply("Question: NONE", sentence) == "the model found nothing to ask"
    assert parse_reply("Question: Tell me\nAnswer: 2019", sentence) == "not a question"
    assert parse_reply("Question: When?\nAnswer: 2020", sentence) == "not a question"
    assert parse_reply("Question: When was it out?\nAnswer: April 2019", sentence) == (
        "the answer is not a span of the sentence"
    )
    assert parse_reply("Question: When was it out?\nAnswer: " + sentence, sentence) == (
        "the answer is not a short span"
    )
    assert parse_reply("Question: Was it released in March 2019?\nAnswer: March 2019",
                       sentence) == "the question gives its answer away"  # fmt: skip
    assert locate("`/etc/orion.conf`", "reads /etc/orion.conf at start") == "/etc/orion.conf"
    assert locate("-K` or `--key", "|`-K` or `--key` |Path to ssl key file |") == "-K"


def test_the_model_is_stopped_after_the_answer_line() -> None:
    tokens = iter(["Question: Why?\nAn", "swer: 3 ye", "ars\n", "Question: more", "never"])
    assert read_reply(tokens) == "Question: Why?\nAnswer: 3 years\n"
    assert list(tokens) == ["Question: more", "never"]


@pytest.mark.parametrize(
    ("first", "second", "followup"),
    [
        ("Who wrote Vixie Cron?", "Where does Vixie Cron keep crontab files?",
         "Where does it keep crontab files?"),
        ("When was the Orion-5 pump released?", "How much water does the Orion-5 pump move?",
         "How much water does it move?"),
        ("What is the Orion-5?", "What is the Orion-5's warranty?", "What is its warranty?"),
        ("Which file holds the settings?", "Where is the file?", None),  # nothing named
        ("What is the option for the key?", "What option disables caching?", None),
    ],
)  # fmt: skip
def test_pronoun_followups(first: str, second: str, followup: str | None) -> None:
    assert pronoun_followup(first, second) == followup


def test_quotas_keep_most_cases_answerable() -> None:
    assert quotas(30) == (6, 3)
    assert quotas(10) == (2, 1)
    assert quotas(2) == (0, 0)


def test_the_command_is_a_rag_entry_point() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    commands = project["project"]["entry-points"]["rag.commands"]
    assert commands["draft-suite"] == "evals.cli:draft_suite"


def test_unusable_paths_and_missing_extra_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    obj = {"overrides": {"data_dir": tmp_path / "data"}}
    out = ["-o", str(tmp_path / "s.yaml")]
    result = runner.invoke(draft_suite, [str(tmp_path / "nope.md"), *out], obj=obj)
    assert isinstance(result.exception, InputError) and "no such file" in str(result.exception)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.bin").write_bytes(b"\0\1")
    result = runner.invoke(draft_suite, [str(tmp_path / "empty"), *out], obj=obj)
    assert "no supported document" in str(result.exception)
    result = runner.invoke(draft_suite, [str(tmp_path), *out, "--generator", "extractive"],
                           obj=obj)  # fmt: skip
    assert result.exit_code == 2 and "needs an LLM generator" in result.output

    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *more: Any) -> Any:
        return None if name == "llama_cpp" else real(name, *more)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    result = runner.invoke(draft_suite, [str(tmp_path), *out], obj=obj)
    assert isinstance(result.exception, InputError)
    assert "[llm] extra" in str(result.exception) and "pip install" in str(result.exception)


# -- drafting over a real index -----------------------------------------------------------


@pytest.fixture
def pumps(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "pumps.md").write_text(PUMPS, encoding="utf-8")
    return folder


@pytest.mark.slow
def test_drafting_keeps_checked_questions_and_deletes_for_unanswerable(
    pumps: Path, make_settings: Callable[..., Settings], embedder: Any
) -> None:
    documents = [load_file(pumps / "pumps.md", "pumps.md")]
    backend = RepliesBackend(REPLIES)
    with scratch_pipeline(make_settings(), [pumps], embedder) as pipeline:
        sentences = sample_sentences(documents, seed=3)
        assert sentences == sample_sentences(documents, seed=3)  # the seed fixes the order
        result = draft(Drafter(backend, pipeline, documents), sentences, max_questions=5)
    assert documents[0].text == PUMPS
    assert result.tried == 5 and len(backend.prompts) == 5
    # The invented "90 litres" is not in its sentence: no case.
    assert result.rejected == {"the answer is not a span of the sentence": 1}
    assert result.counts() == {"answerable": 3, "unanswerable": 1}
    for case in result.cases:
        assert "Sentence before it" not in str(backend.prompts)  # no neighbour context
        if case["kind"] == "answerable":
            (fact,), quote = case["expected"][0], case["expected_quote"][0]
            assert fact in quote and quote in " ".join(PUMPS.split())
        else:
            fact = case["forbidden"][0]
            start, end = result.deleted["pumps.md"][0]
            assert fact in PUMPS[start:end] and fact not in PUMPS[:start] + PUMPS[end:]


@pytest.mark.slow
def test_draft_suite_command_writes_a_suite_that_loads(
    pumps: Path, tmp_path: Path, scripted_generator: Callable[[str], ScriptedBackend],
    embedder: Any,
) -> None:  # fmt: skip
    # One reply for every sentence: only the sentence that holds "3 years" gets a case.
    scripted_generator("Question: How long is the pump covered?\nAnswer: 3 years\n")
    out = tmp_path / "suites" / "pumps.yaml"
    args = [str(pumps), "-o", str(out), "--generator", "scripted", "--max-questions", "2"]
    obj = {"overrides": {"data_dir": tmp_path / "data"}}
    result = CliRunner().invoke(draft_suite, args, obj=obj)
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# DRAFT: written by `rag draft-suite`; review every case")
    suite = load_suite(out)
    assert suite.split == "draft" and len(suite.cases) == 1
    # Two cases wanted, so none is made unanswerable: the corpus is the document itself.
    case = suite.cases[0]
    assert case.kind == "answerable" and case.expected == (("3 years",),)
    assert suite.corpus == [(pumps / "pumps.md").resolve()] and case.document == "pumps.md"
    again = CliRunner().invoke(draft_suite, args, obj=obj)
    assert isinstance(again.exception, InputError) and "--force" in str(again.exception)


# -- end to end with a real model ---------------------------------------------------------


@pytest.mark.slow
def test_draft_suite_with_gemma_runs_and_is_deterministic(
    pumps: Path, tmp_path: Path, model_cache_dir: Path, embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    if not os.environ.get("CI"):
        pytest.importorskip("llama_cpp", reason="the [llm] extra is not installed (make llm)")
    from rag.llm.models import gemma_path

    monkeypatch.setenv("RAG_LLM_MODEL_PATH", str(gemma_path(model_cache_dir)))
    monkeypatch.setenv("RAG_LLM_CHAT_FORMAT", "gemma")
    monkeypatch.setenv("RAG_LLM_CONTEXT", "2048")
    obj = {"overrides": {"data_dir": tmp_path / "data"}}
    texts = []
    for name in ("one", "two"):
        out = tmp_path / name / "draft.yaml"
        args = [str(pumps), "-o", str(out), "--max-questions", "2", "--seed", "5", "--json"]
        result = CliRunner().invoke(draft_suite, args, obj=obj)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["tried"] >= 1
        texts.append(out.read_text(encoding="utf-8"))
        suite = load_suite(out)  # whatever the small model wrote, the file is a valid suite
        for case in suite.cases:
            for (fact,) in case.expected:
                assert fact.lower() in " ".join(case.expected_quote).lower()
    assert texts[0] == texts[1].replace("two/", "one/")  # same seed, same draft
