"""Benchmarks behind ``rag bench``: numbers for the README and the issue notes.

Not tests: they measure, they do not assert. ``bench_ingest`` runs in a temporary
data directory (the user's index is never touched) with the real model and Chroma.
``bench_ask`` takes its questions as a list: the ``rag bench ask`` command that
reads them from an eval suite lives in ``evals.cli`` (the suite schema is there, and
rag/ never imports evals/).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rag.documents.chunking import sentence_windows
from rag.documents.loading import load_file
from rag.index.embedding import SentenceTransformerEmbedder
from rag.index.ingest import _embed_texts, ingest
from rag.settings import Settings
from rag.stats import percentile

_WORDS = """
    amazon chips trainium cloud model training inference cost power data centre customer
    platform software processor version faster cheaper reliable machine learning network
    memory energy efficient design supplier market demand shortage alternative company
    research launch performance scale cluster weeks thousands percent previous newest
""".split()


def generate_corpus(root: Path, target_chunks: int, seed: int = 7) -> int:
    """Write Markdown files of random sentences: about ``target_chunks`` chunks in all.

    The index stores one chunk per sentence, so each file holds 4 sections of 10.
    """
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    sections, per_section = 4, 10
    files = max(1, round(target_chunks / (sections * per_section)))
    for n in range(files):
        parts = [f"# Generated document {n}\n"]
        for section in range(sections):
            parts.append(f"\n## Section {section} of {n}\n\n")
            for _ in range(per_section):
                words = rng.choices(_WORDS, k=rng.randint(8, 24))
                parts.append(" ".join(words).capitalize() + f" {rng.randint(1, 2030)}. ")
            parts.append("\n")
        (root / f"doc-{n:05d}.md").write_text("".join(parts), encoding="utf-8")
    return files


def _timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def bench_ingest(
    settings: Settings, target_chunks: int = 3000, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Ingest throughput against the raw throughput of the same model in the same run."""
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        corpus = tmp / "corpus"
        files = generate_corpus(corpus, target_chunks)
        run_settings = settings.model_copy(update={"data_dir": tmp / "data"})
        embedder = SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)
        embedder.embed(["warm-up"])  # model load is not throughput

        texts: list[str] = []
        for path in sorted(corpus.glob("*.md")):
            doc = load_file(path, path.name)
            chunks = sentence_windows(doc, settings.context_sentences)
            texts.extend(t for c in chunks for t in _embed_texts(c))
        log(f"Generated {files} files, {len(texts) // 2} chunks. Embedding them raw...")

        raw_before = _timed(lambda: embedder.embed(texts))

        log("Ingesting the same corpus...")
        started = time.perf_counter()
        report = ingest(run_settings, [corpus], embedder=embedder)
        ingest_s = time.perf_counter() - started

        log("Re-ingesting it unchanged...")
        started = time.perf_counter()
        again = ingest(run_settings, [corpus], embedder=embedder)
        reingest_s = time.perf_counter() - started

        # Raw throughput measured on both sides of the ingest; the faster one is the
        # baseline, so machine noise can only make the overhead look worse, not better.
        log("Embedding raw again...")
        raw_s = min(raw_before, _timed(lambda: embedder.embed(texts)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return {
        "files": files,
        "chunks": len(texts) // 2,
        "texts_embedded_per_chunk": 2,
        "raw_embed_s": round(raw_s, 2),
        "raw_chunks_per_s": round(len(texts) / 2 / raw_s, 1),
        "ingest_s": round(ingest_s, 2),
        "ingest_chunks_per_s": round(report.chunks_added / ingest_s, 1),
        "overhead_pct": round(100 * (ingest_s - raw_s) / raw_s, 1),
        "reingest_unchanged_s": round(reingest_s, 2),
        "reingest_embedded": again.chunks_embedded,
    }


def bench_ask(
    settings: Settings,
    questions: list[str],
    rounds: int = 3,
    cold_runs: int = 3,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Warm latency of ``Pipeline.stream`` over ``questions``: to the first verified
    sentence (the first snapshot that holds one) and to the complete answer; and cold
    ``rag ask`` processes. The generator is the settings' (``settings.generator``)."""
    import subprocess
    import sys

    from rag.index.ingest import ensure_index
    from rag.pipeline import build_pipeline

    ensure_index(settings, notify=log)
    pipeline = build_pipeline(settings)
    latencies: list[float] = []
    firsts: list[float] = []
    refused = fallbacks = 0
    try:
        # The first query loads the HNSW index and ONNX kernels (and an LLM's weights).
        pipeline.ask(questions[0])
        log(f"Warm: {rounds} rounds of {len(questions)} questions ({settings.generator})...")
        for _ in range(rounds):
            for question in questions:
                started = time.perf_counter()
                first = None
                answer = None
                for answer in pipeline.stream(question):
                    if first is None and answer.sentences and not answer.refused:
                        first = (time.perf_counter() - started) * 1000
                latencies.append((time.perf_counter() - started) * 1000)
                if first is not None:
                    firsts.append(first)
                refused += bool(answer is not None and answer.refused)
                fallbacks += bool(answer is not None and answer.fallback)
    finally:
        pipeline.close()

    cold = []
    if cold_runs:
        log(f"Cold: {cold_runs} fresh `rag ask` processes...")
        command = [sys.executable, "-m", "rag", "--data-dir", str(settings.data_dir), "ask",
                   "--generator", settings.generator]  # fmt: skip
        for question in questions[:cold_runs]:
            started = time.perf_counter()
            subprocess.run([*command, question], check=True, capture_output=True)
            cold.append(time.perf_counter() - started)
    result: dict[str, Any] = {
        "generator": settings.generator,
        "questions": len(questions),
        "warm_runs": len(latencies),
        "refused": refused,
        "fallbacks": fallbacks,
        "first_sentence_p50_ms": round(percentile(firsts, 50), 1) if firsts else None,
        "first_sentence_p95_ms": round(percentile(firsts, 95), 1) if firsts else None,
        "warm_p50_ms": round(percentile(latencies, 50), 1),
        "warm_p95_ms": round(percentile(latencies, 95), 1),
        "warm_max_ms": round(max(latencies), 1),
    }
    if cold:
        result["cold_process_s_median"] = round(percentile(cold, 50), 2)
        result["cold_process_s_max"] = round(max(cold), 2)
    return result
