"""Settings: defaults < TOML config file < RAG_* environment < overrides (CLI flags).

Fast unit tests. ``RAG_CONFIG`` points each test at its own config file, so the
user's real configuration never takes part.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag.cli import cli
from rag.errors import InputError
from rag.settings import (
    DeprecatedSettingWarning,
    Settings,
    config_path,
    load_settings,
)
from rag.settings_report import describe

DEFAULT_TOP_K = Settings.model_fields["top_k"].default
DEFAULT_BATCH = Settings.model_fields["embed_batch_size"].default


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "rag.toml"
    monkeypatch.setenv("RAG_CONFIG", str(path))
    return path


def _sources(settings: Settings, overrides: dict | None = None) -> dict[str, str]:
    return {row.name: row.source for row in describe(settings, overrides)}


def test_defaults_when_nothing_is_configured(config_file: Path, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.top_k == DEFAULT_TOP_K
    assert settings.embed_batch_size == DEFAULT_BATCH
    assert settings.embedding_model == "all-MiniLM-L6-v2"
    assert settings.corpus_dir == Path(__file__).resolve().parent.parent / "corpus"
    sources = _sources(settings)
    assert sources["top_k"] == "default"
    assert sources["embedding_model"] == "default"


def test_config_file_overrides_defaults(config_file: Path, tmp_path: Path) -> None:
    config_file.write_text(f"top_k = {DEFAULT_TOP_K + 2}\nembed_batch_size = 7\n")
    settings = load_settings(data_dir=tmp_path)
    assert (settings.top_k, settings.embed_batch_size) == (DEFAULT_TOP_K + 2, 7)
    assert config_path() == config_file
    sources = _sources(settings)
    assert sources["top_k"] == f"config {config_file}"
    assert sources["max_file_mb"] == "default"


def test_environment_overrides_config_file(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("top_k = 9\nembed_batch_size = 7\n")
    monkeypatch.setenv("RAG_TOP_K", "11")
    settings = load_settings(data_dir=tmp_path)
    assert settings.top_k == 11
    assert settings.embed_batch_size == 7, "the file still applies where env is silent"
    sources = _sources(settings)
    assert sources["top_k"] == "env RAG_TOP_K"
    assert sources["embed_batch_size"] == f"config {config_file}"


def test_overrides_win_over_everything(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text(f'top_k = 9\ndata_dir = "{tmp_path / "from-file"}"\n')
    monkeypatch.setenv("RAG_TOP_K", "11")
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "from-env"))
    overrides = {"top_k": 13, "data_dir": tmp_path / "from-flag", "chunk_size": None}
    settings = load_settings(**overrides)
    assert settings.top_k == 13
    assert settings.data_dir == tmp_path / "from-flag"
    assert settings.chunk_size == Settings.model_fields["chunk_size"].default, "None is unset"
    sources = _sources(settings, overrides)
    assert sources["top_k"] == "flag"
    assert sources["data_dir"] == "flag"
    assert sources["chunk_size"] == "default"


def test_data_dir_from_environment(config_file: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path / "env-data"))
    settings = load_settings()
    assert settings.data_dir == tmp_path / "env-data"
    assert _sources(settings)["data_dir"] == "env RAG_DATA_DIR"


def test_describe_reports_every_field_with_a_description(config_file: Path, tmp_path) -> None:
    rows = describe(load_settings(data_dir=tmp_path))
    assert [r.name for r in rows] == list(Settings.model_fields)
    assert all(r.description for r in rows)
    assert {r.name: r.value for r in rows}["data_dir"] == str(tmp_path), "paths as text"


def test_settings_are_frozen(config_file: Path, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(Exception, match="frozen"):
        settings.top_k = 3


@pytest.mark.parametrize(
    ("env", "toml", "overrides", "field"),
    [
        ({}, "", {"top_k": 0}, "top_k"),
        ({"RAG_TOP_K": "many"}, "", {}, "top_k"),
        ({"RAG_CHUNK_SIZE": "5"}, "", {}, "chunk_size"),
        ({}, "embed_batch_size = -1\n", {}, "embed_batch_size"),
        ({}, 'generator = "gpt-9"\n', {}, "generator"),
        ({}, "top_kk = 3\n", {}, "top_kk"),  # a typo in the config file is not ignored
    ],
)
def test_invalid_values_are_input_errors(
    config_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    toml: str,
    overrides: dict,
    field: str,
) -> None:
    config_file.write_text(toml)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(InputError) as info:
        load_settings(data_dir=tmp_path, **overrides)
    message = str(info.value)
    assert field in message
    assert str(config_file) in message, "the message says where to look"


def test_unparseable_config_file_is_an_input_error(config_file: Path, tmp_path: Path) -> None:
    config_file.write_text("top_k = = 3\n[unclosed\n")
    with pytest.raises(InputError, match="Cannot parse config file"):
        load_settings(data_dir=tmp_path)


@pytest.mark.parametrize("layer", ["override", "env", "config"])
def test_deprecated_settings_still_load_but_warn(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, layer: str
) -> None:
    overrides: dict = {}
    if layer == "override":
        overrides = {"chunk_size": 700}
    elif layer == "env":
        monkeypatch.setenv("RAG_CHUNK_SIZE", "700")
    else:
        config_file.write_text("chunk_size = 700\n")
    with pytest.warns(DeprecatedSettingWarning, match="chunk_size setting is deprecated") as got:
        settings = load_settings(data_dir=tmp_path, **overrides)
    assert settings.chunk_size == 700, "still accepted while deprecated"
    assert len(got) == 1 and "RAG_CHUNK_SIZE" in str(got[0].message)
    assert "SentenceSplitter" in str(got[0].message), "says where the knob lives now"


def test_untouched_deprecated_settings_are_silent(config_file: Path, tmp_path: Path) -> None:
    # pytest turns warnings into errors here, so a warning would fail this test.
    settings = load_settings(data_dir=tmp_path)
    assert "Deprecated" in Settings.model_fields["chunk_overlap"].description
    assert settings.chunk_overlap == Settings.model_fields["chunk_overlap"].default


def test_cli_prints_a_deprecated_setting_as_one_warning_line(
    config_file: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path), "config", "--json"], env={"RAG_CHUNK_OVERLAP": "2"}
    )
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["chunk_overlap"] == {**rows["chunk_overlap"], "value": 2,
                                     "source": "env RAG_CHUNK_OVERLAP"}  # fmt: skip
    assert result.stderr.startswith("warning: The chunk_overlap setting is deprecated")
    assert result.stderr.count("\n") == 1


def test_web_chat_examples_from_environment_or_config(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(data_dir=tmp_path).ui_examples is None, "default: decided by the index"
    config_file.write_text('ui_examples = ["Where is the pump made?"]\n')
    assert load_settings(data_dir=tmp_path).ui_examples == ["Where is the pump made?"]
    monkeypatch.setenv("RAG_UI_EXAMPLES", "[]")
    assert load_settings(data_dir=tmp_path).ui_examples == []


def test_chroma_server_settings_from_environment_with_the_token_masked(
    config_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings(data_dir=tmp_path).chroma_mode == "embedded"  # unchanged default
    monkeypatch.setenv("RAG_CHROMA_MODE", "http")
    monkeypatch.setenv("RAG_CHROMA_PORT", "8123")
    monkeypatch.setenv("RAG_CHROMA_TOKEN", "very-secret")
    settings = load_settings(data_dir=tmp_path)
    assert (settings.chroma_mode, settings.chroma_port) == ("http", 8123)
    shown = {row.name: row.value for row in describe(settings)}
    assert shown["chroma_token"] == "***"
    monkeypatch.setenv("RAG_CHROMA_MODE", "cluster")
    with pytest.raises(InputError, match="chroma_mode"):
        load_settings(data_dir=tmp_path)
