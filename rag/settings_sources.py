"""Where settings come from: the config file's path, the environment variables'
names, the bundled corpus (the default ``corpus_dir``) and the warning a deprecated
setting gives. ``rag.settings`` declares the settings themselves; everything here is
importable from there too.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "rag"
ENV_PREFIX = "RAG_"
CONFIG_ENV = "RAG_CONFIG"


def bundled_corpus() -> Path:
    """The folder of the bundled article (the default corpus)."""
    # In a source checkout (the supported install) the corpus sits beside the package.
    return Path(__file__).resolve().parent.parent / "corpus"


class DeprecatedSettingWarning(FutureWarning):
    """A setting that is still accepted but does nothing and will be removed.

    A ``FutureWarning`` because it is meant for the people who set it, not only for
    developers (Python shows these by default; the CLI prints them as warnings)."""


# Settings accepted for now but unused; setting one warns (see ``_warn_about_deprecated``).
DEPRECATED = frozenset({"chunk_size", "chunk_overlap"})


def env_var(name: str) -> str:  # the variable that sets a setting: top_k -> RAG_TOP_K
    return f"{ENV_PREFIX}{name.upper()}"


def config_path() -> Path:
    """The config file in effect: ``$RAG_CONFIG``, else ``rag.toml`` in the user config dir."""
    explicit = os.environ.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "rag.toml"
