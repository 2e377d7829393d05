"""Reports of an eval run: a terminal table, JSON, JUnit XML, a self-contained HTML
page, a before/after comparison, and a RAGAS / DeepEval dataset export. Formatting
only: the figures come from ``evals.metrics``."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.selector_curve import curve_text

COLUMNS = (
    ("cases", "n", "{:d}"),
    ("correctness", "correct", "{:.2f}"),
    ("correctness_anywhere", "any pos", "{:.2f}"),
    ("mean_quoted_sentences", "quotes", "{:.2f}"),
    ("mean_quoted_chars", "chars", "{:.0f}"),
    ("faithfulness", "faithful", "{:.2f}"),
    ("judge_faithfulness", "judge", "{:.2f}"),
    ("citation_validity", "cites ok", "{:.2f}"),
    ("context_recall", "ctx recall", "{:.2f}"),
    ("refusal_precision", "refuse P", "{:.2f}"),
    ("refusal_recall", "refuse R", "{:.2f}"),
    ("hallucinations", "halluc.", "{:d}"),
    ("latency_p50_ms", "p50 ms", "{:.1f}"),
    ("latency_p95_ms", "p95 ms", "{:.1f}"),
)


# The terminal report lists this many failing cases per suite; the files list all.
MAX_LISTED_FAILURES = 25


def _cell(value: Any, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)


def table(run: dict[str, Any]) -> str:
    """Per-kind and overall figures as a fixed-width table."""
    header = ["kind"] + [label for _, label, _ in COLUMNS]
    rows = [
        [kind] + [_cell(stats.get(key), fmt) for key, _, fmt in COLUMNS]
        for kind, stats in run["by_kind"].items()
    ]
    rows.append(["ALL"] + [_cell(run["summary"].get(key), fmt) for key, _, fmt in COLUMNS])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def text_report(run: dict[str, Any]) -> str:
    out = [f"Suite {run['suite']} ({run['generator']}): {run['summary']['passed']}/"
           f"{run['summary']['cases']} cases passed"]  # fmt: skip
    split = run.get("split")
    if split:
        note = {"test": "held out: never tuned on", "dev": "tuned on"}.get(split, "")
        out.append(f"Split: {split}" + (f" ({note})" if note else ""))
    if run.get("documents"):
        out.append("Documents: " + ", ".join(run["documents"]))
    out.append(table(run))
    for name, figures in (run.get("by_document") or {}).items():
        right = round(figures["correctness"] * figures["cases"])
        out.append(f"  {name}: {right}/{figures['cases']} right")
    if run["claims"]:
        covered = sum(c["covered"] for c in run["claims"])
        answered = sum(c["answered"] for c in run["claims"])
        out.append(f"Claims: {covered}/{len(run['claims'])} covered, {answered} answered right")
        missed = [c["id"] for c in run["claims"] if c["covered"] and not c["answered"]]
        if missed:
            out.append("  answered wrong: " + ", ".join(missed))
    if run.get("selector"):
        out.append(curve_text(run["selector"]))
    failing = [c for c in run["cases"] if not c["passed"]]
    for case in failing[:MAX_LISTED_FAILURES]:
        out.append(f"FAIL {case['id']} [{case['kind']}] {case['question']}")
        out.append(f"     -> {case['answer']['answer'][:160]}")
        for reason in case["reasons"]:
            out.append(f"     - {reason}")
    if len(failing) > MAX_LISTED_FAILURES:
        out.append(
            f"... and {len(failing) - MAX_LISTED_FAILURES} more failing cases "
            "(all of them are in the JSON / HTML report: --out DIR)"
        )
    gate = "PASSED" if run["passed"] else "FAILED: " + "; ".join(run["gate_failures"])
    out.append(f"Gate {gate}")
    return "\n".join(out)


def junit_xml(runs: Sequence[dict[str, Any]]) -> str:
    suites = ET.Element("testsuites")
    for run in runs:
        failures = sum(1 for c in run["cases"] if not c["passed"])
        suite = ET.SubElement(
            suites, "testsuite", name=f"rag-eval.{run['suite']}",
            tests=str(len(run["cases"]) + 1), failures=str(failures + (not run["passed"])),
        )  # fmt: skip
        for case in run["cases"]:
            element = ET.SubElement(
                suite, "testcase", classname=f"{run['suite']}.{case['kind']}", name=case["id"],
                time=f"{case['latency_ms'] / 1000:.4f}",
            )  # fmt: skip
            if not case["passed"]:
                failure = ET.SubElement(element, "failure", message="; ".join(case["reasons"]))
                failure.text = f"Q: {case['question']}\nA: {case['answer']['answer']}"
        gate = ET.SubElement(suite, "testcase", classname=f"{run['suite']}", name="gate")
        if not run["passed"]:
            ET.SubElement(gate, "failure", message="; ".join(run["gate_failures"]))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def _bar_chart(by_kind: dict[str, dict[str, Any]], key: str, title: str) -> str:
    """A small inline SVG bar chart of one metric per kind (no JavaScript, no CDN)."""
    kinds = list(by_kind)
    width, row = 460, 22
    height = row * len(kinds) + 30
    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{title}">',
             f'<text x="0" y="14" font-weight="bold">{html.escape(title)}</text>']  # fmt: skip
    for i, kind in enumerate(kinds):
        value = by_kind[kind].get(key)
        y = 24 + i * row
        length = 0 if value is None else int(260 * max(0.0, min(1.0, value)))
        colour = "#2f9e44" if value is not None and value >= 0.9 else "#e8590c"
        label = "-" if value is None else f"{value:.2f}"
        parts.append(f'<text x="0" y="{y + 13}">{html.escape(kind)}</text>')
        parts.append(f'<rect x="120" y="{y}" width="{length}" height="16" fill="{colour}"/>')
        parts.append(f'<text x="{126 + length}" y="{y + 13}">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_report(runs: Sequence[dict[str, Any]]) -> str:
    """One self-contained page: per-kind charts and every failing case in full."""
    body = []
    for run in runs:
        status = "passed" if run["passed"] else "FAILED: " + "; ".join(run["gate_failures"])
        body.append(f"<h2>Suite {html.escape(run['suite'])} · {html.escape(run['generator'])}"
                    f" · gate {html.escape(status)}</h2>")  # fmt: skip
        body.append(f"<pre>{html.escape(table(run))}</pre>")
        if run.get("selector"):
            body.append(f"<pre>{html.escape(curve_text(run['selector']))}</pre>")
        body.append('<div class="charts">')
        for key, title in (("correctness", "Correctness"), ("faithfulness", "Faithfulness"),
                           ("context_recall", "Context recall")):  # fmt: skip
            body.append(_bar_chart(run["by_kind"], key, title))
        body.append("</div>")
        if run["claims"]:
            body.append("<h3>Claims</h3><table><tr><th>claim</th><th>covered</th>"
                        "<th>answered right</th><th>cases</th></tr>")  # fmt: skip
            for claim in run["claims"]:
                body.append(
                    f"<tr><td>{claim['id']}: {html.escape(claim['text'])}</td>"
                    f"<td>{'yes' if claim['covered'] else 'NO'}</td>"
                    f"<td>{'yes' if claim['answered'] else 'NO'}</td>"
                    f"<td>{html.escape(', '.join(claim['cases']))}</td></tr>"
                )
            body.append("</table>")
        failing = [c for c in run["cases"] if not c["passed"]]
        body.append(f"<h3>Failing cases ({len(failing)})</h3>")
        for case in failing:
            answer = case["answer"]
            cites = "".join(
                f"<li>[{c['id']}] {html.escape(c['source'])} {c['start']}–{c['end']}: "
                f"<q>{html.escape(c['quote'])}</q></li>"
                for c in answer["citations"]
            )
            checks = "".join(
                f"<li>{'ok' if v['ok'] else 'UNSUPPORTED'}: {html.escape(v['text'])}"
                f"{' — ' + html.escape('; '.join(v['reasons'])) if v['reasons'] else ''}</li>"
                for v in case["verifier"]
            )
            reasons = "".join(f"<li>{html.escape(r)}</li>" for r in case["reasons"])
            body.append(
                f'<div class="case"><b>{html.escape(case["id"])}</b> [{case["kind"]}] '
                f"{html.escape(case['question'])}<br><i>Answer:</i> "
                f"{html.escape(answer['answer'])}<ul>{reasons}</ul>"
                f"<i>Citations</i><ul>{cites or '<li>none</li>'}</ul>"
                f"<i>Verifier</i><ul>{checks or '<li>nothing to verify</li>'}</ul></div>"
            )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}"
        "pre{background:#f4f4f4;padding:1em;overflow-x:auto}.charts{display:flex;gap:2em;"
        "flex-wrap:wrap}.case{border-left:4px solid #e8590c;padding:.5em 1em;margin:1em 0;"
        "background:#fff8f3}table{border-collapse:collapse}td,th{border:1px solid #ddd;"
        "padding:2px 6px;text-align:left}"
    )
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>rag eval report</title>'
        f"<style>{style}</style></head><body><h1>rag eval report</h1>{''.join(body)}"
        "</body></html>"
    )


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Cases that regressed or were fixed between two JSON reports, and metric deltas."""

    def cases(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
        runs = report.get("runs", [report])
        return {f"{r['suite']}/{c['id']}": c for r in runs for c in r["cases"]}

    old, new = cases(before), cases(after)
    regressions = sorted(
        k for k in old.keys() & new.keys() if old[k]["passed"] and not new[k]["passed"]
    )
    fixes = sorted(k for k in old.keys() & new.keys() if not old[k]["passed"] and new[k]["passed"])
    deltas: dict[str, float] = {}
    old_runs = {r["suite"]: r for r in (before.get("runs", [before]))}
    for run in after.get("runs", [after]):
        previous = old_runs.get(run["suite"])
        if previous is None:
            continue
        for key in ("correctness", "faithfulness", "citation_validity", "refusal_recall",
                    "refusal_precision", "context_recall", "hallucinations"):  # fmt: skip
            a, b = previous["summary"].get(key), run["summary"].get(key)
            if a is not None and b is not None and a != b:
                deltas[f"{run['suite']}.{key}"] = round(b - a, 4)
    return {
        "regressions": regressions,
        "fixes": fixes,
        "added": sorted(new.keys() - old.keys()),
        "removed": sorted(old.keys() - new.keys()),
        "metric_deltas": deltas,
    }


def export_dataset(runs: Sequence[dict[str, Any]], path: Path) -> int:
    """Write a RAGAS / DeepEval style dataset (JSONL): question, contexts, answer,
    ground truth. Users with an LLM judge can score it there; nothing here needs them."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for run in runs:
            for case in run["cases"]:
                answer = case["answer"]
                expected = case.get("expected") or []
                truth = case.get("reference") or "; ".join(" / ".join(g) for g in expected)
                row = {
                    "question": case["question"],
                    "contexts": [e["quote"] for e in answer["evidence"]],
                    "answer": answer["answer"],
                    "ground_truth": truth or ("(should refuse)" if case["should_refuse"] else ""),
                    # DeepEval's LLMTestCase names for the same fields:
                    "input": case["question"],
                    "actual_output": answer["answer"],
                    "retrieval_context": [e["quote"] for e in answer["evidence"]],
                    "expected_output": truth,
                    "metadata": {"suite": run["suite"], "id": case["id"], "kind": case["kind"]},
                }
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                count += 1
    return count
