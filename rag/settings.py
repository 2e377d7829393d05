"""One settings object for the CLI, the UI, the evals and the tests.

Precedence, lowest first: defaults, a TOML config file, ``RAG_*`` environment
variables, then CLI flags (passed in as overrides). ``rag.settings_report.describe``
reports where each effective value came from, for ``rag config``. Settings are passed
explicitly; there is no module-level instance. This module does not build anything from them
(``rag.pipeline.build_pipeline`` does).
"""

from __future__ import annotations

import tomllib
import warnings
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rag import generators
from rag.errors import InputError
from rag.settings_sources import (
    APP_NAME,
    DEPRECATED,
    ENV_PREFIX,
    DeprecatedSettingWarning,
    bundled_corpus,
    config_path,
    env_var,
)


class Settings(BaseSettings):
    """Every knob the tool has. Each field's description shows up in ``rag config``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir(APP_NAME)),
        description="Where the index and uploaded files live (RAG_DATA_DIR, --data-dir).",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_cache_dir(APP_NAME)),
        description="Model cache shared by all data directories; --rebuild never touches it.",
    )
    corpus_dir: Path = Field(
        default_factory=bundled_corpus,
        description="What `rag ingest` reads when given no path (the bundled article).",
    )
    embedding_model: str = Field(
        default="all-MiniLM-L6-v2",
        description="Sentence-transformers model: the packaged all-MiniLM-L6-v2 or a local path.",
    )
    context_sentences: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Previous sentences embedded with each indexed sentence as its context.",
    )
    chunk_size: int = Field(
        default=600,
        ge=100,
        le=8000,
        description="Deprecated and unused (the index holds single sentences); will be "
        "removed. rag.documents.chunking.SentenceSplitter takes its own chunk_size.",
    )
    chunk_overlap: int = Field(
        default=1,
        ge=0,
        le=5,
        description="Deprecated and unused (the index holds single sentences); will be "
        "removed. rag.documents.chunking.SentenceSplitter takes its own chunk_overlap.",
    )
    embed_batch_size: int = Field(
        default=32, ge=1, le=1024, description="Texts per embedding batch during ingest."
    )
    query_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Threads for embedding one question (default: 2, or 1 on a one-core machine).",
    )
    max_file_mb: float = Field(
        default=50.0, gt=0, description="Files larger than this are skipped with a warning."
    )
    ocr: Literal["off", "pdf", "all"] = Field(
        default="pdf",
        description="Which pages OCR reads (offline, Tesseract; `make ocr` installs it): 'pdf' "
        "the PDF pages whose text layer has fewer than 20 characters (scans), 'all' those and "
        ".png/.jpg/.tiff images, 'off' none. Pages with a text layer keep it as it is.",
    )
    ocr_languages: str = Field(
        default="eng",
        pattern=r"^[A-Za-z_]+(\+[A-Za-z_]+)*$",
        description="Tesseract languages OCR reads, joined by + (eng+deu); each needs its "
        "data (apt-get install tesseract-ocr-deu).",
    )
    ocr_max_pages: int = Field(
        default=200, ge=1, le=100_000, description="Most pages OCR reads in one file."
    )
    top_k: int = Field(default=5, ge=1, le=50, description="Evidence sentences kept per question.")
    answer_selector: Literal["learned", "rules"] = Field(
        default="learned",
        description="How the extractive answer decides which sentences answer: 'learned' "
        "(the trained selector, rag/models/selector.json) or 'rules' (the first version's "
        "hand-written rules).",
    )
    selector_threshold: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Refuse when no sentence's P(answers) reaches this (default: the "
        "threshold calibrated at training time). Higher refuses more.",
    )
    selector_max_sentences: int | None = Field(
        default=None,
        ge=1,
        le=10,
        description="Most sentences the learned selector quotes (default: the trained "
        "model's choice).",
    )
    selector_model_path: Path | None = Field(
        default=None,
        description="Weights of the learned selector (default: the packaged ones; "
        "`make train` writes them).",
    )
    reader_model_path: Path | None = Field(
        default=None,
        description="Folder of the reader, the cross-encoder the learned selector starts from "
        "(default: the packaged one; `make train-reader` writes it).",
    )
    max_question_chars: int = Field(
        default=1000, ge=10, le=100_000, description="Longest question accepted, in characters."
    )
    generator: str = Field(
        default=generators.EXTRACTIVE,
        description=f"Answer generator, one of those registered: {generators.summary()}.",
    )
    llm_model_path: Path | None = Field(
        default=None,
        description="GGUF file for llama-cpp (default: the packaged Qwen2.5-Coder-1.5B, "
        "assembled once into cache_dir).",
    )
    llm_chat_format: str | None = Field(
        default=None,
        description="llama-cpp chat format when the GGUF has no template (e.g. gemma).",
    )
    llm_support_check: bool = Field(
        default=False,
        description="Also ask the LLM whether each generated sentence is stated by its "
        "quotes (slower: one extra LLM call per sentence).",
    )
    llm_base_url: str = Field(
        default="http://127.0.0.1:8000/v1", description="OpenAI-compatible server URL."
    )
    llm_model: str = Field(default="local-model", description="Model name for openai / ollama.")
    llm_api_key: str | None = Field(
        default=None, description="API key for the openai generator (RAG_LLM_API_KEY)."
    )
    ollama_base_url: str = Field(default="http://127.0.0.1:11434", description="Ollama server URL.")
    llm_max_tokens: int = Field(default=200, ge=16, le=4096, description="Longest LLM answer.")
    llm_context: int = Field(default=4096, ge=512, le=131072, description="llama-cpp context.")
    llm_threads: int | None = Field(
        default=None, ge=1, le=256, description="llama-cpp threads (default: all cores)."
    )
    llm_timeout_s: float = Field(
        default=120.0, gt=0, description="Seconds to wait for an LLM server."
    )
    ui_host: str = Field(default="127.0.0.1", description="Address the web chat binds to.")
    ui_port: int = Field(default=7860, ge=1, le=65535, description="Port of the web chat.")
    ui_auth: str | None = Field(
        default=None,
        description="user:password required by the web chat (RAG_UI_AUTH); needed off loopback.",
    )
    ui_max_upload_mb: float = Field(
        default=20.0, gt=0, le=1000, description="Largest file the web chat accepts for upload."
    )
    ui_concurrency: int = Field(
        default=2, ge=1, le=64, description="Web chat requests answered at once; others queue."
    )
    ui_examples: list[str] | None = Field(
        default=None,
        description="Example questions the web chat offers (RAG_UI_EXAMPLES as a JSON list; "
        "[] for none). Default: questions about the bundled article, offered only when the "
        "index holds just that article.",
    )

    api_host: str = Field(default="127.0.0.1", description="Address `rag serve` binds to.")
    api_port: int = Field(default=8080, ge=1, le=65535, description="Port of `rag serve`.")
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Server processes of `rag serve` (each opens the index).",
    )
    api_answer_threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Requests rag serve answers at once per worker (default: half the "
        "cores, at least 1). Answers take the index lock and the GIL in turn: more threads "
        "than cores only add switching (measured with rag bench serve, 20 clients).",
    )
    api_chat: bool = Field(
        default=True, description="Mount the web chat at / of `rag serve` (--no-chat: API only)."
    )
    api_keys: str | None = Field(
        default=None,
        description="Bearer tokens `rag serve` accepts, comma-separated (RAG_API_KEYS); "
        "required off loopback. Shown masked.",
    )
    api_max_body_kb: int = Field(
        default=256,
        ge=1,
        le=100_000,
        description="Largest JSON request body `rag serve` reads, in KB (uploads use "
        "ui_max_upload_mb).",
    )
    api_rate_limit: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Requests per minute per API key (per client address without keys) "
        "for each server process; 0 for no limit.",
    )

    chroma_mode: Literal["embedded", "http"] = Field(
        default="embedded",
        description="Where vectors live: embedded (a Chroma directory inside each index "
        "generation) or http (a `chroma run` server shared by several processes).",
    )
    chroma_host: str = Field(
        default="127.0.0.1", description="Chroma server host (chroma_mode http)."
    )
    chroma_port: int = Field(
        default=8000, ge=1, le=65535, description="Chroma server port (chroma_mode http)."
    )
    chroma_ssl: bool = Field(
        default=False, description="Talk HTTPS to the Chroma server (chroma_mode http)."
    )
    chroma_token: str | None = Field(
        default=None,
        description="Bearer token sent to the Chroma server (RAG_CHROMA_TOKEN); Chroma 1.x "
        "does not check it itself: put an authenticating proxy in front. Shown masked.",
    )
    chroma_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Seconds to wait for the Chroma server (connect and each request) "
        "before failing with a clear error instead of hanging.",
    )

    manifest_url: str | None = Field(
        default=None,
        description="Where the manifest (documents, live chunks, the live generation, the "
        "ingest lock) lives: empty for SQLite files in data_dir (one machine), or "
        "postgresql://user:password@host:port/db for replicas that share it "
        "(RAG_MANIFEST_URL; needs chroma_mode http and pip install -e '.[postgres]'). "
        "Shown without its password.",
    )
    manifest_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="Seconds to wait for the manifest database (connect and each "
        "statement) before failing with a clear error instead of hanging.",
    )
    feedback_max_mb: float = Field(
        default=20.0,
        gt=0,
        le=100_000,
        description="Total size of the stored ratings (web chat thumbs, POST /api/feedback) "
        "past which a new rating is refused with a message saying how to make room "
        "(rag feedback export, then rag feedback purge).",
    )
    manifest_poll_s: float = Field(
        default=0.5,
        ge=0,
        le=3600,
        description="With a shared manifest, at most this many seconds between two looks "
        "at its revision: how soon a replica serves another replica's changes.",
    )

    watch_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=3600,
        description="Seconds between two looks at a watched folder (rag ingest/serve --watch).",
    )
    watch_debounce_s: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="Seconds a watched file's size and modification time must stay the "
        "same before it is indexed (a file still being written waits).",
    )

    @model_validator(mode="after")
    def _warn_about_deprecated(self) -> Settings:
        # Only values someone set (flag, environment, config file) warn: the defaults
        # of a deprecated field are nobody's doing.
        for name in sorted(DEPRECATED & self.model_fields_set):
            warnings.warn(
                f"The {name} setting is deprecated and has no effect (the index holds single "
                f"sentences); it will be removed. Remove {env_var(name)} or {name} from "
                f"{config_path()}. For your own LangChain chains, pass it to "
                "rag.documents.chunking.SentenceSplitter.",
                DeprecatedSettingWarning,
                stacklevel=1,  # the caller is pydantic's validation, not the user's code
            )
        return self

    @model_validator(mode="after")
    def _shared_manifest_needs_shared_vectors(self) -> Settings:
        if not self.manifest_url:
            return self
        if not self.manifest_url.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "manifest_url must be a postgresql://user@host:port/db URL (or empty for "
                "the SQLite manifest in data_dir)"
            )
        # The manifest is shared so that several machines serve one index; embedded
        # Chroma keeps the vectors on one machine's disk, where the others cannot
        # read them (and would each hold a different half).
        if self.chroma_mode != "http":
            raise ValueError(
                "a PostgreSQL manifest_url needs chroma_mode http (vectors on a Chroma "
                "server every replica reaches); set RAG_CHROMA_MODE=http and RAG_CHROMA_HOST"
            )
        return self

    @field_validator("generator")
    @classmethod
    def _registered_generator(cls, name: str) -> str:
        # Checked against the registry when the settings are built, so a generator
        # registered at run time (a plugin, a test's script) is accepted too.
        if name not in generators.names():
            raise ValueError(
                f"unknown generator {name!r}; use one of {', '.join(generators.names())}"
            )
        return name

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # CLI overrides arrive as init kwargs and win; the TOML file is the lowest layer.
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=config_path()),
        )

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def api_key_list(self) -> list[str]:
        """The API keys, split and trimmed (empty entries ignored)."""
        return [key.strip() for key in (self.api_keys or "").split(",") if key.strip()]


def load_settings(**overrides: Any) -> Settings:
    """Build settings from every layer; ``None`` overrides (unset CLI flags) are ignored."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InputError(
            f"Invalid settings ({problems}). Check RAG_* variables, flags and {config_path()}."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"Cannot parse config file {config_path()}: {exc}") from None
