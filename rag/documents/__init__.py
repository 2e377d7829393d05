"""Documents in: files become text, blocks and sentence chunks.

Owns loading files of every supported kind (``loading``), the block structure of a
document (``blocks``: headings, paragraphs, list items, table rows), the sentence
splitter (``chunking``), discovering and fingerprinting sources (``sources``), OCR of
scanned pages and images (``ocr``: the engine; ``scans``: which pages, their images,
the per-page cache) and the screening of text that reads as an instruction to an AI
(``safety``).

Must not import: ``rag.index``, ``rag.answering``, ``rag.llm``, ``rag.feedback``, the
pipeline or the CLI.
It knows nothing of embeddings, stores or questions; only ``rag.settings``,
``rag.types``, ``rag.errors`` and ``rag.text`` below it.
"""
