"""``rag bench serve``: the server under concurrent clients, beside the in-process rate.

Each client holds its own conversations (a question, then a follow-up that only makes
sense after it) and sends them as OpenAI chat completions to a real ``rag serve``
subprocess. Every reply is compared with the answer the in-process pipeline gives to
the same conversation in the same run: a different answer is cross-talk (or a bug),
a non-200 an error. Not a test: it measures, and reports the issue's goals as met or
not. Plugged into ``rag bench`` through the ``rag.bench_commands`` entry point.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.client import HTTPConnection, HTTPException
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from rag.cli import echo_err, echo_json, json_option, settings_from
from rag.settings import Settings
from rag.stats import percentile
from server.sandbox import free_port

# (question, follow-up) over the bundled article; the follow-ups resolve only with
# their own first question, so an answer that used another client's is visible.
CONVERSATIONS = [
    ("Which subsidiary develops Amazon's AI chips?", "Where is it based?"),
    ("Which company did Amazon buy to design its own processors?", "When did that happen?"),
    ("How much more powerful is Trainium 3 than the previous version?", "What about Trainium 4?"),
    ("What is the newest version of Trainium?", "How big is it?"),
    ("Who makes the Trainium chips?", "Do they sell them?"),
    ("What does AI training require?", "And what happens if one of them fails?"),
    ("Why is there a shortage of high-performance GPUs?", "Who dominates that market?"),
]
Request = tuple[tuple[str, ...], str]  # (earlier questions, question)


def workload(client: int, count: int) -> list[Request]:
    """``count`` requests of one client: conversations in turn, starting at its own
    offset so that concurrent clients ask different things at the same moment."""
    requests: list[Request] = []
    n = client
    while len(requests) < count:
        first, follow = CONVERSATIONS[n % len(CONVERSATIONS)]
        requests.append(((), first))
        requests.append(((first,), follow))
        n += 1
    return requests[:count]


def _key(answer: dict[str, Any]) -> tuple[Any, ...]:
    """What must match between server and in-process answers (not timings)."""
    return (answer["answer"], answer["refused"], repr(answer["citations"]))


def _messages(request: Request, answers: dict[Request, dict[str, Any]]) -> list[dict[str, str]]:
    history, question = request
    messages: list[dict[str, str]] = []
    for earlier in history:
        messages.append({"role": "user", "content": earlier})
        messages.append({"role": "assistant", "content": answers[((), earlier)]["answer"]})
    messages.append({"role": "user", "content": question})
    return messages


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "mean_ms": round(sum(latencies) / len(latencies), 1),
    }


def run(
    settings: Settings,
    clients: list[int],
    per_client: int,
    workers: int = 1,
    log: Callable[[str], None] = print,
    urls: list[str] | None = None,
) -> dict[str, Any]:
    """The bench; with ``urls`` (replicas already running over the index ``settings``
    name) it loads those, clients spread over them in turn, instead of starting one."""

    from rag.index.ingest import ensure_index
    from rag.pipeline import build_pipeline

    ensure_index(settings, notify=log)
    distinct = sorted({r for c in range(max(clients)) for r in workload(c, per_client)})

    log(f"In-process: {len(distinct)} distinct requests, 3 rounds...")
    pipeline = build_pipeline(settings)
    expected: dict[Request, dict[str, Any]] = {}
    local: list[float] = []
    try:
        pipeline.ask("warm up")
        for _ in range(3):
            for history, question in distinct:
                started = time.perf_counter()
                answer = pipeline.ask(question, history=_resolved(history))
                local.append((time.perf_counter() - started) * 1000)
                expected[(history, question)] = answer.to_json()
    finally:
        pipeline.close()
    # Dropped now, so this process's ONNX threads do not compete with the server's.
    del pipeline
    gc.collect()
    warm_rate = 1000 * len(local) / sum(local)

    levels: dict[str, Any] = {}
    if urls:
        _load(urls, workers, distinct, expected, clients, per_client, levels, log)
    else:
        port = free_port()
        env = dict(os.environ, RAG_API_RATE_LIMIT="0")  # the bench measures, not the limiter
        env.pop("RAG_API_KEYS", None)
        log_file = Path(tempfile.mkstemp(prefix="rag-bench-serve-", suffix=".log")[1])
        command = [sys.executable, "-m", "rag", "--data-dir", str(settings.data_dir), "serve",
                   "--port", str(port), "--workers", str(workers), "--no-chat"]  # fmt: skip
        with open(log_file, "w") as out:
            server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, server, log_file)
            _load([url], workers, distinct, expected, clients, per_client, levels, log)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log_file.unlink(missing_ok=True)

    local_stats = _summary(local)
    result: dict[str, Any] = {
        "generator": settings.generator,
        "workers": workers,
        "replicas": len(urls) if urls else 1,
        "in_process": {**local_stats, "warm_rate_per_s": round(warm_rate, 1)},
        "clients": levels,
    }
    one, most = levels.get("1"), levels.get(str(max(clients)))
    goals: dict[str, bool] = {}
    if one:
        goals["1 client p95 <= in-process p95 + 15 ms"] = (
            one["p95_ms"] <= local_stats["p95_ms"] + 15
        )
    if most:
        goals[f"{max(clients)} clients p95 <= 2x mean"] = most["p95_ms"] <= 2 * most["mean_ms"]
        goals[f"{max(clients)} clients throughput per worker >= 70% of in-process"] = (
            most["throughput_per_s"] / workers >= 0.7 * warm_rate
        )
    goals["zero errors, no cross-talk"] = all(
        level["errors"] == 0 and level["mismatches"] == 0 for level in levels.values()
    )
    result["goals"] = goals
    return result


def _load(
    urls: list[str], workers: int, distinct: list[Request],
    expected: dict[Request, dict[str, Any]], clients: list[int], per_client: int,
    levels: dict[str, Any], log: Callable[[str], None],
) -> None:  # fmt: skip
    import httpx

    for url in urls:
        with httpx.Client(base_url=url, timeout=60) as warm:
            warm_up = {"messages": _messages(distinct[0], expected)}
            for _ in range(3 * workers):  # each worker's first answers load kernels
                warm.post("/v1/chat/completions", json=warm_up)
    for n in clients:
        log(f"{n} concurrent client(s) x {per_client} questions...")
        levels[str(n)] = _level(urls, n, per_client, expected)


def _resolved(history: tuple[str, ...]) -> list[str]:
    from rag.answering.conversation import resolved_history

    return resolved_history(history)


def _wait_ready(url: str, server: subprocess.Popen[bytes], log_file: Path) -> None:
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if server.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise click.ClickException(f"rag serve did not come up:\n{log_file.read_text()[-2000:]}")


def _level(
    urls: list[str], n: int, per_client: int, expected: dict[Request, dict[str, Any]]
) -> Any:
    latencies: list[float] = []
    inside: list[float] = []  # the answer's own time in the server, without HTTP
    errors: list[str] = []
    mismatches: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(n)

    def client(number: int) -> None:
        # The stdlib client, one kept-alive connection per client: the load generator
        # shares the machine's cores with the server, so it should cost little CPU.
        mine: list[float] = []
        answering: list[float] = []
        parsed = urlsplit(urls[number % len(urls)])  # replicas in turn
        http = HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=120)
        headers = {"Content-Type": "application/json"}
        try:
            start.wait()
            for request in workload(number, per_client):
                body = {"model": "extractive", "messages": _messages(request, expected)}
                began = time.perf_counter()
                try:
                    http.request("POST", "/v1/chat/completions", json.dumps(body), headers)
                    response = http.getresponse()
                    payload = response.read()
                except (OSError, HTTPException) as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}")
                    http.close()
                    continue
                mine.append((time.perf_counter() - began) * 1000)
                if response.status != 200:
                    with lock:
                        errors.append(f"{response.status}: {payload[:200]!r}")
                    continue
                answer = json.loads(payload)["rag"]
                answering.append(answer["timings_ms"]["total"])
                if _key(answer) != _key(expected[request]):
                    with lock:
                        mismatches.append(f"client {number}: {request[1]!r}")
        finally:
            http.close()
        with lock:
            latencies.extend(mine)
            inside.extend(answering)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    return {
        "requests": n * per_client,
        "errors": len(errors),
        "mismatches": len(mismatches),
        "throughput_per_s": round(len(latencies) / wall, 1),
        **_summary(latencies or [0.0]),
        "server_answer_p50_ms": round(percentile(inside or [0.0], 50), 1),
        "first_problems": (errors + mismatches)[:3],
    }


@click.command("serve")
@click.option(
    "--clients",
    default="1,5,20",
    show_default=True,
    help="Concurrency levels, comma-separated.",
)
@click.option("--questions", default=25, show_default=True, help="Questions per client.")
@click.option("--workers", default=1, show_default=True, help="Server processes.")
@click.option(
    "--url",
    "urls",
    multiple=True,
    help="Load this running rag serve instead of starting one; repeat it for replicas "
    "(clients go to each in turn). They must serve the index the settings name.",
)
@json_option
@click.pass_context
def bench_serve(
    ctx: click.Context, clients: str, questions: int, workers: int, urls: tuple[str, ...],
    as_json: bool,
) -> None:  # fmt: skip
    """rag serve under 1, 5 and 20 concurrent clients, beside the in-process rate."""
    try:
        levels = [int(part) for part in clients.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(
            "a comma-separated list of numbers", param_hint="--clients"
        ) from None
    if not levels or min(levels) < 1 or questions < 1:
        raise click.BadParameter("clients and questions must be at least 1")
    result = run(
        settings_from(ctx), levels, questions, workers, log=echo_err, urls=list(urls) or None
    )
    if as_json:
        echo_json(result)
        return
    stats = result["in_process"]
    click.echo(f"in-process: p50 {stats['p50_ms']} ms, p95 {stats['p95_ms']} ms, "
               f"{stats['warm_rate_per_s']} answers/s")  # fmt: skip
    for n, level in result["clients"].items():
        click.echo(
            f"{n:>3} client(s): {level['throughput_per_s']} answers/s, p50 {level['p50_ms']} "
            f"ms, p95 {level['p95_ms']} ms, mean {level['mean_ms']} ms (answering alone: "
            f"p50 {level['server_answer_p50_ms']} ms), errors {level['errors']}, cross-talk "
            f"{level['mismatches']}"
        )
    for goal, met in result["goals"].items():
        click.echo(f"{'met' if met else 'NOT MET'}: {goal}")
