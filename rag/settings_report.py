"""Where each effective setting came from (flag, environment, config file, default), for
``rag config``, with secrets masked: a report about the settings, apart from the
settings model itself (``rag.settings``).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.settings import Settings, config_path, env_var


@dataclass(frozen=True)
class SettingReport:
    name: str
    value: Any
    source: str
    description: str


def describe(settings: Settings, overrides: dict[str, Any] | None = None) -> list[SettingReport]:
    """Each effective setting with the layer it came from (flag, env, config file, default)."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    path = config_path()
    file_values: dict[str, Any] = {}
    if path.is_file():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            file_values = {}
    rows = []
    for name, field in Settings.model_fields.items():
        env_name = env_var(name)
        if name in overrides:
            source = "flag"
        elif env_name in os.environ:
            source = f"env {env_name}"
        elif name in file_values:
            source = f"config {path}"
        else:
            source = "default"
        value = getattr(settings, name)
        if name == "ui_auth" and value:
            value = value.split(":", 1)[0] + ":***"  # never print the password
        if name in ("llm_api_key", "chroma_token") and value:
            value = "***"
        if name == "manifest_url" and value:
            value = re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", value)  # never the password
        if name == "api_keys" and value:
            # How many, never any part of one: even a prefix narrows a guess.
            count = len(settings.api_key_list)
            value = f"*** ({count} key{'' if count == 1 else 's'})"
        rows.append(
            SettingReport(
                name=name,
                value=str(value) if isinstance(value, Path) else value,
                source=source,
                description=field.description or "",
            )
        )
    return rows
