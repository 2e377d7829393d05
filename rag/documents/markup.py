"""Markup that states nothing, and the text inside markup that does.

What a reader of a Markdown, reStructuredText or HTML-ish document never reads as a
statement: badges and images, links into the page (a table of contents), link
definitions, GitHub alert markers, reStructuredText comments and directives, a manual's
navigation lines, HTML tags around text. ``rag.documents.blocks`` asks here whether a
line states anything and where an HTML line's text is; the matching code
(``rag.documents.chunking``) asks for ``without_markup``. Offsets stay the document's.
"""

from __future__ import annotations

import re

BULLET = re.compile(r"^[ \t]*(?:--|[-*+•]|\d{1,3}[.)])[ \t]+")

# A texinfo manual's navigation line, as the HTML loader or a PDF print gives it.
_NAVIGATION = re.compile(
    r"^(?:(?:Next|Previous|Prev|Up)\s*:\s*[^\n]*?(?:,\s*|\s+|$)){2,}"
    r"(?:\[\s*(?:Contents|Index)\s*\]\s*)*$"
)

# reStructuredText explicit markup: a comment, directive, target or substitution
# definition starts with ".." and a space (an ellipsis "..." does not).
RST_MARKUP = re.compile(r"^[ \t]*\.\.(?:[ \t]|$)")

RST_OPTION = re.compile(r"^[ \t]+:[\w-]+:")

# Markdown images, links and link definitions; HTML tags.
_MD_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)|!\[[^\]]*\]\[[^\]]*\]")

_MD_LINK = re.compile(r"\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)|\[([^\]]+)\]\[[^\]]*\]")

_MD_LINK_DEFINITION = re.compile(r"^[ \t]*\[[^\]]+\]:[ \t]*\S+")

_MD_ALERT = re.compile(r"^[ \t]*>[ \t]*\[![A-Z]+\][ \t]*$")  # GitHub's "> [!NOTE]"

_HTML_TAG = re.compile(r"</?[A-Za-z][^<>]*>|<!--.*?-->")

_TAG_NAME = re.compile(r"</?[A-Za-z]")

HTML_START = re.compile(r"^[ \t]*<(?:[A-Za-z/]|!--)")


def strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def without_markup(text: str) -> str:
    """``text`` as a reader sees it: Markdown images dropped, links reduced to their
    text, HTML tags removed. For matching; a quote stays the document's own text."""
    text = _MD_IMAGE.sub(" ", text)
    text = _MD_LINK.sub(lambda m: m.group(1) or m.group(2) or "", text)
    return _HTML_TAG.sub(" ", text)


def has_words(text: str) -> bool:
    return any(c.isalnum() for c in text)


def states_something(line: str, kind: str) -> bool:
    """False for a line that is markup stating nothing (see the module docstring)."""
    if kind == "txt" and RST_MARKUP.match(line):
        return False
    if kind != "md":
        return True
    if _MD_LINK_DEFINITION.match(line) or _MD_ALERT.match(line):
        return False
    # Badges and images, and a table of contents (links into the page itself): no
    # words once images and in-page links are gone. A link's own text stays ("[MIT]
    # (LICENSE)" under "License" says the licence).
    if not (_MD_IMAGE.search(line) or _MD_LINK.search(line)):
        return True
    text = _MD_LINK.sub(_link_text, _MD_IMAGE.sub(" ", line))
    return has_words(BULLET.sub("", text, count=1))


def _link_text(link: re.Match[str]) -> str:
    """A Markdown link's text, or nothing for a link into the page (``(#usage)``)."""
    if "](#" in link.group(0):
        return " "
    return link.group(1) or link.group(2) or ""


def html_text_span(
    text: str, start: int, end: int, in_tag: bool
) -> tuple[tuple[int, int] | None, bool]:
    """The span of a Markdown HTML line's text between its tags (None: it has none),
    and whether the line ends inside a tag that goes on to the next line."""
    if in_tag:
        close = text.find(">", start, end)
        if close == -1:
            return None, True
        start = close + 1
    last = text.rfind("<", start, end)
    open_at_end = (
        last != -1 and text.find(">", last, end) == -1 and bool(_TAG_NAME.match(text, last))
    )
    if open_at_end:
        end = last
    runs: list[tuple[int, int]] = []
    pos = start
    for tag in _HTML_TAG.finditer(text, start, end):
        runs.append((pos, tag.start()))
        pos = tag.end()
    runs.append((pos, end))
    runs = [(s, e) for s, e in runs if has_words(text[s:e])]
    if not runs:
        return None, open_at_end
    return strip_span(text, runs[0][0], runs[-1][1]), open_at_end


def opens_tag(line: str) -> bool:
    """The line leaves an HTML tag open: its last "<" starts a tag not closed on it."""
    last = line.rfind("<")
    return last != -1 and line.rfind(">") < last and bool(_TAG_NAME.match(line, last))


def is_navigation(text: str) -> bool:
    return bool(_NAVIGATION.match(" ".join(text.split())))
