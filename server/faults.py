"""``rag bench faults``: the faults a replicated deployment must survive, on loopback.

Starts a private PostgreSQL (the shared manifest), a Chroma server and ``rag serve``
replicas with empty data directories, then plays each fault under a hard time limit
and reports what every request returned and how long it took:

- ``chroma``: the Chroma server SIGKILLed mid-session, then started again;
- ``postgres``: PostgreSQL stopped (every session cut), then started again;
- ``serve``: a replica SIGKILLed during an upload's ingest, then restarted;
- ``llm-hang`` / ``llm-drop``: an OpenAI-compatible server (a fake one here) that never
  answers, or closes the connection;
- with ``--load``: ``rag bench serve`` against one replica, then two.

A fault passes when no request hangs, the failures are clear 503s (or, for the LLM, a
bounded error or the extractive answer), and the service recovers by itself. Not a
test (``tests/test_replicas.py`` runs the first two); the deployment they are played on
(the servers, the fake LLM, the replicas) comes from ``server.lab``. Run it as
``rag bench faults`` or ``python -m server.faults``.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import click

from rag.settings import Settings
from server.lab import HUNG_S, LLM_TIMEOUT_S, Lab, Replica, lab, status

QUESTION = "Who makes the Trainium chips?"
# An upload's ingest is work, not a hang: it gets this long (the first one in a process
# loads torch too).
UPLOAD_S = 180.0


def ask(replica: Replica, **body: Any) -> tuple[int, float, str]:
    return status(replica.url, "POST", "/api/ask", json={"question": QUESTION, **body})


def until_ok(replica: Replica, limit: float = 30) -> float | None:
    """Seconds until the replica answers again (None: not within ``limit``)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if ask(replica)[0] == 200:
            return round(time.monotonic() - started, 3)
        time.sleep(0.1)
    return None


def _outage(down: list[tuple[int, float, str]], recovered: float | None) -> dict[str, Any]:
    return {
        "during": [{"status": s, "seconds": t, "message": m[:160]} for s, t, m in down],
        "slowest_s": max(t for _, t, _ in down),
        "recovered_after_s": recovered,
        "ok": all(s == 503 for s, _, _ in down)
        and max(t for _, t, _ in down) < HUNG_S
        and recovered is not None,
    }


def fault_chroma(lab: Lab, replica: Replica) -> dict[str, Any]:
    """The Chroma server SIGKILLed mid-session: fast 503s, then recovery on its own."""
    assert ask(replica)[0] == 200
    lab.chroma.kill()
    down = [ask(replica), ask(replica), status(replica.url, "GET", "/readyz")]
    lab.chroma.start()
    return _outage(down, until_ok(replica))


def fault_postgres(lab: Lab, replica: Replica) -> dict[str, Any]:
    """PostgreSQL stopped (sessions cut) and started again: fast 503s, then recovery."""
    assert ask(replica)[0] == 200
    lab.postgres.stop("fast")
    time.sleep(lab.settings.manifest_poll_s + 0.1)  # past the replica's next look
    note = ("fault.md", b"# Fault\n\nWritten while the manifest was away.\n", "text/markdown")
    down = [ask(replica), status(replica.url, "POST", "/api/documents", files={"files": note}),
            status(replica.url, "GET", "/readyz")]  # fmt: skip
    lab.postgres.start()
    return _outage(down, until_ok(replica))


def big_document(sentences: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    words = (
        "amazon chip trainium cloud model data power cost network memory speed cluster "
        "training compiler kernel tensor latency rack cooling silicon wafer"
    ).split()
    body = " ".join(
        " ".join(rng.choice(words) for _ in range(9)).capitalize() + "." for _ in range(sentences)
    )
    return f"# A long upload\n\n{body}\n"


def consistency(settings: Settings) -> dict[str, Any]:
    """Every live chunk is in Chroma once, with its text; what else Chroma holds."""
    from rag.index.store import Index

    index = Index.open(settings)
    try:
        live, stored = index.live_chunk_ids(), index.stored_ids()
        wrong_text = 0
        for record in index.documents():
            doc = index.document(record.source)
            ids = sorted(index.live_chunk_ids(record.source))
            got = index.collection.get(ids=ids, include=["documents", "metadatas"])
            for text, meta in zip(got["documents"], got["metadatas"], strict=True):
                wrong_text += doc is None or text != doc.text[meta["start"] : meta["end"]]
        return {
            "live": len(live),
            "live_without_vector": len(live - stored),
            "leftover_vectors": len(stored - live),
            "duplicates": index.collection.count() - len(stored),
            "wrong_text": wrong_text,
        }
    finally:
        index.close()


def fault_serve(lab: Lab, replica: Replica) -> dict[str, Any]:
    """A replica SIGKILLed while it ingests an upload; restarted, the index is whole."""
    from rag.index.store import Index

    index = Index.open(lab.settings)
    try:
        before = index.collection.count()
        # Long enough that the kill lands inside its ingest, short enough for 2 cores.
        upload = ("long.md", big_document(500).encode(), "text/markdown")
        worker = threading.Thread(
            target=status, args=(replica.url, "POST", "/api/documents"),
            kwargs={"files": {"files": upload}, "timeout": UPLOAD_S}, daemon=True,
        )  # fmt: skip
        worker.start()
        deadline = time.monotonic() + 120
        while index.collection.count() == before:  # vectors are going in: mid-ingest
            if time.monotonic() > deadline:
                raise TimeoutError("the upload's ingest never started")
            time.sleep(0.01)
    finally:
        index.close()
    replica.kill()
    after_kill = consistency(lab.settings)
    port = int(replica.url.rsplit(":", 1)[1])
    lab.replicas.remove(replica)
    started = time.monotonic()
    restarted = lab.start_replica(replica.name, port)
    restart_s = round(time.monotonic() - started, 3)
    after_restart = consistency(lab.settings)
    retried = status(restarted.url, "POST", "/api/documents", UPLOAD_S, files={"files": upload})
    after_retry = consistency(lab.settings)
    whole = all(
        c["live_without_vector"] == c["duplicates"] == c["wrong_text"] == 0
        for c in (after_kill, after_restart, after_retry)
    )
    return {
        "after_kill": after_kill,
        "after_restart": after_restart,
        "restart_s": restart_s,
        "retry_upload": {"status": retried[0], "seconds": retried[1]},
        "after_retry": after_retry,
        "ok": whole
        and after_restart["leftover_vectors"] == 0
        and retried[0] == 200
        and after_retry["leftover_vectors"] == 0,
    }


def fault_llm(lab: Lab, replica: Replica, mode: str) -> dict[str, Any]:
    """An LLM server that hangs or drops: a bounded answer, never a hung request."""
    import httpx

    lab.llm.mode = mode
    started = time.monotonic()
    response = httpx.post(f"{replica.url}/api/ask", json={"question": QUESTION,
                          "generator": "openai"}, timeout=HUNG_S + 20)  # fmt: skip
    seconds = round(time.monotonic() - started, 3)
    body = response.json()
    outcome = (
        f"answer by {body.get('generator')}: {body.get('answer', '')[:80]!r}"
        if response.status_code == 200
        else body["error"]["message"][:200]
    )
    return {
        "status": response.status_code,
        "seconds": seconds,
        "outcome": outcome,
        "ok": seconds < LLM_TIMEOUT_S + HUNG_S and response.status_code in (200, 502, 503),
    }


def load(lab: Lab, first: Replica, clients: list[int], questions: int) -> dict[str, Any]:
    """``rag bench serve`` against one replica, then against two."""
    from server.bench import run

    second = lab.start_replica("replica-b")
    quiet: Callable[[str], None] = lambda message: None  # noqa: E731
    one = run(lab.settings, clients, questions, log=quiet, urls=[first.url])
    two = run(lab.settings, clients, questions, log=quiet, urls=[first.url, second.url])
    return {"one_replica": one["clients"], "two_replicas": two["clients"],
            "in_process": one["in_process"]}  # fmt: skip


def bounded(limit: float, work: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``work()`` on a thread, given up after ``limit`` seconds: a fault never hangs the run."""
    result: dict[str, Any] = {"ok": False, "error": f"timed out after {limit:g} s"}

    def target() -> None:
        started = time.monotonic()
        try:
            result.clear()
            result.update(work(*args))
        except Exception as exc:
            result.update(ok=False, error=f"{type(exc).__name__}: {exc}")
        result["wall_s"] = round(time.monotonic() - started, 2)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        return {"ok": False, "error": f"timed out after {limit:g} s"}
    return result


FAULTS: dict[str, tuple[float, Callable[[Lab, Replica], dict[str, Any]]]] = {
    "chroma": (60, fault_chroma),
    "postgres": (60, fault_postgres),
    "serve": (240, fault_serve),
    "llm-hang": (40, lambda lab, replica: fault_llm(lab, replica, "hang")),
    "llm-drop": (40, lambda lab, replica: fault_llm(lab, replica, "drop")),
}


def run_faults(
    names: list[str], clients: list[int] | None, questions: int, log: Callable[[str], None]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with lab(log) as here:
        log("Starting replica-a...")
        replica = here.start_replica("replica-a")
        for name in names:
            limit, fault = FAULTS[name]
            log(f"Fault {name} (at most {limit:g} s)...")
            results[name] = bounded(limit, fault, here, replica)
            # The serve fault replaces the replica: carry on with the new one.
            replica = next((r for r in here.replicas if r.name == "replica-a"), replica)
        if clients:
            log("Load: one replica, then two...")
            results["load"] = bounded(600, load, here, replica, clients, questions)
    return results


@click.command("faults")
@click.option(
    "--only",
    type=click.Choice(list(FAULTS)),
    multiple=True,
    help="Play these faults only (default: all).",
)
@click.option(
    "--load",
    "clients",
    default="",
    help="Also load one replica, then two, with these client counts (e.g. 1,20).",
)
@click.option("--questions", default=25, show_default=True, help="Questions per client.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def bench_faults(only: tuple[str, ...], clients: str, questions: int, as_json: bool) -> None:
    """Kill Chroma, restart PostgreSQL, kill a replica mid-upload, hang the LLM: bounded."""
    levels = [int(c) for c in clients.split(",") if c.strip()]
    results = run_faults(list(only) or list(FAULTS), levels, questions, log=_stderr)
    if as_json:
        click.echo(json.dumps(results, indent=2))
    else:
        for name, result in results.items():
            verdict = "" if name == "load" else ("ok    " if result.get("ok") else "FAILED")
            click.echo(f"{verdict} {name}: {json.dumps(result)}")
    if not all(r.get("ok", True) for r in results.values()):
        raise SystemExit(1)


def _stderr(message: str) -> None:
    click.echo(message, err=True)


if __name__ == "__main__":
    import rag  # noqa: F401  (offline and no-telemetry environment first)

    bench_faults()
