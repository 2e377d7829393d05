"""The configuration reference, ``docs/configuration.md``, written from ``Settings`` itself.

``python -m rag.settings_doc`` prints the page, ``--write`` writes it and ``--check``
exits 1 when the committed page differs (``make lint`` runs it), so the page cannot
drift from the fields it describes. Every row comes from one field: its name, its
environment variable, its type and bounds, its default and its description. Defaults
computed from the machine (the user's data and cache folders, the checkout the package
sits in) are written as symbols, so the page reads the same on every machine.

It documents; it does not load or validate settings (``rag.settings`` does), and it
knows nothing of the pipeline's stages.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic.fields import FieldInfo

from rag.settings import APP_NAME, DEPRECATED, ENV_PREFIX, Settings, env_var
from rag.settings_sources import CONFIG_ENV

# The folder that holds the package: the source checkout, where corpus/ and docs/ live.
CHECKOUT = Path(__file__).resolve().parent.parent
PAGE = CHECKOUT / "docs" / "configuration.md"
REGENERATE = "python -m rag.settings_doc --write"

_PLAIN_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    Path: "path",
}


def _symbols() -> list[tuple[Path, str]]:
    """Machine-dependent folders and the names the page gives them, most specific first."""
    found = [
        (Path(platformdirs.user_data_dir(APP_NAME)), f"<user data dir>/{APP_NAME}"),
        (Path(platformdirs.user_cache_dir(APP_NAME)), f"<user cache dir>/{APP_NAME}"),
        (Path(platformdirs.user_config_dir(APP_NAME)), f"<user config dir>/{APP_NAME}"),
        # corpus_dir's default sits beside the package, in the source checkout.
        (CHECKOUT, "<checkout>"),
        (Path.home(), "~"),
    ]
    # A checkout under the home folder must be named as the checkout, not as "~/...".
    return sorted(found, key=lambda pair: len(pair[0].parts), reverse=True)


def symbolic_path(path: Path) -> str:
    """``path`` with the machine's own folders replaced by their symbols."""
    if not path.is_absolute():
        return path.as_posix()
    for base, symbol in _symbols():
        if path == base:
            return symbol
        if path.is_relative_to(base):
            return f"{symbol}/{path.relative_to(base).as_posix()}"
    # A machine path without a symbol would make the page differ from one machine to
    # the next, and --check fail on all but one: name the folder here first.
    raise ValueError(f"no symbol for the machine-dependent default {path}; add one to _symbols()")


def type_text(annotation: Any, limits: str = "") -> str:
    """A field's annotation in words, with its ``limits`` (bounds_text) after the type:
    ``int | None`` between 1 and 256 is "integer, 1 to 256, optional"."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        inner = rest[0] if len(rest) == 1 else typing.Union[rest]  # noqa: UP007
        return f"{type_text(inner, limits)}, optional"
    if annotation in _PLAIN_TYPES:
        text = _PLAIN_TYPES[annotation]
    elif origin is Literal:
        names = [f"`{a}`" for a in args]
        text = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    elif origin in (typing.Union, types.UnionType):
        text = " or ".join(type_text(a) for a in args)
    elif origin is list and len(args) == 1:
        text = f"list of {type_text(args[0])}s"
    else:
        text = str(annotation).replace("typing.", "")
    return f"{text}, {limits}" if limits else text


def _number(value: float) -> str:
    # As a user would type it into a flag or the config file: 50.0 is 50, and no
    # thousands separators.
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return str(int(value))


def bounds_text(field: FieldInfo) -> str:
    """The field's numeric limits (``ge``/``gt``/``le``/``lt``), or "" when it has none."""
    limits: dict[str, float] = {}
    for item in field.metadata:
        for name in ("ge", "gt", "le", "lt"):
            value = getattr(item, name, None)
            if isinstance(value, int | float):
                limits[name] = value
    if "ge" in limits and "le" in limits:
        return f"{_number(limits['ge'])} to {_number(limits['le'])}"
    words = {"ge": "at least", "gt": "above", "le": "at most", "lt": "below"}
    return ", ".join(f"{words[name]} {_number(value)}" for name, value in limits.items())


def default_text(field: FieldInfo) -> str:
    """The default as a user would write it, symbolic where the machine decides it."""
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        return f"`{symbolic_path(value)}`"
    if isinstance(value, int | float):
        return f"`{_number(value)}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    # One table cell: no line breaks, and a pipe would end the cell early.
    return " ".join(text.split()).replace("|", "\\|")


def rows(settings_cls: type[Settings] = Settings) -> list[list[str]]:
    """One row per field, in the order ``Settings`` declares them."""
    found = []
    for name, field in settings_cls.model_fields.items():
        label = f"`{name}` (deprecated: setting it warns)" if name in DEPRECATED else f"`{name}`"
        env = env_var(name)
        found.append(
            [
                label,
                f"`{env}`",
                type_text(field.annotation, bounds_text(field)),
                default_text(field),
                field.description or "",
            ]
        )
    return found


def _header() -> list[str]:
    config_file = symbolic_path(Path(platformdirs.user_config_dir(APP_NAME)) / "rag.toml")
    return [
        "# Configuration",
        "",
        "<!-- Generated by `python -m rag.settings_doc --write`: do not edit by hand. -->",
        "",
        "This page is generated from the `Settings` model in `rag/settings.py` by "
        f"`{REGENERATE}`. To change it, change a field or its description there and run "
        "that command; `make lint` (`python -m rag.settings_doc --check`) fails while the "
        "committed page differs from what the command writes.",
        "",
        "## How settings are read",
        "",
        "One settings object serves the CLI, the web chat, `rag serve` and the evals. Each "
        "value comes from the first of these that sets it:",
        "",
        "1. a command-line flag (`rag --data-dir DIR ...`, `rag ask --top-k 3 ...`);",
        f"2. an environment variable, `{ENV_PREFIX}` followed by the name in capitals "
        f"(`{ENV_PREFIX}TOP_K=3`); lists are written as JSON "
        f"(`{ENV_PREFIX}UI_EXAMPLES='[\"Who makes Trainium?\"]'`), booleans as `true` or "
        "`false`;",
        f"3. the TOML config file: `${CONFIG_ENV}` if set, else `{config_file}`, with the "
        "names as keys (`top_k = 3`);",
        "4. the default below.",
        "",
        "`rag config` prints every effective value and where it came from (flag, "
        "environment, config file or default), with secrets masked.",
        "",
        "Defaults that depend on the machine are written as symbols: `<user data dir>`, "
        "`<user cache dir>` and `<user config dir>` are the per-user folders `platformdirs` "
        "gives (on Linux `~/.local/share`, `~/.cache` and `~/.config`; on macOS "
        "`~/Library/Application Support`, `~/Library/Caches` and `~/Library/Application "
        "Support`), and `<checkout>` is the folder that holds the `rag` package (the "
        "source checkout). *Unset* means the description says what applies instead.",
        "",
        "## Settings",
        "",
    ]


def render(settings_cls: type[Settings] = Settings) -> str:
    """The whole page, as ``--write`` writes it."""
    table = ["| name | environment variable | type | default | description |"]
    table.append("|---|---|---|---|---|")
    table += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows(settings_cls)]
    return "\n".join([*_header(), *table]) + "\n"


def check(page: Path = PAGE, render_page: Callable[[], str] = render) -> str | None:
    """None when ``page`` holds exactly what ``render_page`` writes; else what differs."""
    expected = render_page()
    try:
        actual = page.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{page} is missing; write it with `{REGENERATE}`."
    if actual == expected:
        return None
    diff = difflib.unified_diff(
        actual.splitlines(), expected.splitlines(), "committed", "from Settings", lineterm=""
    )
    shown = list(diff)[:40]
    return (
        f"{page} differs from the Settings model in rag/settings.py; regenerate it with "
        f"`{REGENERATE}` and commit it.\n" + "\n".join(shown)
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rag.settings_doc",
        description="Print the configuration reference generated from rag.settings.Settings.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"write {PAGE.name} under docs/")
    action.add_argument(
        "--check", action="store_true", help="exit 1 if the committed page is out of date"
    )
    args = parser.parse_args(argv)
    if args.check:
        problem = check()
        if problem:
            print(problem, file=sys.stderr)
            return 1
        return 0
    if args.write:
        PAGE.parent.mkdir(parents=True, exist_ok=True)
        PAGE.write_text(render(), encoding="utf-8")
        print(f"wrote {PAGE}")
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
