"""The reader: its input, its "none" slot, the shipped file, and its recipe run on a
tiny slice of the reader corpus (real index, real MiniLM weights, real ONNX export)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evals.reader_data import Candidate, Question, data_hash, read_questions
from evals.reader_eval import held_out_figures
from evals.reader_recipe import Recipe
from evals.reader_train import main, split
from rag.answering.reader import (
    INFO_FILE,
    MODEL_FILE,
    READER_DIR,
    Reader,
    load_reader,
    needs_context,
    none_probability,
    passage_text,
)
from rag.errors import IndexCorruptError


def _candidate(quote: str, label: int = 0, context: str = "", heading: str = "") -> Candidate:
    return Candidate(
        "doc.md", "Doc", quote, 0, len(quote), heading, context, False, 0.5, 1.0, label
    )


def test_the_passage_leads_with_the_sentence_and_adds_context_only_where_needed() -> None:
    alone = _candidate("Ajv validates JSON.", context="The line before.", heading="Usage")
    assert passage_text(alone) == "Ajv validates JSON. | Doc > Usage"
    pronoun = _candidate("It is  fast.", context="Ajv validates JSON.")
    assert passage_text(pronoun) == "It is fast. | Doc | Ajv validates JSON."
    row = _candidate("| -v | verbose |", context="| Flag | Meaning |")
    assert passage_text(row).endswith("| Flag | Meaning |")
    assert not needs_context("Items are fine.", "") and not needs_context("It works.", "")
    assert needs_context("These are ignored.", "Some flags.")


def test_the_none_slot_is_a_softmax_member_at_logit_zero() -> None:
    assert none_probability(np.zeros(0)) == 1.0
    assert none_probability(np.array([0.0])) == pytest.approx(0.5)
    assert none_probability(np.array([np.log(3.0)])) == pytest.approx(0.25)
    assert none_probability(np.array([-50.0, -50.0])) > 0.99
    assert none_probability(np.array([200.0, 199.0])) < 1e-6  # no overflow


def test_held_out_figures_count_right_as_the_suites_do() -> None:
    answered = Question("a", "d", "answerable", "q?", "q?", [_candidate("x", 1), _candidate("y")])
    missed = Question("b", "d", "answerable", "q?", "q?", [_candidate("x"), _candidate("y")])
    refusing = Question("c", "d", "unanswerable", "q?", "q?", [_candidate("x"), _candidate("y")])
    figures = held_out_figures(
        [answered, missed, refusing],
        [np.array([4.0, -1.0]), np.array([3.0, 0.0]), np.array([-5.0, -6.0])],
    )
    # The first is right (its positive is on top), the last refused; the second's
    # answer is not among its candidates: nothing it does is right.
    assert figures["right"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["top1_answerable"] == 1.0
    assert figures["refusal_auc"] == 1.0


def test_the_split_holds_out_whole_documents() -> None:
    questions = [
        Question(f"q{i}", f"doc{i % 5}.md", "answerable", "?", "?", [_candidate("x", 1)])
        for i in range(50)
    ]
    train, held = split(questions, Recipe(held_out_docs=2))
    assert len({q.document for q in held}) == 2
    assert not {q.document for q in train} & {q.document for q in held}
    assert split(questions, Recipe(held_out_docs=2)) == (train, held)  # seeded
    assert data_hash(questions) == data_hash(list(reversed(questions)))


def test_the_shipped_reader_reads_question_and_sentence_together() -> None:
    reader = load_reader()
    info = json.loads((READER_DIR / INFO_FILE).read_text(encoding="utf-8"))
    assert "all-MiniLM-L6-v2" in info["base_model"] and len(info["data_hash"]) == 16
    trained = info["trained"]
    assert trained["int8_top1_agreement"] >= 0.85
    fp32 = next(e for e in trained["evaluations"] if e["at"] == "epoch 2")
    assert fp32["top1_answerable"] - trained["held_out_int8"]["top1_answerable"] <= 0.01
    assert len(info["trained"]["held_out_documents"]) >= 15
    assert (READER_DIR / MODEL_FILE).stat().st_size < 30 * 1024 * 1024
    sentences = [
        _candidate("The library is released under the MIT licence."),
        _candidate("Version 2.0 was released in March 2021."),
        _candidate("Install it with npm install widget."),
    ]
    logits = reader.scores("When was version 2.0 released?", sentences)
    assert logits.shape == (3,) and int(np.argmax(logits)) == 1
    logits = reader.scores("How do I install it?", sentences)
    assert int(np.argmax(logits)) == 2
    assert reader.scores("anything?", []).shape == (0,)


def test_a_missing_reader_is_refused_with_the_command_that_makes_it(tmp_path: Path) -> None:
    with pytest.raises(IndexCorruptError, match="make train-reader"):
        Reader(tmp_path)


def test_the_recipe_trains_exports_and_resumes_on_a_tiny_slice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--documents",
        "2",
        "--held-out",
        "1",
        "--layers",
        "1",
        "--max-tokens",
        "48",
        "--epochs",
        "1",
        "--limit",
        "24",
        "--min-agreement",
        "0",
        "--candidates",
        str(tmp_path / "candidates.jsonl"),
        "--work",
        str(tmp_path / "work"),
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(args) == 0
    questions = read_questions(tmp_path / "candidates.jsonl")
    assert len({q.document for q in questions}) == 2
    assert any(q.answerable for q in questions) and any(not q.answerable for q in questions)
    info = json.loads((tmp_path / "out" / INFO_FILE).read_text(encoding="utf-8"))
    assert info["layers"] == 1 and info["data_hash"] == data_hash(questions)
    assert [e["at"] for e in info["trained"]["evaluations"]] == ["epoch 1", "chosen"]
    reader = Reader(tmp_path / "out")
    assert reader.scores(questions[0].query, questions[0].candidates).shape == (
        len(questions[0].candidates),
    )
    # A second run finds the finished checkpoint and trains no step again.
    capsys.readouterr()
    assert main(args) == 0
    assert "Resuming at epoch 2, step 0" in capsys.readouterr().err


def test_the_held_out_suite_is_the_readers_held_out_documents() -> None:
    from evals.reader_export import HELD_OUT_SUITE
    from evals.schema import load_suite

    held = json.loads((READER_DIR / INFO_FILE).read_text(encoding="utf-8"))["trained"][
        "held_out_documents"
    ]
    suite = load_suite(HELD_OUT_SUITE)
    assert sorted(p.name for p in suite.corpus) == held
    assert {c.document for c in suite.cases} == set(held)
