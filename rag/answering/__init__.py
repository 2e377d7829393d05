"""Answering: from a question and its retrieved candidates to quoted sentences or a
refusal.

Owns question analysis (``question``), the rules and the answer's shape (``answer``),
the reader, a cross-encoder that reads question and sentence together (``reader``),
the learned selector and its features (``selector``, ``selector_features``), the
verifier of every answer sentence against its quotes (``verify``) and chat turns and
their history (``conversation``).

May import ``rag.index`` (the candidates and their view of the corpus) and
``rag.documents``. Must not import ``rag.llm``, ``rag.feedback``, the pipeline or the
CLI: an LLM is one
way of writing the answer chosen here, plugged in above it.
"""
