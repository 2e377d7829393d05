"""The deployment example (docs/deploy/compose.yaml) stays true to the code: every
RAG_* variable it sets is a real setting with a valid value, and every ``rag``
command line it runs parses. Fast: no containers are started."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag.settings import ENV_PREFIX, Settings, load_settings
from tests.helpers import REPO

COMPOSE = REPO / "docs" / "deploy" / "compose.yaml"
# ${NAME:?message} is filled by compose from the operator's shell: a stand-in here.
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")
STAND_INS = {
    "RAG_API_KEYS": "key-one,key-two",
    "RAG_UI_AUTH": "admin:secret",
    "POSTGRES_PASSWORD": "pg-secret",
}


def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {
        key: INTERPOLATION.sub(lambda m: STAND_INS[m.group(1)], str(value))
        for key, value in env.items()
    }


def test_the_compose_file_runs_replicas_over_chroma_and_postgres() -> None:
    found = services()
    assert "chroma" in found and "postgres" in found
    replicas = [s for s in found.values() if environment(s).get("RAG_CHROMA_MODE") == "http"]
    assert len(replicas) >= 2
    # Every replica shares one manifest, on the compose file's own PostgreSQL service,
    # with the user, password and database that service creates.
    postgres = environment(found["postgres"])
    urls = {environment(s).get("RAG_MANIFEST_URL") for s in replicas}
    assert urls == {
        f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{postgres['POSTGRES_DB']}"
    }
    for replica in replicas:
        assert {"chroma", "postgres"} <= set(replica["depends_on"])


@pytest.mark.parametrize("name", sorted(services()))
def test_every_rag_variable_is_a_real_setting_with_a_valid_value(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = environment(services()[name])
    known = {f"{ENV_PREFIX}{field.upper()}" for field in Settings.model_fields}
    unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in known)
    assert not unknown, f"{name} sets variables that are not settings: {unknown}"
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("RAG_DATA_DIR", str(tmp_path))  # paths inside the container
    monkeypatch.setenv("RAG_CACHE_DIR", str(tmp_path))
    load_settings()  # raises InputError on a value the settings refuse


@pytest.mark.parametrize("name", sorted(services()))
def test_every_rag_command_line_parses(name: str, tmp_path: Path) -> None:
    from rag.cli import cli

    command = services()[name].get("command") or []
    if not command or command[0] != "rag":
        return
    context = cli.make_context("rag", list(command[1:]), resilient_parsing=True)
    sub = cli.get_command(context, command[1])
    assert sub is not None, command
    # Paths inside the container (--watch /documents) must exist to parse: a stand-in.
    args = [str(tmp_path) if a.startswith("/") else a for a in command[2:]]
    sub.make_context(command[1], args)
