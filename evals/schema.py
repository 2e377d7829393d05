"""Eval suites as data: the schema of a suite file and its loader.

A suite is a YAML (or JSON) file::

    name: trainium
    corpus: ../../corpus                 # a path or a list, relative to the suite file
    claims: ../claims/trainium.yaml      # optional: atomic claims for coverage
    thresholds: {faithfulness: 1.0, correctness: 0.9, ...}   # the gate
    cases:
      - id: c09-bought-2015              # unique
        kind: answerable                 # see KINDS
        question: When did Amazon buy Annapurna Labs?
        history: []                      # earlier user questions (follow-ups)
        claim: C9                        # optional: the claim it covers
        expected: [[2015]]               # facts: every group must be stated, any alternative
        expected_quote: [In 2015, it bought Annapurna Labs]   # should be retrieved
        forbidden: []                    # must never appear in the answer
        expect_refusal: null             # default from kind (see REFUSING_KINDS)
        reference: null                  # optional reference answer (exports)
        document: null                   # optional: the corpus file the case is about
        tags: []                         # optional: question form (who, table, yes_no...)
        spans: [[812, 816]]              # optional: each expected group's answer span, as
                                         # character offsets in the document's loaded text

A suite may also ``include`` case files (relative paths): each holds a list of
cases, or a mapping with a ``cases`` list. ``split`` (e.g. dev / test) is shown in
reports so that figures tuned on are never mistaken for held-out ones.

A JSONL file of cases (one object per line) is a suite with no corpus of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rag.errors import InputError

KINDS = (
    "answerable", "paraphrase", "unanswerable", "false_premise", "followup", "injection",
    "out_of_scope",
)  # fmt: skip
REFUSING_KINDS = ("unanswerable", "out_of_scope")
ANSWERING_KINDS = ("answerable", "paraphrase", "false_premise", "followup")
THRESHOLD_KEYS = (
    "faithfulness", "citation_validity", "correctness", "refusal_recall", "refusal_precision",
    "context_recall", "max_hallucinations",
)  # fmt: skip


class SuiteError(InputError):
    """A suite file that does not follow the schema; the message names the case."""


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    question: str
    history: tuple[str, ...] = ()
    claim: str | None = None
    expected: tuple[tuple[str, ...], ...] = ()
    expected_quote: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    expect_refusal: bool | None = None
    reference: str | None = None
    document: str | None = None
    tags: tuple[str, ...] = ()
    # One (start, end) per expected group: where the loaded text states it. Training
    # labels carry them so that any candidate holding a span is a positive, whatever the
    # splitter does; the hand-written suites leave them out.
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def should_refuse(self) -> bool | None:
        """True/False when the case says (or its kind implies); None: either is fine."""
        if self.expect_refusal is not None:
            return self.expect_refusal
        if self.kind in REFUSING_KINDS:
            return True
        if self.kind in ANSWERING_KINDS:
            return False
        return None


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    quote: str


@dataclass
class Suite:
    name: str
    path: Path
    cases: list[Case]
    corpus: list[Path] = field(default_factory=list)
    claims: list[Claim] = field(default_factory=list)
    thresholds: dict[str, float] = field(default_factory=dict)
    description: str = ""
    split: str = ""


def _case(raw: dict[str, Any], where: str) -> Case:
    try:
        kind = raw["kind"]
        if kind not in KINDS:
            raise SuiteError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        expected = tuple(
            tuple(str(a) for a in (group if isinstance(group, list) else [group]))
            for group in raw.get("expected") or []
        )
        return Case(
            id=str(raw["id"]),
            kind=kind,
            question=str(raw["question"]),
            history=tuple(str(h) for h in raw.get("history") or []),
            claim=raw.get("claim"),
            expected=expected,
            expected_quote=tuple(str(q) for q in raw.get("expected_quote") or []),
            forbidden=tuple(str(f) for f in raw.get("forbidden") or []),
            expect_refusal=raw.get("expect_refusal"),
            reference=raw.get("reference"),
            document=raw.get("document"),
            tags=tuple(str(t) for t in raw.get("tags") or []),
            spans=_spans(raw.get("spans"), where),
        )
    except KeyError as exc:
        raise SuiteError(f"{where}: missing field {exc.args[0]!r}") from None


def _spans(raw: Any, where: str) -> tuple[tuple[int, int], ...]:
    if not raw:
        return ()
    try:
        spans = tuple((int(s), int(e)) for s, e in raw)
    except (TypeError, ValueError):
        raise SuiteError(f"{where}: spans must be a list of [start, end] pairs") from None
    if any(not 0 <= s < e for s, e in spans):
        raise SuiteError(f"{where}: a span needs 0 <= start < end")
    return spans


def load_suite(path: Path) -> Suite:
    """Load and validate a suite file (YAML/JSON suite, or JSONL of cases)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SuiteError(f"cannot read suite {path}: {exc.strerror or exc}") from exc
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        data: dict[str, Any] = {"name": path.stem, "cases": rows}
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SuiteError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(
        data.get("cases", [] if data.get("include") else None), list
    ):
        raise SuiteError(f"{path}: a suite needs a 'cases' list (or 'include' of case files)")
    data.setdefault("cases", [])
    cases = [_case(raw, f"{path.name} case {i + 1}") for i, raw in enumerate(data["cases"])]
    for included in data.get("include") or []:
        cases += load_case_file(path.parent / included)
    ids = [c.id for c in cases]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SuiteError(f"{path}: duplicate case ids {', '.join(duplicates)}")
    corpus = data.get("corpus") or []
    corpus_paths = [
        (path.parent / p).resolve() for p in ([corpus] if isinstance(corpus, str) else corpus)
    ]
    claims: list[Claim] = []
    if data.get("claims"):
        claims_data = yaml.safe_load((path.parent / data["claims"]).read_text(encoding="utf-8"))
        claims = [
            Claim(str(c["id"]), str(c["text"]), str(c["quote"])) for c in claims_data["claims"]
        ]
    thresholds = {k: float(v) for k, v in (data.get("thresholds") or {}).items()}
    unknown = set(thresholds) - set(THRESHOLD_KEYS)
    if unknown:
        raise SuiteError(f"{path}: unknown thresholds {', '.join(sorted(unknown))}")
    return Suite(
        name=str(data.get("name") or path.stem),
        path=path,
        cases=cases,
        corpus=corpus_paths,
        claims=claims,
        thresholds=thresholds,
        description=str(data.get("description") or ""),
        split=str(data.get("split") or ""),
    )


def load_case_file(path: Path) -> list[Case]:
    """The cases of an included file: a YAML list of cases, or ``{cases: [...]}``."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"cannot read case file {path}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML ({exc})") from exc
    rows = data.get("cases") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        raise SuiteError(f"{path}: a case file holds a list of cases")
    return [_case(raw, f"{Path(path).name} case {i + 1}") for i, raw in enumerate(rows)]


SUITES_DIR = Path(__file__).resolve().parent / "suites"
BENCHMARK_DIR = Path(__file__).resolve().parent / "benchmark"
BENCHMARK_SUITES = (BENCHMARK_DIR / "dev.yaml", BENCHMARK_DIR / "test.yaml")
DEFAULT_SUITES = (SUITES_DIR / "trainium.yaml", SUITES_DIR / "injection.yaml", *BENCHMARK_SUITES)
