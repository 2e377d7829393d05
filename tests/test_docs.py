"""The documentation cannot drift: the configuration page is what ``Settings`` says, the
README stays a front door whose links resolve, the files the docs name exist, and the
site builds under ``mkdocs build --strict`` into pages that load nothing from the
internet. Each check is also shown failing on a tampered copy, so a pass means something.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import Field

from rag import settings_doc
from rag.settings import Settings

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"

# [text](target) and ![alt](target), the target up to a space (a title) or ")".
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A module or script path in backticks, as the module table and the pages write them.
NAMED_PY_FILE = re.compile(r"`((?:rag|ui|server|evals|tests)/[\w/]+\.py)`")


def test_the_configuration_page_is_what_settings_say() -> None:
    problem = settings_doc.check()
    assert problem is None, problem


def test_the_configuration_check_fails_on_a_changed_setting() -> None:
    class WithANewKnob(Settings):
        new_knob: int = Field(default=3, ge=1, description="A setting the page does not have.")

    problem = settings_doc.check(render_page=lambda: settings_doc.render(WithANewKnob))
    assert problem is not None
    assert "python -m rag.settings_doc --write" in problem
    assert "+| `new_knob` | `RAG_NEW_KNOB` | integer, at least 1 | `3` |" in problem


def test_the_configuration_check_fails_on_a_hand_edited_page(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    committed = settings_doc.PAGE.read_text(encoding="utf-8")
    edited = committed.replace(
        "| `RAG_TOP_K` | integer, 1 to 50 | `5` |", "| `RAG_TOP_K` | integer, 1 to 50 | `7` |"
    )
    assert edited != committed
    page.write_text(edited, encoding="utf-8")
    problem = settings_doc.check(page)
    assert problem is not None and "`7`" in problem
    assert settings_doc.check(tmp_path / "missing.md") is not None


def test_the_configuration_page_is_the_same_on_every_machine() -> None:
    page = settings_doc.render()
    # Each field once, under its environment variable.
    for name in Settings.model_fields:
        assert page.count(f"| `RAG_{name.upper()}` |") == 1, name
    # Machine-dependent defaults are symbols, never this machine's folders.
    if len(Path.home().parts) > 1:  # a home of "/" is in every path
        assert str(Path.home()) not in page
    assert str(REPO) not in page
    assert "`<user data dir>/rag`" in page and "`<checkout>/corpus`" in page


def test_settings_doc_prints_and_checks_from_the_command_line() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "rag.settings_doc", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    printed = subprocess.run(
        [sys.executable, "-m", "rag.settings_doc"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert printed.stdout == settings_doc.PAGE.read_text(encoding="utf-8")


def test_the_readme_is_a_front_door() -> None:
    text = README.read_text(encoding="utf-8")
    lines, words = len(text.splitlines()), len(text.split())
    assert lines <= 220, f"README.md has {lines} lines; move detail into docs/"
    assert words <= 1500, f"README.md has {words} words; move detail into docs/"
    # .ci/run runs "the README's test command": keep it there, and the chat beside it.
    assert "make test    # run the whole test suite" in text
    assert "make chat    # the web chat" in text


def relative_links(markdown: str) -> list[str]:
    targets = []
    for target in MARKDOWN_LINK.findall(markdown):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "//")):
            continue  # http(s), mailto: and in-page anchors are not files
        targets.append(target.split("#", 1)[0])
    return targets


def test_every_relative_link_in_the_readme_resolves() -> None:
    targets = relative_links(README.read_text(encoding="utf-8"))
    assert "docs/screenshot.png" in targets and "docs/configuration.md" in targets
    missing = [t for t in targets if not (REPO / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_the_link_check_sees_a_broken_link() -> None:
    targets = relative_links("![x](docs/nope.png) [y](docs/gone.md#part) [z](https://example.org)")
    assert targets == ["docs/nope.png", "docs/gone.md"]
    assert not any((REPO / t).exists() for t in targets)


def test_the_files_the_docs_name_exist() -> None:
    pages = [README, *sorted(DOCS.glob("*.md"))]
    named = {
        (page.name, path)
        for page in pages
        for path in NAMED_PY_FILE.findall(page.read_text(encoding="utf-8"))
    }
    assert len(named) > 40  # the module table is among them
    missing = sorted(f"{page}: {path}" for page, path in named if not (REPO / path).is_file())
    assert not missing, f"the docs name files that do not exist: {missing}"


def build_site(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    # Never with -q: mkdocs 1.6 then drops the warnings before --strict counts them,
    # and a broken link passes.
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(config),
            "-d",
            str(site),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


class LoadedResources(HTMLParser):
    """The URLs a browser would fetch by itself: scripts, stylesheets, images, frames,
    fonts and icons (``<a href>`` is only followed when clicked)."""

    LOADING: ClassVar[dict[str, str]] = {
        "script": "src",
        "img": "src",
        "iframe": "src",
        "source": "src",
        "link": "href",
    }

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        wanted = self.LOADING.get(tag)
        if wanted and found.get(wanted):
            self.urls.append(found[wanted] or "")
        self.urls += CSS_URL.findall(found.get("style") or "")


CSS_URL = re.compile(r"(?:@import\s+(?:url\(\s*)?|url\(\s*)[\"']?([^\"')\s;]+)")


def is_external(url: str) -> bool:
    return url.startswith(("http:", "https:", "//"))


def external_resources(site: Path) -> list[str]:
    found = []
    for page in site.rglob("*.html"):
        parser = LoadedResources()
        parser.feed(page.read_text(encoding="utf-8"))
        found += [f"{page.relative_to(site)}: {url}" for url in parser.urls if is_external(url)]
    for sheet in site.rglob("*.css"):
        urls = CSS_URL.findall(sheet.read_text(encoding="utf-8"))
        found += [f"{sheet.relative_to(site)}: {url}" for url in urls if is_external(url)]
    for script in site.rglob("*.js"):
        calls = re.findall(
            r"(?:importScripts|fetch)\(\s*[\"']((?:https?:)?//[^\"']+)",
            script.read_text(encoding="utf-8"),
        )
        found += [f"{script.relative_to(site)}: {url}" for url in calls]
    return found


def test_the_site_builds_strictly_and_loads_nothing_from_the_internet(tmp_path: Path) -> None:
    site = tmp_path / "site"
    build = build_site(REPO / "mkdocs.yml", site)
    assert build.returncode == 0, build.stderr
    assert (site / "index.html").is_file() and (site / "configuration" / "index.html").is_file()
    assert (site / "deploy" / "compose.yaml").is_file()  # linked from the deployment page
    assert external_resources(site) == []


def test_the_resource_check_sees_a_cdn(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        '<link rel="stylesheet" href="https://cdn.example/x.css"><a href="https://example.org">ok</a>'
        '<script src="//cdn.example/x.js"></script>',
        encoding="utf-8",
    )
    (tmp_path / "style.css").write_text(
        "@import url(https://fonts.example/f.css);", encoding="utf-8"
    )
    assert len(external_resources(tmp_path)) == 3


def copy_of_the_docs(tmp_path: Path) -> Path:
    shutil.copy(REPO / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("documents"))
    return tmp_path / "mkdocs.yml"


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("See [the missing page](no-such-page.md).", "no-such-page.md"),
        ("See [a missing anchor](configuration.md#no-such-setting).", "no-such-setting"),
    ],
)
def test_a_broken_link_fails_the_strict_build(tmp_path: Path, edit: str, named: str) -> None:
    config = copy_of_the_docs(tmp_path)
    page = tmp_path / "docs" / "evals.md"
    page.write_text(page.read_text(encoding="utf-8") + f"\n{edit}\n", encoding="utf-8")
    build = build_site(config, tmp_path / "site")
    assert build.returncode != 0
    assert named in build.stderr


def test_a_page_left_out_of_the_navigation_fails_the_strict_build(tmp_path: Path) -> None:
    config = copy_of_the_docs(tmp_path)
    (tmp_path / "docs" / "orphan.md").write_text("# Nobody links here\n", encoding="utf-8")
    build = build_site(config, tmp_path / "site")
    assert build.returncode != 0
    assert "orphan.md" in build.stderr
