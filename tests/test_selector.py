"""The learned answer selector: its weights file, its decisions, its training and the
curve ``rag eval`` reports. Unit tests build evidence by hand (``FakeView``); the
integration test answers over the bundled article with the real model and Chroma."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evals.selector_curve import curve, curve_text
from evals.selector_groups import Group
from evals.selector_policy import Choice, Policy, cross_validate, keeps_gates, meets_gates
from evals.selector_train import train, where_lost
from rag.answering.answer import with_context
from rag.answering.question import analyze
from rag.answering.selector import (
    PACKAGED_MODEL,
    QUESTION_FEATURES,
    LearnedSelector,
    Quote,
    RuleSelector,
    load_model,
    make_selector,
)
from rag.answering.selector_features import FEATURES, features
from rag.documents.chunking import CHUNKER_VERSION
from rag.errors import IndexCorruptError
from rag.index.ingest import ingest
from rag.pipeline import Pipeline, build_pipeline
from rag.settings import Settings
from tests.helpers import isolated_settings
from tests.test_answer_unit import FakeView, candidates

MODEL = load_model()


def test_the_packaged_weights_match_this_version() -> None:
    """A feature or splitter change without `make train` would mis-score silently."""
    raw = json.loads(PACKAGED_MODEL.read_text(encoding="utf-8"))
    assert tuple(raw["features"]) == FEATURES
    assert raw["chunker_version"] == CHUNKER_VERSION
    assert raw["embedding_model"] == Settings().embedding_model
    assert len(raw["sentence"]["coef"]) == len(FEATURES)
    assert tuple(raw["question_features"]) == QUESTION_FEATURES
    assert len(raw["answerable"]["coef"]) == len(QUESTION_FEATURES)
    assert 0 < MODEL.include_threshold < 1 and 0 < MODEL.threshold < 1
    assert PACKAGED_MODEL.stat().st_size < 25 * 1024 * 1024


def test_weights_for_other_features_or_models_are_refused(tmp_path: Path) -> None:
    raw = MODEL.to_json()
    raw["features"] = [*raw["features"][:-1], "something_else"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="make train"):
        load_model(other)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexCorruptError, match="unreadable"):
        load_model(broken)
    with pytest.raises(IndexCorruptError, match="embedding model"):
        LearnedSelector(MODEL, "some-other-embedding-model")


def test_the_setting_chooses_the_selector() -> None:
    assert isinstance(make_selector(Settings(answer_selector="rules")), RuleSelector)
    learned = make_selector(Settings(selector_threshold=0.5, selector_max_sentences=1))
    assert isinstance(learned, LearnedSelector)
    assert learned.threshold == 0.5 and learned.max_sentences == 1


def test_the_threshold_decides_refusal_and_the_best_sentence_leads() -> None:
    view = FakeView()
    found = candidates(view, {"launched in March 2021": 0.8, "Berlin": 0.3})
    question = "When did the Widget 2 launch?"
    selector = LearnedSelector(MODEL, MODEL.embedding_model)
    quote = selector.quote(question, found, view, None)  # type: ignore[arg-type]
    assert 0.0 <= quote.answerable <= 1.0
    assert "March 2021" in quote.scored[0].evidence.quote  # the best P(answers)
    assert quote.sentences[0] == quote.scored[0].evidence
    nothing = selector.quote(question, [], view, None)  # type: ignore[arg-type]
    assert nothing == Quote([], [], 0.0)
    never = LearnedSelector(MODEL, MODEL.embedding_model, threshold=1.0)
    assert never.select(question, found, view).refused  # type: ignore[arg-type]
    always = LearnedSelector(MODEL, MODEL.embedding_model, threshold=0.0, max_sentences=2)
    chosen = always.select(question, found, view)  # type: ignore[arg-type]
    assert not chosen.refused
    assert any("March 2021" in e.quote for e in chosen.sentences)
    assert len([e for e in chosen.sentences if e.chunk_id in {f.chunk_id for f in found}]) <= 3


def test_instruction_like_text_is_never_quoted_whatever_its_score() -> None:
    view = FakeView()
    found = candidates(view, {"launched in March 2021": 0.9})
    found = [replace(e, instruction_like="March 2021" in e.quote) for e in found]
    selector = LearnedSelector(MODEL, MODEL.embedding_model, threshold=0.0)
    chosen = selector.select("When did the Widget 2 launch?", found, view)  # type: ignore[arg-type]
    assert all("March 2021" not in e.quote for e in chosen.sentences)
    screened = [s for s in chosen.scored if s.evidence.instruction_like]
    assert screened and screened[0].relevance == 0.0 and "instruction" in screened[0].reason


def _group(
    name: str, refuse: bool, positive: int | None, rows: np.ndarray, document: str = "a"
) -> Group:
    labels = np.zeros(len(rows), dtype=int)
    if positive is not None:
        labels[positive] = 1
    return Group(name, document, "dev", refuse, rows, labels, meta={"id": name})


def test_training_is_deterministic_and_writes_loadable_weights(tmp_path: Path) -> None:
    """On synthetic rows where the first feature marks the answer, training finds it,
    the same data gives the same weights, and the file loads back."""
    rng = np.random.default_rng(0)
    groups = []
    for doc in ("a", "b", "c", "trainium-article.md"):
        for n in range(12):
            rows = rng.normal(size=(6, len(FEATURES)))
            refuse = n % 3 == 0
            if not refuse:
                rows[2, 0] += 4.0
            groups.append(_group(f"{doc}-{n}", refuse, None if refuse else 2, rows, doc))
    first = train(groups, MODEL.embedding_model, with_generated=False)
    second = train(groups, MODEL.embedding_model, with_generated=False)
    assert first.to_json() == second.to_json()
    assert first.sentence.coef[0] == max(first.sentence.coef)
    path = tmp_path / "selector.json"
    path.write_text(json.dumps(first.to_json()), encoding="utf-8")
    loaded = load_model(path)
    assert np.allclose(loaded.sentence.coef, first.sentence.coef)
    assert np.allclose(loaded.answerable.coef, first.answerable.coef)
    assert loaded.threshold == first.threshold
    cv = first.trained["cross_validation"]
    assert cv["questions"] == len(groups) and cv["cv_right"] > 0.8


def test_drafted_questions_train_the_sentence_model_but_never_choose_the_settings() -> None:
    """Drafted questions (``rag draft-suite``) add rows to the sentence model, but the
    cross-validated figures that choose the settings count labelled questions only,
    each scored by a model that never saw its document's drafted questions."""
    rng = np.random.default_rng(1)
    labelled, drafted = [], []
    for doc in ("a", "b", "trainium-article.md"):
        for n in range(10):
            rows = rng.normal(size=(5, len(FEATURES)))
            rows[1, 0] += 4.0
            labelled.append(_group(f"{doc}-{n}", n % 4 == 0, None if n % 4 == 0 else 1, rows, doc))
    for n in range(30):
        rows = rng.normal(size=(5, len(FEATURES)))
        rows[3, 1] += 4.0  # in the drafted questions a second feature marks the answer
        group = _group(f"x/{n}", False, 3, rows, "x")
        drafted.append(replace(group, origin="drafted"))
    alone = train(labelled, MODEL.embedding_model, with_generated=False)
    both = train(labelled + drafted, MODEL.embedding_model, with_generated=False)
    assert both.trained["cross_validation"]["questions"] == len(labelled)
    assert "30 drafted" in both.trained["labels"] and "drafted" not in alone.trained["labels"]
    assert both.sentence.coef[1] > alone.sentence.coef[1] + 0.5
    scores = cross_validate(labelled + drafted, 1.0)
    assert set(scores) == {g.meta["id"] for g in labelled}


def test_a_gate_met_by_a_hair_is_not_kept() -> None:
    """The article's gates must also hold one threshold step lower: a refusal that
    rests on a question's P(answerable) sitting just under the bar would flip with
    the next index build."""
    rows = np.zeros((2, len(FEATURES)))
    groups = [_group(f"r{n}", True, None, rows) for n in range(10)]
    groups += [_group(f"a{n}", False, 0, rows) for n in range(10)]
    scores = {g.meta["id"]: np.array([0.9, 0.1]) for g in groups}
    answerable = {g.meta["id"]: 0.1 if g.should_refuse else 0.9 for g in groups}
    answerable["r0"] = 0.55  # answered: 9 of 10 refusals left, the gate's 0.9
    gates = {"refusal_recall": 0.9}
    policy = Policy(threshold=0.5, include_threshold=1.0, max_sentences=1)
    assert meets_gates(policy, groups, scores, answerable, gates)
    assert keeps_gates(policy, groups, scores, answerable, gates)
    answerable["r1"] = 0.49  # refused at 0.5, answered at 0.475
    assert meets_gates(policy, groups, scores, answerable, gates)
    assert not keeps_gates(policy, groups, scores, answerable, gates)


def test_where_lost_separates_refusal_from_choice_and_retrieval() -> None:
    """The loss breakdown beside the share right as chosen (the choice's accuracy, 2 of
    6 here): if nothing were refused, with every refusal right, and the ceiling of the
    candidates (an answerable question with no right candidate is lost whatever the
    selector does)."""
    rows = np.zeros((3, 1))
    groups = [
        _group("right", False, 0, rows),  # best sentence right, answered
        _group("wrongly-refused", False, 0, rows),  # best sentence right, refused
        _group("second-best", False, 1, rows),  # the right one is not quoted
        _group("unreachable", False, None, rows),  # no right candidate at all
        _group("refused", True, None, rows),  # rightly refused
        _group("answered", True, None, rows),  # should be refused, answered
    ]
    scores = {g.meta["id"]: np.array([0.9, 0.2, 0.1]) for g in groups}
    answerable = {"right": 0.9, "wrongly-refused": 0.3, "second-best": 0.9,
                  "unreachable": 0.9, "refused": 0.3, "answered": 0.9}  # fmt: skip
    policy = Policy(threshold=0.5, include_threshold=1.0, max_sentences=1)
    choice = Choice(2 / 6, 1.0, 1.0, policy, scores, answerable)
    lost = where_lost(groups, choice)
    assert lost == {"never_refusing": round(2 / 6, 4), "perfect_refusal": round(4 / 6, 4),
                    "ceiling": round(5 / 6, 4)}  # fmt: skip


def test_policy_quotes_the_best_and_up_to_k_more() -> None:
    policy = Policy(threshold=0.5, include_threshold=0.1, max_sentences=2)
    p = np.array([0.05, 0.5, 0.2, 0.15])
    assert policy.quoted(p, answerable=0.9) == [1, 2]
    assert policy.quoted(p, answerable=0.4) == []
    answerable = _group("a-1", False, 2, np.zeros((4, 1)))
    unanswerable = _group("a-2", True, None, np.zeros((4, 1)))
    assert policy.right(answerable, p, 0.9) and not policy.right(unanswerable, p, 0.9)
    assert policy.right(unanswerable, p, 0.1)
    scores = {"a-1": p, "a-2": p}
    gates = {"correctness": 0.9, "refusal_recall": 0.9}
    pair = [answerable, unanswerable]
    assert meets_gates(policy, pair, scores, {"a-1": 0.9, "a-2": 0.1}, gates)
    assert not meets_gates(policy, pair, scores, {"a-1": 0.9, "a-2": 0.9}, gates)


def test_the_curve_counts_precision_recall_and_the_rules_point() -> None:
    points = [
        {"id": "1", "should_refuse": False, "answerable": 0.9, "states": True,
         "rules_refused": False, "rules_states": True},
        {"id": "2", "should_refuse": False, "answerable": 0.4, "states": False,
         "rules_refused": True, "rules_states": False},
        {"id": "3", "should_refuse": True, "answerable": 0.3, "states": False,
         "rules_refused": False, "rules_states": False},
    ]  # fmt: skip
    result = curve(points, 0.35)
    in_use = next(r for r in result["curve"] if r["threshold"] == 0.35)
    # Answered: cases 1 and 2; right: case 1; case 3 refused, rightly.
    assert in_use == {"threshold": 0.35, "precision": 0.5, "recall": 0.5, "correct": 0.6667,
                      "answered": 2}  # fmt: skip
    assert result["rules"] == {"precision": 0.5, "recall": 0.5, "correct": 0.3333, "answered": 2}
    text = curve_text(result)
    assert "<- in use" in text and "rules" in text


@pytest.fixture(scope="module")
def article(
    tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path, embedder: Any
) -> Iterator[Pipeline]:
    settings = isolated_settings(
        tmp_path_factory.getbasetemp(),
        data_dir=tmp_path_factory.mktemp("selector-data"),
        cache_dir=model_cache_dir,
    )
    ingest(settings, embedder=embedder)
    pipeline = build_pipeline(settings)
    yield pipeline
    pipeline.close()


@pytest.mark.slow
def test_the_default_pipeline_answers_and_refuses_by_the_learned_selector(
    article: Pipeline,
) -> None:
    assert isinstance(article.selector, LearnedSelector)
    answer = article.ask("When was the newest Trainium chip launched?")
    assert not answer.refused and "December" in answer.answer
    assert len(answer.citations) >= 1
    refused = article.ask("How many employees work at Annapurna Labs?")
    assert refused.refused
    # The same question through the rules: the setting is honoured end to end.
    state = article.prepare("When was the newest Trainium chip launched?")
    assert state.selection is not None and state.selection.scored[0].relevance <= 1.0
    with article.live.reading() as retriever:
        rows = features(state.query, state.candidates, retriever.view, state.question)
    assert rows.shape == (len(state.candidates), len(FEATURES))

    assert article.settings.answer_selector == "learned"


def test_the_likeliest_answer_is_quoted_first() -> None:
    """Document order would put a better answer behind a weaker earlier sentence."""
    view = FakeView()
    found = candidates(view, {})
    earlier, later = found[1], found[-1]
    analysis = analyze("When did the Widget 2 launch?")
    assert with_context(analysis, [later, earlier], view, by_rank=True) == [later, earlier]
    assert with_context(analysis, [later, earlier], view) == [earlier, later]
