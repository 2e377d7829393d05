"""Training questions for the answer selector, written by the packaged LLM.

For a sentence of a training document the LLM writes a question that the sentence
answers, told to paraphrase rather than copy the sentence's words. That sentence is
then a known positive for the question; the selector's trainer (``evals.selector_train``)
also deletes it from the candidates to make an unanswerable example.

Documents: the benchmark's dev split and ``evals/selector/docs`` (extra downloads),
never the test split. Generation is slow (seconds per question on 2 cores), so it is
resumable: each question is appended to the JSONL file as soon as it is written, and
a rerun skips sentences already done. It is run by hand, and its output committed;
``make train`` never calls the LLM.

    python -m evals.selector_data --per-document 40 [--limit N]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from evals.schema import BENCHMARK_DIR
from rag.documents.chunking import sentence_windows
from rag.documents.loading import load_file
from rag.documents.safety import looks_like_instruction
from rag.text import content_tokens, words
from rag.types import Chunk, Document

SELECTOR_DIR = Path(__file__).resolve().parent / "selector"
QUESTIONS_FILE = SELECTOR_DIR / "generated_questions.jsonl"
SEED = 20261130

PROMPT = (
    "Here is one sentence from a document, with the section it is in.\n\n"
    "Section: {heading}\n"
    "Sentence before it: {context}\n"
    "Sentence: {sentence}\n\n"
    "Write one short question that a user of this software or document might ask, "
    "which this sentence answers. Paraphrase: use your own words, not the sentence's "
    "phrases (keep only names, options and numbers as they are). Reply with the "
    "question only, on one line."
)


def training_documents() -> list[Document]:
    """Dev-split documents and the extra training downloads (never the test split)."""
    paths = sorted((BENCHMARK_DIR / "docs" / "dev").iterdir())
    paths += sorted((SELECTOR_DIR / "docs").iterdir())
    return [load_file(p, p.name) for p in paths if p.is_file()]


def eligible(chunk: Chunk) -> bool:
    """A sentence worth asking about: a statement of some substance, not markup."""
    text = chunk.search_text
    n_words = len(words(text))
    if chunk.is_heading or not 6 <= n_words <= 60 or looks_like_instruction(text):
        return False
    if re.search(r"https?://|<[a-z/]|[{};]\s*$", text) or text.count("`") > 6:
        return False
    return len(content_tokens(text)) >= 4


def sample(documents: list[Document], per_document: int) -> Iterator[tuple[Document, Chunk]]:
    """Up to ``per_document`` eligible sentences of each document, chosen by a fixed seed."""
    rng = random.Random(SEED)
    for doc in documents:
        chunks = [c for c in sentence_windows(doc) if eligible(c)]
        picked = sorted(rng.sample(chunks, min(per_document, len(chunks))), key=lambda c: c.start)
        for chunk in picked:
            yield doc, chunk


def clean_question(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^(?:question\s*:|q\s*:|\d+[.)])\s*", "", line, flags=re.I).strip(" \"'")
    return line if line.endswith("?") and 3 <= len(line.split()) <= 30 else ""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-document", type=int, default=40)
    parser.add_argument("--limit", type=int, default=0, help="stop after N new questions")
    parser.add_argument("--out", type=Path, default=QUESTIONS_FILE)
    args = parser.parse_args(argv)

    from llama_cpp import Llama

    from rag.llm.models import qwen_path
    from rag.settings import load_settings

    settings = load_settings()
    done = set()
    if args.out.exists():
        done = {json.loads(line)["id"] for line in args.out.read_text().splitlines() if line}
    todo = [(d, c) for d, c in sample(training_documents(), args.per_document) if c.id not in done]
    if args.limit:
        todo = todo[: args.limit]
    print(f"{len(done)} done, {len(todo)} to write", file=sys.stderr)
    llm = Llama(
        model_path=str(qwen_path(settings.cache_dir)),
        n_ctx=1024,
        n_threads=settings.llm_threads,
        verbose=False,
        seed=0,
    )
    started = time.perf_counter()
    with args.out.open("a", encoding="utf-8") as out:
        for n, (doc, chunk) in enumerate(todo, start=1):
            prompt = PROMPT.format(
                heading=chunk.heading or doc.title,
                context=" ".join(chunk.context.split()) or "(none)",
                sentence=chunk.search_text,
            )
            reply = llm.create_chat_completion(
                messages=[{"role": "user", "content": prompt}],
                temperature=0.0,
                max_tokens=48,
            )
            question = clean_question(str(reply["choices"][0]["message"]["content"]))  # type: ignore[index]
            row = {
                "id": chunk.id,
                "source": doc.source,
                "start": chunk.start,
                "end": chunk.end,
                "sentence": chunk.search_text,
                "question": question,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
            if n % 10 == 0:
                rate = (time.perf_counter() - started) / n
                print(f"{n}/{len(todo)} ({rate:.1f} s each)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
