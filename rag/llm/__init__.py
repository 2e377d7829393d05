"""LLMs: the generators that write an answer from the chosen sentences, and the judge.

Owns the generator registry (``generators``: names to backends, filled by the backends
themselves), the backends and their verified streaming (``generation``), the packaged
model files (``models``), the answerers that put a selector and a generator together
(``answerers``) and the optional LLM judge of faithfulness (``judge``).

May import ``rag.answering``, ``rag.index`` and ``rag.documents``. Must not import
``rag.feedback`` (the two are independent), the pipeline or the CLI.
"""
