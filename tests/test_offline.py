"""No network, proven: ingest (and a query on the result) with every outbound
connection attempt recorded by an audit hook installed before anything is imported.

The subprocess gets a user's environment: none of the offline variables that
``rag._offline`` sets, so the package has to switch its libraries off by itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import CORPUS, REPO, clean_env

pytestmark = pytest.mark.slow

PROBE = r"""
import json, socket, sys

attempts = []

def _local(host):
    return host in (None, "", "localhost", "127.0.0.1", "::1", "0.0.0.0") or (
        isinstance(host, (bytes, bytearray)) and host in (b"localhost", b"127.0.0.1", b"::1")
    )

def hook(event, args):
    if event == "socket.connect":
        sock, address = args[0], args[1]
        if getattr(sock, "family", None) != socket.AF_UNIX:
            attempts.append([event, repr(address)])
    elif event in ("socket.sendto", "socket.sendmsg"):
        sock = args[0]
        if getattr(sock, "family", None) != socket.AF_UNIX:
            attempts.append([event, repr(args[1:])])
    elif event == "socket.getaddrinfo":
        if not _local(args[0]):
            attempts.append([event, repr(args[:2])])
    elif event == "socket.gethostbyname":
        if not _local(args[0]):
            attempts.append([event, repr(args[0])])
    elif event in ("http.client.connect", "urllib.Request", "webbrowser.open"):
        attempts.append([event, repr(args[:3])])

sys.addaudithook(hook)  # before rag, torch, chromadb or transformers are imported

out, data_dir, corpus = sys.argv[1:4]
from rag.cli import main

sys.argv = ["rag", "--data-dir", data_dir, "ingest", "--json", corpus]
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code
during_ingest = list(attempts)

# The query path too: the ONNX embedder and a Chroma query.
from pathlib import Path
from rag.index.embedding import make_embedder
from rag.settings import load_settings
from rag.index.store import Index

settings = load_settings(data_dir=Path(data_dir))
index = Index.open(settings)
vector = make_embedder(settings, "query").embed(["Where are Trainium chips designed?"])
hits = index.collection.query(query_embeddings=vector, n_results=3)["ids"][0]
index.close()
during_query = attempts[len(during_ingest):]

# The control: a connection attempt the hook must see (refused at once, locally).
probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
probe.settimeout(1)
try:
    probe.connect(("127.0.0.1", 9))
except OSError:
    pass
finally:
    probe.close()

with open(out, "w") as handle:
    json.dump(
        {
            "code": code,
            "ingest": during_ingest,
            "query": during_query,
            "hits": hits,
            "control": attempts[len(during_ingest) + len(during_query):],
        },
        handle,
    )
"""


def test_ingest_and_query_attempt_no_network_connection(
    tmp_path: Path, model_cache_dir: Path, embedder
) -> None:
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    out = tmp_path / "attempts.json"
    data_dir = tmp_path / "data"
    # A fresh data dir (so the model really runs) and the bundled corpus.
    result = subprocess.run(
        [sys.executable, str(script), str(out), str(data_dir), str(CORPUS)],
        env=clean_env(model_cache_dir),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(out.read_text())
    assert found["code"] in (0, None), result.stderr
    report = json.loads(result.stdout)
    assert report["chunks_embedded"] > 0, "the model ran"
    assert found["ingest"] == [], f"ingest tried the network: {found['ingest']}"
    assert found["query"] == [], f"the query path tried the network: {found['query']}"
    assert len(found["hits"]) == 3
    assert any("127.0.0.1" in attempt[1] for attempt in found["control"]), "the hook works"
