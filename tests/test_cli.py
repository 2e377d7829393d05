"""The ``rag`` command line for ingestion: JSON shapes, exit codes, and user errors
that read as messages with a next step, never as tracebacks.

Commands that do not load the model run as real subprocesses (``python -m rag``);
``ingest`` runs in-process through click's runner to share the loaded model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rag import __version__
from rag.cli import cli
from rag.index.ingest import ingest, ingest_lock
from rag.index.store import Index
from tests.helpers import CORPUS, clean_env, make_pdf, run_rag

pytestmark = pytest.mark.slow


@pytest.fixture
def env(model_cache_dir: Path) -> dict[str, str]:
    return clean_env(model_cache_dir)


@pytest.fixture
def indexed(make_settings, embedder) -> Path:
    """A data dir holding the bundled corpus; returns the data dir."""
    settings = make_settings()
    ingest(settings, [CORPUS], embedder=embedder)
    return settings.data_dir


def _chunks(data_dir: Path, make_settings) -> int:
    index = Index.open(make_settings(data_dir.name))
    try:
        return index.counts()["chunks"]
    finally:
        index.close()


def _user_error(result, code: int, *phrases: str) -> None:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for phrase in phrases:
        assert phrase in result.stderr, (phrase, result.stderr)


def test_version(env) -> None:
    result = run_rag("--version", env=env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"rag, version {__version__}"


def test_help_lists_the_ingest_commands(env) -> None:
    result = run_rag("--help", env=env)
    assert result.returncode == 0
    for command in ("ingest", "docs", "remove", "info", "config"):
        assert f"  {command} " in result.stdout


def test_ingest_json_summary(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--data-dir", str(tmp_path / "data"), "ingest", "--json", str(CORPUS)]
    first = runner.invoke(cli, args, catch_exceptions=False)
    assert first.exit_code == 0, first.stderr
    summary = json.loads(first.stdout)
    for key in ("files", "chunks_added", "chunks_unchanged", "chunks_removed", "seconds"):
        assert key in summary, key
    assert summary["files"] == 1
    assert summary["chunks_added"] == summary["chunks_embedded"] > 0
    assert summary["chunks_unchanged"] == summary["chunks_removed"] == 0
    assert isinstance(summary["seconds"], float)

    second = json.loads(runner.invoke(cli, args, catch_exceptions=False).stdout)
    assert second["chunks_added"] == second["chunks_embedded"] == 0
    assert second["chunks_unchanged"] == summary["chunks_added"]


def test_ingest_text_summary_and_warnings(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nA fine document.\n")
    (folder / "scan.pdf").write_bytes(make_pdf([None]))
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "data"), "ingest", str(folder)], catch_exceptions=False
    )
    assert result.exit_code == 0
    assert result.stdout.startswith("1 files: 1 added")
    assert "chunks" in result.stdout and "embedded" in result.stdout
    assert "warning: skipped scan.pdf" in result.stderr and "OCR" in result.stderr


def test_docs_json(indexed: Path, env, make_settings) -> None:
    result = run_rag("--data-dir", indexed, "docs", "--json", env=env)
    assert result.returncode == 0, result.stderr
    (doc,) = json.loads(result.stdout)
    assert doc["source"] == "trainium-article.md"
    assert doc["title"] == "Amazon's AI initiative in the US is centered in Texas"
    assert doc["chunks"] == _chunks(indexed, make_settings)
    assert doc["ingested_at"] and doc["kind"] == "md"

    text = run_rag("--data-dir", indexed, "docs", env=env)
    assert text.returncode == 0 and "trainium-article.md" in text.stdout


def test_info_json(indexed: Path, env, make_settings, model_cache_dir: Path) -> None:
    result = run_rag("--data-dir", indexed, "info", "--json", env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    chunks = _chunks(indexed, make_settings)
    assert info["documents"] == 1
    assert info["chunks"] == info["vectors"] == chunks
    assert info["data_dir"] == str(indexed)
    assert info["cache_dir"] == str(model_cache_dir)
    assert info["embedding_model"] == "all-MiniLM-L6-v2"


def test_info_without_an_index(tmp_path: Path, env) -> None:
    result = run_rag("--data-dir", tmp_path / "empty", "info", "--json", env=env)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert (info["documents"], info["chunks"], info["index"]) == (0, 0, None)


def test_remove(indexed: Path, env, make_settings) -> None:
    chunks = _chunks(indexed, make_settings)
    result = run_rag("--data-dir", indexed, "remove", "trainium-article.md", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"source": "trainium-article.md", "chunks_removed": chunks}
    info = json.loads(run_rag("--data-dir", indexed, "info", "--json", env=env).stdout)
    assert (info["documents"], info["chunks"], info["vectors"]) == (0, 0, 0)


def test_remove_unknown_source(indexed: Path, env) -> None:
    result = run_rag("--data-dir", indexed, "remove", "nope.md", env=env)
    _user_error(result, 1, "nope.md", "trainium-article.md", "rag docs")
    assert result.stdout == ""


def test_docs_without_an_index(tmp_path: Path, env) -> None:
    result = run_rag("--data-dir", tmp_path / "empty", "docs", env=env)
    _user_error(result, 1, "rag ingest")


def test_remove_without_an_index(tmp_path: Path, env) -> None:
    _user_error(run_rag("--data-dir", tmp_path / "e", "remove", "x.md", env=env), 1, "rag ingest")


def test_corrupt_index(indexed: Path, env) -> None:
    (indexed / "index.json").write_text("{garbage")
    for command in (["docs"], ["info"], ["ingest", str(CORPUS)], ["remove", "x.md"]):
        result = run_rag("--data-dir", indexed, *command, env=env)
        _user_error(result, 1, "rag ingest --rebuild")


def test_ingest_of_a_missing_path(tmp_path: Path, env) -> None:
    result = run_rag("--data-dir", tmp_path / "d", "ingest", tmp_path / "nowhere", env=env)
    _user_error(result, 1, "not found")


def test_ingest_while_another_runs(indexed: Path, env) -> None:
    with ingest_lock(indexed):
        result = run_rag("--data-dir", indexed, "ingest", "--no-wait", CORPUS, env=env)
    _user_error(result, 1, "Another ingest is running")


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["frobnicate"], "No such command"),
        (["ingest", "--frobnicate"], "No such option"),
        (["--data-dir"], "requires an argument"),
        (["remove"], "Missing argument"),
    ],
)
def test_usage_errors_exit_2(env, args: list[str], phrase: str) -> None:
    _user_error(run_rag(*args, env=env), 2, phrase)


def test_invalid_setting_is_a_user_error(tmp_path: Path, env) -> None:
    result = run_rag("--data-dir", tmp_path / "d", "info", env={**env, "RAG_TOP_K": "lots"})
    _user_error(result, 1, "top_k", "RAG_")


def test_config_json_shows_where_values_come_from(tmp_path: Path, env) -> None:
    result = run_rag(
        "--data-dir", tmp_path / "d", "config", "--json", env={**env, "RAG_TOP_K": "7"}
    )
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["data_dir"]["source"] == "flag" and rows["data_dir"]["value"] == str(tmp_path / "d")
    assert (rows["top_k"]["value"], rows["top_k"]["source"]) == (7, "env RAG_TOP_K")
    assert rows["chunk_size"]["source"] == "default"


def test_bench_ask_is_plugged_in_by_evals() -> None:
    result = CliRunner().invoke(cli, ["bench", "--help"])
    assert result.exit_code == 0
    assert "  ask " in result.output and "  ingest " in result.output
    ask = CliRunner().invoke(cli, ["bench", "ask", "--help"])
    assert ask.exit_code == 0 and "--questions" in ask.output and "--cold-runs" in ask.output


def test_bench_ask_takes_questions_from_a_suite_with_included_cases(
    indexed: Path, tmp_path: Path
) -> None:
    # The suite schema's own loader reads the questions, so a suite that includes case
    # files (as the benchmark's do) works too.
    (tmp_path / "cases.yaml").write_text(
        "- {id: a, kind: answerable, question: 'Who makes Trainium?'}\n"
        "- {id: b, kind: unanswerable, question: 'Who is the CEO of Annapurna Labs?'}\n"
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: tiny\ninclude: [cases.yaml]\n")
    args = ["--data-dir", str(indexed), "bench", "ask", "--rounds", "1", "--cold-runs", "1"]
    result = CliRunner().invoke(cli, [*args, "--questions", str(suite), "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["questions"] == 2 and figures["warm_runs"] == 2
    assert figures["warm_p50_ms"] <= figures["warm_p95_ms"] <= figures["warm_max_ms"]
    # --limit takes the first questions; --cold-runs 0 starts no process.
    args = ["--data-dir", str(indexed), "bench", "ask", "--rounds", "1", "--cold-runs", "0"]
    result = CliRunner().invoke(cli, [*args, "--questions", str(suite), "--limit", "1", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["questions"] == 1 and "cold_process_s_median" not in figures
    assert figures["generator"] == "extractive" and figures["refused"] == 0
    assert figures["first_sentence_p50_ms"] <= figures["warm_p50_ms"]
