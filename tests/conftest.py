"""Fixtures for every test: an isolated environment, and one real embedding model.

Each test gets its own data directory under ``tmp_path`` and never sees the user's
config file or ``RAG_*`` variables. The embedding model and its ONNX export are
shared by the whole session (a model cache is shared across data directories in
real use too), because loading torch is the slowest thing these tests do.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag import generators
from rag.settings import Settings, load_settings
from tests.helpers import ScriptedBackend, isolated_settings


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path
) -> None:
    for key in list(os.environ):
        if key.startswith("RAG_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAG_CONFIG", str(tmp_path_factory.getbasetemp() / "no-such-config.toml"))
    # Anything that builds its own settings (the CLI in-process) must not fill ~/.cache.
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache_dir))


@pytest.fixture
def make_settings(tmp_path: Path, model_cache_dir: Path) -> Callable[..., Settings]:
    """Settings for a data directory under ``tmp_path`` (``name``) and the shared cache."""

    def make(name: str = "data", **overrides: Any) -> Settings:
        return load_settings(data_dir=tmp_path / name, cache_dir=model_cache_dir, **overrides)

    return make


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A private PostgreSQL server for the session (``make postgres`` installs it).

    Fails, never skips, when PostgreSQL is missing: the shared-manifest tests must run
    wherever the suite runs."""
    from server.sandbox import PostgresServer

    try:
        server = PostgresServer()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    with server:
        yield server


@pytest.fixture
def postgres_url(postgres: Any) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    return str(postgres.create_database())


@pytest.fixture(scope="session")
def embedder(model_cache_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The real packaged model, loaded once, with its ONNX twin built in the shared cache."""
    from rag.index.embedding import SentenceTransformerEmbedder, ensure_onnx_export

    settings = isolated_settings(
        tmp_path_factory.getbasetemp(),
        data_dir=tmp_path_factory.mktemp("unused-data"),
        cache_dir=model_cache_dir,
    )
    model = SentenceTransformerEmbedder(settings.embedding_model, settings.embed_batch_size)
    ensure_onnx_export(settings, model)
    return model


class CountingEmbedder:
    """Wraps the real embedder and records every text it is asked to embed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)


@pytest.fixture
def counting(embedder: Any) -> Iterator[Callable[[], CountingEmbedder]]:
    yield lambda: CountingEmbedder(embedder)


@pytest.fixture
def scripted_generator() -> Iterator[Callable[[str], ScriptedBackend]]:
    """``use(reply)`` registers the generator "scripted", whose backend streams ``reply``,
    through the same registry the settings, CLI and UI read; it is removed afterwards."""

    def use(reply: str) -> ScriptedBackend:
        backend = ScriptedBackend(reply)
        generators.register("scripted", "a fixed reply, for tests", lambda settings: backend,
                            replace=True)  # fmt: skip
        return backend

    yield use
    generators.unregister("scripted")
