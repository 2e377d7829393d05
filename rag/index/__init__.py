"""The index: chunks embedded and stored, kept live, and searched.

Owns the embedding backends (``embedding``), the vector store over Chroma (``store``),
the manifest that is the truth of what is indexed (``manifest``; its PostgreSQL
backend in ``manifest_pg``), ingestion (``ingest``), removal (``removal``), the live
view queries read (``live_index``), folder watching (``watch``) and hybrid retrieval over it all
(``retrieval``: dense and BM25, fused).

May import ``rag.documents``. Must not import ``rag.answering``, ``rag.llm``,
``rag.feedback``, the pipeline or the CLI: the index serves questions, it does not answer them.
"""
