"""``rag eval``: run suites, gate on thresholds, write reports; and ``rag bench ask``,
the answer-latency benchmark over a suite's questions. Plugged into the ``rag`` CLI as
``rag.commands`` and ``rag.bench_commands`` entry points (rag/ never imports evals/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from rag import generators
from rag.cli import echo_err, echo_json, generator_option, json_option, settings_from
from rag.cli_common import GeneratorChoice, counted_progress
from rag.errors import InputError


def _thresholds(**given: float | None) -> dict[str, float]:
    return {k: v for k, v in given.items() if v is not None}


@click.command("eval")
@click.argument("suites", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@generator_option
@click.option("--min-faithfulness", type=float, default=None, help="Gate: faithfulness.")
@click.option("--min-correctness", type=float, default=None, help="Gate: answer correctness.")
@click.option("--min-citation-validity", type=float, default=None, help="Gate: quotes at offsets.")
@click.option("--min-refusal-recall", type=float, default=None, help="Gate: refusal recall.")
@click.option("--min-refusal-precision", type=float, default=None, help="Gate: refusal precision.")
@click.option(
    "--max-hallucinations",
    type=int,
    default=None,
    help="Gate: numbers/names in answers that the corpus lacks.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write report.json, junit.xml and report.html here.",
)
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write a RAGAS / DeepEval dataset (JSONL).",
)
@click.option(
    "--compare",
    nargs=2,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Compare two JSON reports (BEFORE AFTER) instead of running.",
)
@click.option(
    "--verifier/--no-verifier",
    "check_verifier",
    default=True,
    show_default=True,
    help="Also score the verifier on the corrupted-answer set.",
)
@click.option(
    "--judge",
    type=click.Choice(["none", "llm"]),
    default="none",
    help="Add an LLM-judge faithfulness score (needs an LLM generator).",
)
@click.option(
    "--calibrate",
    is_flag=True,
    help="Print the verifier's threshold sweep on the corrupted set and exit.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report.")
@click.pass_context
def eval_command(
    ctx: click.Context, suites: tuple[Path, ...], generator: str | None,
    min_faithfulness: float | None, min_correctness: float | None,
    min_citation_validity: float | None, min_refusal_recall: float | None,
    min_refusal_precision: float | None, max_hallucinations: int | None,
    out_dir: Path | None, export_path: Path | None, compare: tuple[Path, Path] | None,
    check_verifier: bool, judge: str, calibrate: bool, as_json: bool,
) -> None:  # fmt: skip
    """Run faithfulness eval SUITES (default: the bundled article's suites).

    Exits 1 when a suite misses a threshold (from the suite file or the flags).
    """
    from evals import report

    if compare:
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in compare)
        diff = report.compare(before, after)
        if as_json:
            echo_json(diff)
        else:
            click.echo(f"Regressions ({len(diff['regressions'])}): "
                       + (", ".join(diff["regressions"]) or "none"))  # fmt: skip
            click.echo(f"Fixes ({len(diff['fixes'])}): " + (", ".join(diff["fixes"]) or "none"))
            for key, delta in diff["metric_deltas"].items():
                click.echo(f"  {key}: {delta:+.4f}")
        if diff["regressions"]:
            sys.exit(1)
        return
    if calibrate:
        echo_json(_calibration(settings_from(ctx))) if as_json else _print_calibration(
            _calibration(settings_from(ctx))
        )
        return

    from evals.runner import run_suite
    from evals.schema import DEFAULT_SUITES, load_suite
    from rag.index.embedding import SentenceTransformerEmbedder

    settings = settings_from(ctx, generator=generator)
    llm_judge = None
    if judge == "llm":
        if not generators.get(settings.generator).is_llm:
            first, *others = generators.llm_names()
            alternatives = f" (or {' / '.join(others)})" if others else ""
            raise InputError(f"--judge llm needs an LLM: pass --generator {first}{alternatives}.")
        from rag.llm.judge import LlmJudge

        llm_judge = LlmJudge(settings, settings.generator).judge
    gates = _thresholds(
        faithfulness=min_faithfulness, correctness=min_correctness,
        citation_validity=min_citation_validity, refusal_recall=min_refusal_recall,
        refusal_precision=min_refusal_precision,
        max_hallucinations=float(max_hallucinations) if max_hallucinations is not None else None,
    )  # fmt: skip
    loaded = [load_suite(p) for p in (suites or DEFAULT_SUITES)]
    embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)
    runs: list[dict[str, Any]] = []
    for suite in loaded:
        with counted_progress(f"Suite {suite.name}", len(suite.cases)) as step:
            result = run_suite(suite, settings, embedder=embedder, thresholds=gates, progress=step,
                               judge=llm_judge)  # fmt: skip
        runs.append(result.to_json())
    document: dict[str, Any] = {"runs": runs, "passed": all(r["passed"] for r in runs)}
    if check_verifier:
        document["verifier"] = _verifier_check(loaded)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "report.json").write_text(json.dumps(document, indent=1, ensure_ascii=False))
        (out_dir / "junit.xml").write_text(report.junit_xml(runs))
        (out_dir / "report.html").write_text(report.html_report(runs))
        echo_err(f"Reports in {out_dir}: report.json, junit.xml, report.html")
    if export_path is not None:
        count = report.export_dataset(runs, export_path)
        echo_err(f"Exported {count} rows to {export_path}")
    if as_json:
        echo_json(document)
    else:
        for run in runs:
            click.echo(report.text_report(run))
            click.echo()
        if "verifier" in document:
            v = document["verifier"]
            click.echo(f"Verifier on {v['pairs']} corrupted/faithful pairs: precision "
                       f"{v['precision']:.3f}, recall {v['recall']:.3f}")  # fmt: skip
    if not document["passed"]:
        sys.exit(1)


def _verifier_check(suites: list[Any]) -> dict[str, Any]:
    """Score the verifier on corrupted answers built from the suites' claims."""
    from evals.corrupted import build_pairs, evaluate_verifier
    from evals.schema import SUITES_DIR
    from rag.documents.loading import load_file

    for suite in suites:
        if not suite.claims or not suite.corpus:
            continue
        corpus = suite.corpus[0]
        files = sorted(corpus.glob("*.md")) if corpus.is_dir() else [corpus]
        document = load_file(files[0], files[0].name)
        pairs = build_pairs(suite.claims, document, SUITES_DIR / "verifier.yaml")
        return evaluate_verifier(pairs, document.text, document.source)
    return {"pairs": 0, "precision": 1.0, "recall": 1.0, "note": "no suite with claims"}


def _calibration(settings: Any) -> dict[str, Any]:
    from evals.corrupted import build_pairs, calibrate
    from evals.schema import SUITES_DIR, load_suite
    from rag.documents.loading import load_file
    from rag.index.embedding import make_embedder

    suite = load_suite(SUITES_DIR / "trainium.yaml")
    corpus = suite.corpus[0]
    document = load_file(sorted(corpus.glob("*.md"))[0], "trainium-article.md")
    pairs = build_pairs(suite.claims, document, SUITES_DIR / "verifier.yaml")
    embedder = make_embedder(settings, purpose="query")

    def similarity(sentence: str, quote: str) -> float:
        vectors = embedder.embed([sentence, quote])
        return float(vectors[0] @ vectors[1])

    return calibrate(pairs, document.text, document.source, similarity)


def _print_calibration(result: dict[str, Any]) -> None:
    click.echo("min_coverage  precision  recall")
    for row in result["coverage_sweep"]:
        click.echo(f"{row['min_coverage']:>12.2f}  {row['precision']:>9.3f}  {row['recall']:>6.3f}")
    click.echo("embedding similarity of sentence and quote, per corruption:")
    for kind, stats in result["similarity"].items():
        click.echo(f"  {kind:<28} min {stats['min']:.3f}  median {stats['median']:.3f}  "
                   f"max {stats['max']:.3f}")  # fmt: skip


@click.command("ask")
@click.option("--rounds", default=3, show_default=True, help="Passes over the question set.")
@click.option(
    "--cold-runs", type=click.IntRange(0), default=3, show_default=True,
    help="Fresh `rag ask` processes (0: none).",
)  # fmt: skip
@click.option(
    "--questions",
    "questions_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Suite file (YAML or JSONL of cases) to take questions from "
    "(default: evals/suites/trainium.yaml).",
)
@click.option(
    "--limit", type=click.IntRange(1), default=None,
    help="Only the first N questions of the set.",
)  # fmt: skip
@generator_option
@json_option
@click.pass_context
def bench_ask(
    ctx: click.Context, rounds: int, cold_runs: int, questions_file: Path | None,
    limit: int | None, generator: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Warm ask latency (p50/p95) over a question set: to the first verified sentence
    and to the complete answer; and cold `rag ask` time."""
    from evals.schema import SUITES_DIR, load_suite
    from rag.bench import bench_ask as run

    # The suite's own loader: included case files and JSONL suites count too.
    suite = load_suite(questions_file or SUITES_DIR / "trainium.yaml")
    # Follow-ups are asked alone here (no conversation), like any other question.
    questions = [case.question for case in suite.cases][:limit]
    if not questions:
        raise InputError(f"{suite.path} has no cases to take questions from.")
    settings = settings_from(ctx, generator=generator)
    result = run(settings, questions, rounds=rounds, cold_runs=cold_runs, log=echo_err)
    if as_json:
        echo_json(result)
    else:
        for key, value in result.items():
            click.echo(f"{key:>28}: {value}")


@click.command("draft-suite")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The suite file to write (YAML).",
)
@click.option(
    "--max-questions", type=click.IntRange(1, 500), default=30, show_default=True,
    help="Cases to draft (about a fifth unanswerable, a tenth follow-ups).",
)  # fmt: skip
@click.option(
    "--seed", type=int, default=0, show_default=True,
    help="Which sentences are asked about, in which order (the LLM runs at temperature 0).",
)  # fmt: skip
@click.option(
    "--generator", type=GeneratorChoice(), default="llama-cpp", show_default=True,
    help="The LLM that writes the questions (needs the [llm] extra).",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
@json_option
@click.pass_context
def draft_suite(
    ctx: click.Context, paths: tuple[Path, ...], out_path: Path, max_questions: int, seed: int,
    generator: str, force: bool, as_json: bool,
) -> None:  # fmt: skip
    """Draft an eval suite for the documents at PATHS, for a person to review.

    A local LLM writes a question for sampled sentences and copies the fact that
    answers it; a question is kept when its sentence is among the top candidates
    retrieved for it. Unanswerable cases are made by deleting their sentence (the
    suite's corpus is a copy without them). Review the file, then: rag eval OUT.
    """
    import importlib.util
    import os

    from evals.draft import (
        Drafter,
        corpus_copy,
        draft,
        load_documents,
        sample_sentences,
        suite_text,
    )
    from evals.runner import scratch_pipeline
    from rag.index.embedding import SentenceTransformerEmbedder
    from rag.llm.generation import make_backend
    from rag.llm.models import LLM_INSTALL_HINT

    name = generator
    if not generators.get(name).is_llm:
        raise click.UsageError(
            f"draft-suite needs an LLM generator to write questions, not {name!r}: "
            f"one of {', '.join(generators.llm_names())}."
        )
    if name == "llama-cpp" and importlib.util.find_spec("llama_cpp") is None:
        raise InputError(
            "rag draft-suite writes its questions with a local LLM and needs the [llm] "
            f"extra: {LLM_INSTALL_HINT}"
        )
    if out_path.exists() and not force:
        raise InputError(f"{out_path} exists; pass --force to overwrite it.")
    settings = settings_from(ctx)
    documents = load_documents(paths)
    backend = make_backend(settings, name)
    embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)
    echo_err(f"Indexing {len(documents)} document(s) in a scratch index...")
    with scratch_pipeline(settings, paths, embedder, prefix="rag-draft-") as pipeline:
        sentences = sample_sentences(documents, seed)
        with counted_progress("Drafting questions", max_questions) as step:
            result = draft(Drafter(backend, pipeline, documents), sentences, max_questions, step)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    copies = corpus_copy(documents, result.deleted, out_path.parent / f"{out_path.stem}-corpus")
    # The suite's corpus lists files, so each document's source is its file name.
    files = {d.source: copies.get(d.source, Path(d.path)) for d in documents}
    for case in result.cases:
        case["document"] = files[case["document"]].name
    corpus = [os.path.relpath(f.resolve(), out_path.parent.resolve()) for f in files.values()]
    counts = result.counts()
    rejected = ", ".join(f"{n} {why}" for why, n in result.rejected.most_common()) or "none"
    header = [
        "DRAFT: written by `rag draft-suite`; review every case before you rely on it.",
        f"Generator {name}, seed {seed}; {result.tried} sentences tried, "
        f"{len(result.cases)} cases kept. Rejected: {rejected}.",
        "Each case follows a comment with its source sentence. Check that the question is",
        "one a reader would ask, that `expected` is the fact that answers it, and that an",
        "unanswerable case is really not answered elsewhere in the documents.",
    ]
    if copies:
        header.append("Unanswerable cases were made by deleting their sentence: the corpus below")
        header.append("points at copies of those documents without them.")
    out_path.write_text(suite_text(result, out_path.stem, corpus, header), encoding="utf-8")
    summary = {
        "suite": str(out_path),
        "cases": len(result.cases),
        "by_kind": counts,
        "tried": result.tried,
        "rejected": dict(result.rejected),
        "corpus_copies": [str(p) for p in copies.values()],
    }
    if as_json:
        echo_json(summary)
        return
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items())) or "no cases"
    click.echo(f"Wrote {out_path}: {kinds} ({result.tried} sentences tried).")
    click.echo(f"Rejected: {rejected}.")
    if len(result.cases) < max_questions:
        click.echo(f"Fewer than {max_questions}: usable sentences or tries ran out.")
    click.echo(f"Review it, then run it: rag eval {out_path}")
