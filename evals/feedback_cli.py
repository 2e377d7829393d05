"""``rag feedback``: list, show and purge users' ratings, and export them as an eval suite.

Thin: parse, call ``rag.feedback``'s store and ``evals.feedback_export`` /
``evals.feedback_suite``, render. Plugged into the ``rag`` CLI as a ``rag.commands``
entry point (rag/ never imports evals/). Dates are ISO dates or times, in UTC unless
they say otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.cli import echo_err, echo_json, json_option, settings_from
from rag.errors import InputError
from rag.feedback.record import FeedbackRecord
from rag.feedback.store import FeedbackStore, open_feedback_store

if TYPE_CHECKING:
    from evals.feedback_export import ExportReport
    from evals.feedback_suite import Written

NO_RATINGS_HINT = "Users rate answers in the web chat (rag ui) or with POST /api/feedback."


class IsoDate(click.ParamType):
    """An ISO date or time, as the UTC text the store compares ``created_at`` with."""

    name = "DATE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        try:
            if "T" not in text and " " not in text:
                return date.fromisoformat(text).isoformat()
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(f"{text!r} is not an ISO date (2025-01-31) or time "
                      "(2025-01-31T14:00:00+00:00).", param, ctx)  # fmt: skip
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="seconds")


@contextmanager
def _store(ctx: click.Context) -> Iterator[FeedbackStore]:
    store = open_feedback_store(settings_from(ctx))
    try:
        yield store
    finally:
        store.close()


@click.group("feedback")
def feedback() -> None:
    """Users' ratings of answers: list, show, purge, and export them as an eval suite.

    Ratings stay on this machine (the data directory's feedback.sqlite3, or the
    rag_feedback table of the manifest database); they are never sent anywhere.
    """


def _note(record: FeedbackRecord) -> str:
    notes = []
    if record.refused:
        notes.append("refusal")
    if record.should_refuse is True:
        notes.append("docs don't say")
    if record.picked:
        notes.append("picked")
    if record.correction:
        notes.append("corrected")
    return ", ".join(notes)


@feedback.command("list")
@click.option("--since", type=IsoDate(), default=None, help="Only ratings given from DATE on.")
@click.option("--before", type=IsoDate(), default=None, help="Only ratings given before DATE.")
@json_option
@click.pass_context
def list_command(ctx: click.Context, since: str | None, before: str | None, as_json: bool) -> None:
    """List the stored ratings, oldest first."""
    with _store(ctx) as store:
        records = store.records(since=since, before=before)
        where = store.where
    if as_json:
        echo_json([r.to_json() for r in records])
        return
    if not records:
        click.echo(f"No ratings in {where}. {NO_RATINGS_HINT}")
        return
    click.echo(f"{'ID':<12}  {'GIVEN (UTC)':<16}  {'RATING':<6}  {'NOTE':<26}  QUESTION")
    for r in records:
        question = r.question if len(r.question) <= 60 else r.question[:59] + "…"
        click.echo(f"{r.id:<12}  {r.created_at[:16].replace('T', ' '):<16}  {r.rating:<6}  "
                   f"{_note(r):<26}  {question}")  # fmt: skip


def _find(store: FeedbackStore, record_id: str) -> FeedbackRecord:
    record = store.get(record_id)
    if record is not None:
        return record
    # A unique prefix will do, as with git: ids are long to type.
    found = (
        [r for r in store.records() if r.id.startswith(record_id)] if len(record_id) >= 4 else []
    )
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise InputError(f"{record_id!r} starts {len(found)} rating ids; give more of it.")
    raise InputError(f"No rating with id {record_id!r} in {store.where}. "
                     "List them with: rag feedback list")  # fmt: skip


@feedback.command("show")
@click.argument("record_id", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, record_id: str, as_json: bool) -> None:
    """Show one rating: question, answer as given, what the user said."""
    with _store(ctx) as store:
        record = _find(store, record_id)
    if as_json:
        echo_json(record.to_json())
        return
    rows = [("id", record.id), ("given", record.created_at), ("rating", record.rating),
            ("question", record.question)]  # fmt: skip
    rows += [("earlier", h) for h in record.history]
    answer = str(record.answer.get("answer", ""))
    rows.append(("answer", f"(refused) {answer}" if record.refused else answer))
    for c in record.citations:
        rows.append((f"[{c.get('id')}]", f"{c.get('source')} {c.get('start')}-{c.get('end')}: "
                     f"{' '.join(str(c.get('quote', '')).split())}"))  # fmt: skip
    if record.should_refuse is not None:
        said = "yes" if record.should_refuse else "no, they do"
        rows.append(("docs don't say this", said))
    if record.correction:
        rows.append(("correction", record.correction))
    if record.picked:
        p = record.picked
        rows.append(("picked", f"{p.source} {p.start}-{p.end}: {' '.join(p.quote.split())}"))
    rows += [("document", f"{s} (sha256 {h[:12]})") for s, h in sorted(record.documents.items())]
    if record.key_fingerprint:
        rows.append(("api key", record.key_fingerprint))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"{key:<{width}}  {value}")


@feedback.command("purge")
@click.option("--before", type=IsoDate(), default=None, help="Only ratings given before DATE.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def purge(ctx: click.Context, before: str | None, yes: bool, as_json: bool) -> None:
    """Remove stored ratings: all of them, or those given before DATE.

    Export first (rag feedback export) if they should become eval cases.
    """
    with _store(ctx) as store:
        count = len(store.records(before=before))
        which = f"given before {before}" if before else "all"
        if count and not yes:
            click.confirm(f"Remove {count} rating(s) ({which}) from {store.where}?",
                          abort=True, err=True)  # fmt: skip
        removed = store.purge(before=before) if count else 0
    if as_json:
        echo_json({"removed": removed, "before": before})
    else:
        click.echo(f"Removed {removed} rating(s) ({which})." if removed else "Nothing to remove.")


@feedback.command("export")
@click.option(
    "-o", "--out", "out_path", required=True, type=click.Path(path_type=Path),
    help="The suite file to write (YAML); its documents go in OUT's stem + _docs/ beside it.",
)  # fmt: skip
@click.option("--since", type=IsoDate(), default=None, help="Only ratings given from DATE on.")
@click.option(
    "--include-up", is_flag=True,
    help="Also keep thumbs-up answers as regression cases (their first quote must stay first).",
)  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite OUT and its documents folder.")
@json_option
@click.pass_context
def export(ctx: click.Context, out_path: Path, since: str | None, include_up: bool, force: bool,
           as_json: bool) -> None:  # fmt: skip
    """Export ratings as an eval suite to review, then run: rag eval OUT.

    "The documents don't say this" and thumbs-up refusals become unanswerable cases;
    a picked sentence, or a correction found in the documents, an answerable case. A
    bare thumbs-down is listed for review; conflicting ratings are reported.
    """
    from evals.feedback_export import build_export
    from evals.feedback_suite import check_target, write_export
    from rag.index.store import Index

    check_target(out_path, force)
    settings = settings_from(ctx)
    with _store(ctx) as store:
        records = store.records(since=since)
        where = store.where
    if not records:
        when = f" since {since}" if since else ""
        raise InputError(f"No ratings{when} in {where}: nothing to export. {NO_RATINGS_HINT}")
    index = Index.open(settings)
    try:
        documents = {r.source: d for r in index.documents() if (d := index.document(r.source))}
    finally:
        index.close()
    report = build_export(records, documents, include_up=include_up)
    if not report.cases:
        _print_report(report, as_json, None)
        raise InputError(f"None of the {len(records)} rating(s) became a case (see above), so "
                         "no suite was written.")  # fmt: skip
    today = datetime.now(UTC).date().isoformat()
    written = write_export(report, documents, out_path, force, today, since)
    _print_report(report, as_json, written)


def _print_report(report: ExportReport, as_json: bool, written: Written | None) -> None:
    if as_json:
        echo_json({**report.to_json(), **(written.to_json() if written else {})})
        return
    out = click.echo if written else echo_err
    if written:
        kinds: dict[str, int] = {}
        for case in report.cases:
            kinds[case.kind] = kinds.get(case.kind, 0) + 1
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        out(f"Wrote {written.suite}: {counts} case(s) from {report.ratings} rating(s); "
            f"{len(written.files)} document(s) in {written.folder}/.")  # fmt: skip
    for title, items in (("Left out", report.skipped), ("For review", report.review)):
        if items:
            out(f"{title} ({len(items)}):")
        for item in items:
            out(f"  {', '.join(item.record_ids)}: {item.question!r}: {item.reason}")
    if report.conflicts:
        out(f"Conflicts, not exported ({len(report.conflicts)}):")
    for conflict in report.conflicts:
        out(f"  {', '.join(conflict.record_ids)}: {conflict.question!r}: {conflict.reason}")
    if report.changed:
        out(f"Flagged: documents changed since the rating ({len(report.changed)}):")
    for changed in report.changed:
        state = "no longer indexed" if changed.now is None else "changed"
        out(f"  {changed.case_id}: {changed.source} {state}")
    if written:
        out(f"Review it, then run it: rag eval {written.suite}")
