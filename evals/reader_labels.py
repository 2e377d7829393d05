"""Labels for the reader: the tools a question writer uses on one corpus document.

The reader's training corpus (``evals/reader/``) holds real documents and, one file per
document, questions written after reading the document *as the loader extracts it*. A
writer gives each answering case its verbatim passage (``expected_quote``) and the facts in
it (``expected``); this module finds them in the loaded text and records each fact's
character offsets (``spans``), so that training can call any candidate that holds a span a
positive, whatever the splitter does. It checks, it does not write questions::

    python -m evals.reader_labels text DOC.md -o /tmp/DOC.txt   # the text as loaded
    python -m evals.reader_labels anchor evals/reader/cases/DOC.yaml
    python -m evals.reader_labels suite      # evals/reader/reader.yaml: every case file
    python -m evals.reader_labels stats      # questions per document, kind and form

``anchor`` rewrites the case file with ``spans`` added and exits 1 while any case cannot
be anchored (its quote is not in the text, or a fact is not inside its quote).
"""

from __future__ import annotations

import argparse
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from evals.schema import ANSWERING_KINDS, load_case_file
from rag.documents.loading import load_file

READER_DIR = Path(__file__).resolve().parent / "reader"
DOCS_DIR = READER_DIR / "docs"
CASES_DIR = READER_DIR / "cases"


@cache
def loaded_text(name: str) -> str:
    """The document's text exactly as ingestion sees it (offsets point into this)."""
    path = DOCS_DIR / name
    return load_file(path, name).text


def flexible(phrase: str) -> re.Pattern[str]:
    """A case-insensitive pattern for ``phrase`` that lets any run of white space (a line
    wrap, a PDF line end) stand for any other: quotes are written as one line."""
    words = phrase.split()
    if not words:
        raise ValueError("empty phrase")
    return re.compile(r"\s+".join(re.escape(w) for w in words), re.IGNORECASE)


def find(phrase: str, text: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    match = flexible(phrase).search(text, start, len(text) if end is None else end)
    return (match.start(), match.end()) if match else None


def anchor_case(raw: dict[str, Any], text: str) -> tuple[list[list[int]] | None, list[str]]:
    """The spans of one case's expected groups, or the reasons it cannot be anchored.

    Each group is looked for inside the case's quotes (the first quote that holds one of
    its alternatives wins), so a fact that also occurs elsewhere is anchored where the
    writer read it."""
    quotes: list[tuple[int, int]] = []
    problems: list[str] = []
    for quote in raw.get("expected_quote") or []:
        where = find(str(quote), text) if str(quote).split() else None
        if where is None:
            problems.append(f"quote not in the loaded text: {quote!r}")
        else:
            quotes.append(where)
    if not raw.get("expected_quote"):
        problems.append("an answering case needs expected_quote (the passage that states it)")
    spans: list[list[int]] = []
    for group in raw.get("expected") or []:
        alternatives = group if isinstance(group, list) else [group]
        found = None
        for qs, qe in quotes:
            for alt in alternatives:
                if str(alt).split() and (found := find(str(alt), text, qs, qe)):
                    break
            if found:
                break
        if found is None:
            if quotes:
                problems.append(f"fact not inside its quote: {' / '.join(map(str, alternatives))}")
            continue
        spans.append([found[0], found[1]])
    if not raw.get("expected"):
        problems.append("an answering case needs expected facts")
    return (None if problems else spans), problems


class _CaseDumper(yaml.SafeDumper):
    """Cases as the hand-written suites look: one key a line, short lists inline."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    inline = all(not isinstance(x, dict) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_CaseDumper.add_representer(list, _represent_list)


def dump_cases(rows: list[dict[str, Any]]) -> str:
    return yaml.dump(rows, Dumper=_CaseDumper, sort_keys=False, allow_unicode=True, width=100)


def anchor_file(path: Path) -> int:
    """Add ``spans`` to every answering case of one case file; the number of bad cases."""
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(rows, dict):
        rows = rows.get("cases")
    if not isinstance(rows, list):
        print(f"{path}: a case file holds a list of cases", file=sys.stderr)
        return 1
    bad = 0
    for i, raw in enumerate(rows):
        name = raw.get("document")
        if not name or not (DOCS_DIR / str(name)).is_file():
            print(f"{path.name} {raw.get('id', i + 1)}: document {name!r} is not in the corpus")
            bad += 1
            continue
        for key in ("question", "reference"):
            if key in raw and not isinstance(raw[key], str):
                # YAML read a bare 30. as a number or a #... as a comment: quote it.
                print(f"{path.name} {raw.get('id', i + 1)}: {key} is not text: {raw[key]!r}")
                bad += 1
        if raw.get("kind") not in ANSWERING_KINDS:
            raw.pop("spans", None)
            continue
        spans, problems = anchor_case(raw, loaded_text(str(name)))
        for problem in problems:
            print(f"{path.name} {raw.get('id', i + 1)}: {problem}")
        if spans is None:
            bad += 1
        else:
            raw["spans"] = spans
    path.write_text(dump_cases(rows), encoding="utf-8")
    load_case_file(path)  # the schema must still accept what was written
    print(f"{path.name}: {len(rows)} cases, {bad} not anchored")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.reader_labels", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    text = sub.add_parser("text", help="print a corpus document's text as the loader reads it")
    text.add_argument("document")
    text.add_argument("-o", "--out", type=Path)
    anchor = sub.add_parser("anchor", help="add answer spans to case files; exit 1 on problems")
    anchor.add_argument("files", nargs="+", type=Path)
    sub.add_parser("suite", help="write evals/reader/reader.yaml, a suite of every case file")
    sub.add_parser("stats", help="questions per document, per kind and per form (Markdown)")
    args = parser.parse_args(argv)
    if args.command == "text":
        body = loaded_text(args.document)
        if args.out:
            args.out.write_text(body, encoding="utf-8")
            print(f"{args.out}: {len(body)} characters, {len(body.split())} words")
        else:
            sys.stdout.write(body)
        return 0
    if args.command == "anchor":
        return 1 if sum(anchor_file(p) for p in args.files) else 0
    if args.command == "suite":
        write_suite()
        return 0
    print(stats())
    return 0


SUITE_FILE = READER_DIR / "reader.yaml"


def write_suite() -> None:
    """The reader corpus as one suite (``rag eval``, ``evals.candidates``): its documents
    are indexed together, as a user's would be."""
    files = sorted(CASES_DIR.glob("*.yaml"))
    suite = {
        "name": "reader-corpus",
        "split": "train",
        "description": "The reader's training corpus: teacher-written questions on "
        f"{len(files)} documents (evals/reader/README.md). Trained on; never a test split.",
        "corpus": ["docs"],
        "thresholds": {"faithfulness": 1.0, "citation_validity": 1.0, "max_hallucinations": 0},
        "include": [f"cases/{p.name}" for p in files],
    }
    header = "# Generated by: python -m evals.reader_labels suite\n"
    SUITE_FILE.write_text(header + yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    print(f"{SUITE_FILE}: {len(files)} case files")


def stats() -> str:
    """Markdown tables: cases per kind overall, per form (tag), and per document."""
    from collections import Counter

    kinds: Counter[str] = Counter()
    tags: Counter[str] = Counter()
    rows = []
    for path in sorted(CASES_DIR.glob("*.yaml")):
        cases = load_case_file(path)
        mine = Counter(c.kind for c in cases)
        kinds.update(mine)
        tags.update(t for c in cases for t in c.tags)
        name = cases[0].document if cases else path.stem
        rows.append(f"| {name} | {len(cases)} | " + " | ".join(
            str(mine[k]) for k in ("answerable", "unanswerable", "false_premise", "followup")
        ) + " |")  # fmt: skip
    total = sum(kinds.values())
    out = [
        f"{total} cases on {len(rows)} documents",
        "",
        "| kind | cases | share |",
        "|---|---|---|",
    ]
    out += [f"| {k} | {n} | {n / total:.2f} |" for k, n in kinds.most_common()]
    out += ["", "| form (tag) | cases |", "|---|---|"]
    out += [f"| {t} | {n} |" for t, n in tags.most_common()]
    out += ["", "| document | cases | answerable | unanswerable | false premise | follow-up |",
            "|---|---|---|---|---|---|", *rows]  # fmt: skip
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
