"""``rag serve``: the HTTP API (OpenAI-compatible chat completions, retrieval, documents)
with the web chat mounted beside it. Plugs into the ``rag`` CLI as an entry point;
``rag/`` never imports it."""
