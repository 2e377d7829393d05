"""Training the learned answer selector (``make train``): labelled questions in,
``rag/models/selector.json`` out.

For each labelled question the training documents are indexed (a scratch data
directory) and retrieved with the pipeline's own retriever; each candidate gets the
features of ``rag.answering.selector_features`` and a label: positive when it holds the
expected quote or every expected fact (refusing kinds: no positive). Labels come
from the benchmark's dev split and the bundled article's suite, plus, for the
sentence model only and with ``--with-drafted``, the suites ``rag draft-suite``
drafted on training documents (``evals/selector/drafted``); the older
LLM-written questions of ``evals/selector`` join with ``--with-generated``. The test
split is never read here.

Two logistic regressions (scikit-learn at training time; numpy at query time): the
sentence model, P(this candidate answers), on every candidate row; and the
answerability model, P(the documents answer the question), on question-level rows
(``rag.answering.selector.question_features``) made from *held-out* sentence scores, as the
sentence model will score unseen questions at query time. Everything they decide is
chosen by leave-one-document-out cross-validation: each document's questions are
scored by models trained on the other documents only, and the regularisations, the
refusal threshold, the extra-sentence threshold and the number of sentences quoted
are those that answer most held-out benchmark questions right (the right sentence
among those quoted, or a refusal when the documents do not say), among the choices
whose final models keep the bundled article suite's own CI gates. The final models
are fitted on every document with those choices; the cross-validated figures, beside
the rules' own on the same candidates, are written into the weights file.

Deterministic for a given seed and data, up to Chroma's approximate nearest-neighbour
search: its graph depends on the threads that built it, so a few questions' 11th-15th
candidates can come in another order. Two runs on 2026-11-30 chose the same settings
and gave the same cross-validated figures, with weights differing in the fourth
decimal. Under a minute on 2 cores; never calls an LLM.

The labelled questions are built by ``evals.selector_groups``, the models fitted and
the settings chosen by ``evals.selector_policy``; this module is the command: it
trains, reports the cross-validated figures and writes the weights file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from evals.candidates import CANDIDATES
from evals.schema import load_suite
from evals.selector_groups import (
    ARTICLE,
    ARTICLE_SUITE,
    Group,
    build_training_groups,
    without_reader,
)
from evals.selector_policy import (
    SEED,
    Choice,
    choose,
    fit_answerable,
    fit_sentence,
    rules_right,
)
from rag.answering.reader import load_reader
from rag.answering.selector import PACKAGED_MODEL, QUESTION_FEATURES, SelectorModel
from rag.answering.selector_features import FEATURES
from rag.documents.chunking import CHUNKER_VERSION


def report(groups: list[Group], choice: Choice) -> dict[str, Any]:
    """Per labelled document: questions, the rules' right answers, the model's (held out)."""
    dev = [g for g in groups if g.origin == "dev"]
    by_document: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "rules": 0, "model": 0})
    for g in dev:
        row = by_document[g.document]
        row["n"] += 1
        row["rules"] += rules_right(g)
        row["model"] += choice.policy.right(
            g, choice.scores[g.meta["id"]], choice.answerable[g.meta["id"]]
        )
    reachable = [g for g in dev if g.labels.any()]
    first = np.mean([g.labels[int(np.argmax(choice.scores[g.meta["id"]]))] for g in reachable])
    return {
        "questions": len(dev),
        "answerable": sum(not g.should_refuse for g in dev),
        "reachable": len(reachable),
        # Both on the benchmark's dev documents (the article's questions are a gate).
        "cv_right": round(choice.accuracy, 4),
        "rules_right": round(
            float(np.mean([rules_right(g) for g in dev if g.document != ARTICLE])), 4
        ),
        "cv_right_first": round(float(first), 4),
        "by_document": dict(sorted(by_document.items())),
        "where_lost": where_lost([g for g in dev if g.document != ARTICLE], choice),
    }


def where_lost(groups: list[Group], choice: Choice) -> dict[str, float]:
    """Where held-out answers are lost, beside the share right as chosen (``cv_right``),
    on the same held-out scores: the share right if nothing were refused (what the
    answerability model adds); if every refusal were right and nothing else changed
    (what a perfect answerability model would add); and the ceiling of these candidates
    (every answerable question with a right sentence among them quoted, every other
    refused)."""
    if not groups:
        return {"never_refusing": 0.0, "perfect_refusal": 0.0, "ceiling": 0.0}

    def share(answerable: Callable[[Group], float]) -> float:
        right = [choice.policy.right(g, choice.scores[g.meta["id"]], answerable(g)) for g in groups]
        return round(float(np.mean(right)), 4)

    ceiling = np.mean([g.should_refuse or bool(g.labels.any()) for g in groups])
    return {
        "never_refusing": share(lambda g: 1.0),
        "perfect_refusal": share(lambda g: 0.0 if g.should_refuse else 1.0),
        "ceiling": round(float(ceiling), 4),
    }


def train(groups: list[Group], embedding_model: str, with_generated: bool) -> SelectorModel:
    gates = load_suite(ARTICLE_SUITE).thresholds
    choice = choose(groups, gates)
    dev = [g for g in groups if g.origin == "dev"]
    return SelectorModel(
        features=FEATURES,
        sentence=fit_sentence(groups, choice.c),
        question_features=QUESTION_FEATURES,
        answerable=fit_answerable(dev, choice.scores, choice.c_answerable),
        threshold=choice.policy.threshold,
        include_threshold=choice.policy.include_threshold,
        max_sentences=choice.policy.max_sentences,
        embedding_model=embedding_model,
        chunker_version=CHUNKER_VERSION,
        trained={
            "by": "python -m evals.selector_train",
            "seed": SEED,
            "reader": load_reader().identity,
            "regularisation_c": choice.c,
            "answerable_regularisation_c": choice.c_answerable,
            "with_generated": with_generated,
            "with_drafted": any(g.origin == "drafted" for g in groups),
            "candidates": CANDIDATES,
            "labels": _labels(groups),
            "cross_validation": report(groups, choice),
        },
    )


def _labels(groups: list[Group]) -> str:
    counts = Counter(g.origin for g in groups)
    named = {"dev": "labelled (benchmark dev + article)", "drafted": "drafted",
             "generated": "LLM-generated"}  # fmt: skip
    return ", ".join(f"{counts[k]} {named[k]} questions" for k in named if counts[k])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Train the learned answer selector from the committed labels."
    )
    parser.add_argument("--out", type=Path, default=PACKAGED_MODEL, help="weights file to write")
    parser.add_argument(
        "--with-generated",
        action="store_true",
        help="also train on the LLM-written questions (evals/selector; weak labels)",
    )
    parser.add_argument(
        "--with-drafted",
        action="store_true",
        help="also train the sentence model on the drafted suites of evals/selector/drafted "
        "(not the default: see DRAFTED_DIR)",
    )
    parser.add_argument(
        "--without-reader",
        action="store_true",
        help="ablation: the reader's features zeroed, to measure what it adds (write the "
        "weights elsewhere with --out: the selector is meant to use the reader)",
    )
    args = parser.parse_args(argv)
    from rag.settings import load_settings

    groups = build_training_groups(args.with_generated, args.with_drafted)
    if args.without_reader:
        groups = [replace(g, rows=without_reader(g.rows)) for g in groups]
    model = train(groups, load_settings().embedding_model, args.with_generated)
    cv = model.trained["cross_validation"]
    print(
        f"{cv['questions']} labelled questions; a right sentence among the {CANDIDATES} "
        f"candidates for {cv['reachable']} of {cv['answerable']} answerable"
    )
    print(
        "benchmark dev documents, each held out (leave one document out): "
        f"{cv['cv_right']:.3f} right against the rules' "
        f"{cv['rules_right']:.3f}; C={model.trained['regularisation_c']}/"
        f"{model.trained['answerable_regularisation_c']}, refuse below P(answerable) "
        f"{model.threshold:.3f}, extra sentences from P(answers) {model.include_threshold:.3f}, "
        f"at most {model.max_sentences} sentences"
    )
    lost = cv["where_lost"]
    print(
        f"where held-out answers are lost: {cv['cv_right']:.3f} right as chosen, "
        f"{lost['never_refusing']:.3f} if nothing were refused, {lost['perfect_refusal']:.3f} "
        f"with every refusal right, {lost['ceiling']:.3f} at most on these candidates"
    )
    print(f"{'document':<28} {'n':>4} {'rules':>6} {'model':>6}")
    for name, row in cv["by_document"].items():
        print(f"{name:<28} {row['n']:>4} {row['rules']:>6} {row['model']:>6}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(model.to_json(), indent=1) + "\n", encoding="utf-8")
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
