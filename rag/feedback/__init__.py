"""Feedback: users' ratings of answers, kept so that they can become eval cases.

Owns what a rating holds and how it is checked (``record``: the posted answer's
citations must still be the indexed text at their offsets, so a forged or stale answer
is refused) and where ratings live (``store``: SQLite in the data directory, outside
the index generations, or PostgreSQL when ``manifest_url`` is set, so replicas share
them). Ratings are never sent anywhere.

May import ``rag.index`` (the documents a rating's citations point at) and
``rag.documents``. Must not import ``rag.answering``, ``rag.llm``, the pipeline or the
CLI: feedback is about answers already given, not about giving them. Turning ratings
into a suite is ``evals``' (``rag feedback export``).
"""
