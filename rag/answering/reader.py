"""The reader: a small cross-encoder that reads the question and one candidate sentence
together and scores whether the sentence answers it.

Every other signal of the selector compares question and sentence apart (cosines,
BM25, term coverage); the reader sees both in one input, so it can tell "what does it
cost?" from a sentence that merely shares the topic. It is the first layers of the
packaged all-MiniLM-L6-v2 fine-tuned here on the reader corpus's labelled questions
(``make train-reader``: ``evals.reader_train``), shipped as an int8 ONNX file with its
tokenizer in ``rag/models/reader/`` and run with onnxruntime (no torch at query time).

Input: the question, then the candidate: the sentence first (so a long context is what
the token budget cuts), then where it stands (document title and heading) and, where
the sentence needs it to be read, the sentence before it (it opens with a pronoun) or a
table row's column headers. Output: one logit per candidate. The model was trained with
a "none of them" slot at logit 0 beside each question's candidates, so
``none_probability`` is the reader's own P(no candidate answers).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.errors import IndexCorruptError

READER_DIR = Path(__file__).resolve().parent.parent / "models" / "reader"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
INFO_FILE = "reader.json"
READER_FORMAT = 1
RETRAIN_HINT = "Retrain it with: make train-reader"
BATCH = 8  # candidates per run, grouped by length
# A sentence that opens with one of these is read with the sentence before it.
_PRONOUN_START = (
    "it ", "its ", "they ", "their ", "them ", "this ", "these ", "those ", "he ", "she ",
    "that ", "such ", "both ", "each ", "there ",
)  # fmt: skip


class Passage(Protocol):
    """What the reader needs of a candidate (``rag.index.retrieval.Evidence`` has it)."""

    @property
    def title(self) -> str: ...
    @property
    def heading(self) -> str: ...
    @property
    def context(self) -> str: ...
    @property
    def quote(self) -> str: ...


def needs_context(quote: str, context: str) -> bool:
    """The sentence cannot be read alone: it opens with a pronoun, or it is a table row
    (its context is then the column headers)."""
    lowered = " ".join(quote.lower().split())
    return bool(context) and (lowered.startswith(_PRONOUN_START) or quote.lstrip()[:1] == "|")


def passage_text(candidate: Passage) -> str:
    """The candidate as the reader reads it: sentence | title > heading | context."""
    quote = " ".join(candidate.quote.split())
    where = " > ".join(p for p in (candidate.title.strip(), candidate.heading.strip()) if p)
    parts = [quote, where]
    if needs_context(candidate.quote, candidate.context):
        parts.append(" ".join(candidate.context.split()))
    return " | ".join(p for p in parts if p)


@dataclass(frozen=True)
class ReaderInfo:
    """What the shipped file records: its base model and layers, its input budget, the
    training data's hash and the figures it was accepted on."""

    base_model: str
    layers: int
    max_tokens: int
    data_hash: str
    trained: dict[str, Any]


def none_probability(logits: np.ndarray) -> float:
    """The reader's P(no candidate answers): the "none" slot (logit 0) in a softmax
    over it and the candidates."""
    if not len(logits):
        return 1.0
    top = max(0.0, float(np.max(logits)))
    total = np.exp(-top) + float(np.sum(np.exp(logits - top)))
    return float(np.exp(-top) / total)


class Reader:
    """The shipped reader run with onnxruntime: ``scores(question, candidates)``."""

    def __init__(self, model_dir: Path = READER_DIR, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        try:
            text = (model_dir / INFO_FILE).read_text(encoding="utf-8")
            # Who this reader is, for the selector fitted to its scores (the info file
            # holds its training figures, so every retraining gives a new identity).
            self.identity = hashlib.sha256(text.encode()).hexdigest()[:16]
            raw = json.loads(text)
            if raw.get("format") != READER_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}, expected {READER_FORMAT}")
            self.info = ReaderInfo(
                base_model=str(raw["base_model"]),
                layers=int(raw["layers"]),
                max_tokens=int(raw["max_tokens"]),
                data_hash=str(raw["data_hash"]),
                trained=dict(raw.get("trained", {})),
            )
            self.tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # The query embedder's session runs just before this one in the same
            # process: spinning worker threads (onnxruntime's default) of one session
            # steal the cores from the other (measured: reading 15 candidates took
            # about twice as long right after an embedding).
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(
                str(model_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise IndexCorruptError(
                f"The reader model in {model_dir} is missing or unreadable ({exc}). {RETRAIN_HINT}"
            ) from exc
        self._inputs = {i.name for i in self.session.get_inputs()}

    def scores(self, question: str, candidates: Sequence[Passage]) -> np.ndarray:
        """One logit per candidate: higher means likelier to answer the question."""
        if not candidates:
            return np.zeros(0, dtype=np.float64)
        self.tokenizer.enable_truncation(max_length=self.info.max_tokens, strategy="longest_first")
        self.tokenizer.no_padding()
        encodings = self.tokenizer.encode_batch([(question, passage_text(c)) for c in candidates])
        # Shorter pairs run together and longer ones apart: padding 15 pairs to the
        # longest one wastes about a third of the work on typical candidates.
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        logits = np.zeros(len(encodings), dtype=np.float64)
        for lo in range(0, len(order), BATCH):
            members = order[lo : lo + BATCH]
            width = max(len(encodings[i].ids) for i in members)
            feeds = {
                name: np.zeros((len(members), width), dtype=np.int64)
                for name in ("input_ids", "attention_mask", "token_type_ids")
            }
            for row, i in enumerate(members):
                e = encodings[i]
                feeds["input_ids"][row, : len(e.ids)] = e.ids
                feeds["attention_mask"][row, : len(e.ids)] = 1
                feeds["token_type_ids"][row, : len(e.ids)] = e.type_ids
            run = {k: v for k, v in feeds.items() if k in self._inputs}
            logits[members] = np.asarray(self.session.run(None, run)[0]).reshape(-1)
        return logits


@lru_cache(maxsize=2)
def load_reader(model_dir: str = str(READER_DIR), threads: int | None = None) -> Reader:
    """The reader, loaded once per process (the ONNX session is the slow part)."""
    return Reader(Path(model_dir), threads)
