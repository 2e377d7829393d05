"""Folder sync end to end, bounded in time: a real folder and a real index kept in step
by ``rag.index.watch.watch`` (added, changed, half-written, deleted files), ``rag ingest
--watch`` stopped by Ctrl+C, and ``rag serve --watch`` answering about a file dropped
into the folder."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rag.index.ingest import ingest
from rag.index.store import Index
from rag.index.watch import FolderWatcher, Pending, ingest_sync, watch
from rag.pipeline import build_pipeline
from tests.helpers import REPO, clean_env, wait_for_http

pytestmark = pytest.mark.slow

ZEPHYR = "# Zephyr notes\n\nThe Zephyr project paints its widgets purple in Oslo.\n"
ZEPHYR_2 = "# Zephyr notes\n\nThe Zephyr project paints its widgets green in Bergen.\n"
QUESTION = "What colour does the Zephyr project paint its widgets?"


def wait_until(check: Callable[[], bool], timeout: float = 20) -> float:
    """Seconds until ``check`` holds; fails the test after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            pytest.fail(f"not reached within {timeout}s")
        time.sleep(0.05)
    return time.monotonic() - started


@pytest.fixture
def watched(
    tmp_path: Path, make_settings: Any, embedder: Any
) -> Iterator[tuple[Path, Any, list[Pending]]]:
    folder = tmp_path / "folder"
    folder.mkdir()
    settings = make_settings(watch_interval_s=0.1, watch_debounce_s=0.3)
    syncs: list[Pending] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=watch,
        args=(
            FolderWatcher(folder, settings.watch_debounce_s),
            ingest_sync(settings, folder, embedder),
            settings.watch_interval_s,
            lambda pending, report: syncs.append(pending),
            lambda exc: pytest.fail(str(exc)),
            stop,
        ),
    )
    thread.start()
    try:
        yield folder, settings, syncs
    finally:
        stop.set()
        thread.join(timeout=30)


def sources(settings: Any) -> dict[str, str]:
    try:
        index = Index.open(settings)
    except Exception:
        return {}
    try:
        return {d.source: d.content_hash for d in index.documents()}
    finally:
        index.close()


def test_the_index_follows_the_folder(watched: tuple[Path, Any, list[Pending]]) -> None:
    folder, settings, _syncs = watched
    (folder / "sub").mkdir()
    (folder / "sub" / "zephyr.md").write_text(ZEPHYR, encoding="utf-8")
    took = wait_until(lambda: "sub/zephyr.md" in sources(settings))
    print(f"watched file answerable after {took:.2f}s")
    assert took < 5, took  # a poll or two, the debounce, one small ingest
    answer = build_pipeline(settings).ask(QUESTION)
    assert "purple" in answer.answer

    before = sources(settings)["sub/zephyr.md"]
    (folder / "sub" / "zephyr.md").write_text(ZEPHYR_2, encoding="utf-8")
    wait_until(lambda: sources(settings).get("sub/zephyr.md") not in (None, before))
    assert "green" in build_pipeline(settings).ask(QUESTION).answer

    (folder / "sub" / "zephyr.md").unlink()
    wait_until(lambda: "sub/zephyr.md" not in sources(settings))


def test_a_file_being_written_is_indexed_only_when_complete(
    watched: tuple[Path, Any, list[Pending]],
) -> None:
    folder, settings, syncs = watched
    path = folder / "slow.md"
    # A writer that adds a line every 0.1 s (under the 0.3 s debounce) for 1.5 s.
    with open(path, "w", encoding="utf-8") as out:
        out.write("# Slow notes\n\n")
        for n in range(15):
            out.write(f"Line {n} of the slow notes is here. ")
            out.flush()
            time.sleep(0.1)
        out.write("The last line says the slow notes are complete.\n")
    wait_until(lambda: "slow.md" in sources(settings))
    index = Index.open(settings)
    try:
        document = index.document("slow.md")
    finally:
        index.close()
    assert document is not None and "complete" in document.text
    # Never indexed half-way: no sync saw the file before the writer was done.
    assert sum(1 for p in syncs if p.changed) == 1


def test_rag_ingest_watch_syncs_and_stops_on_ctrl_c(tmp_path: Path, model_cache_dir: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "zephyr.md").write_text(ZEPHYR, encoding="utf-8")
    env = clean_env(model_cache_dir, RAG_WATCH_INTERVAL_S="0.2", RAG_WATCH_DEBOUNCE_S="0.4")
    process = subprocess.Popen(
        [sys.executable, "-m", "rag", "--data-dir", str(tmp_path / "data"), "ingest", "--watch",
         str(folder), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())  # one JSON line per sync
        assert first["documents_added"] == 1 and first["synced"] == str(folder)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Stopped watching" in err and "Traceback" not in err


def test_rag_serve_watch_answers_about_a_new_file(
    tmp_path: Path, model_cache_dir: Path, embedder: Any, make_settings: Any
) -> None:
    from tests.helpers import free_port

    folder = tmp_path / "folder"
    folder.mkdir()
    settings = make_settings()
    ingest(settings, embedder=embedder)  # the bundled article, so serve starts at once
    port = free_port()
    env = clean_env(model_cache_dir, RAG_WATCH_INTERVAL_S="0.2", RAG_WATCH_DEBOUNCE_S="0.4")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "rag", "--data-dir", str(settings.data_dir), "serve",
             "--port", str(port), "--no-chat", "--watch", str(folder)],
            stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/readyz", server, log, timeout=120)
        (folder / "zephyr.md").write_text(ZEPHYR, encoding="utf-8")
        with httpx.Client(base_url=url, timeout=30) as client:

            def answerable() -> bool:
                reply = client.post("/api/ask", json={"question": QUESTION}).json()
                return "purple" in reply["answer"]

            took = wait_until(answerable, timeout=60)
        print(f"serve --watch: new file answerable after {took:.2f}s")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)
    text = log.read_text()
    assert "synced" in text and "Traceback" not in text, text[-3000:]
