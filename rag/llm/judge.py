"""An optional LLM support check: the probability that a model answers "yes" to
"does the source state this?".

Used two ways: as an extra verifier check on generated sentences
(``RAG_LLM_SUPPORT_CHECK=true``), and as the LLM-judge score that ``rag eval --judge
llm`` reports beside the deterministic faithfulness. With llama-cpp the probability
comes from the next-token log-probabilities (a second model instance with logits
kept); with a server backend it is the answer read as 1 (yes) or 0 (no).

``Verifiers`` builds the verifier each generator's sentences pass (with this check
added when it is enabled). The checks themselves are ``rag.answering.verify``'s; nothing here
decides answerability or is used by the default (extractive) path.
"""

from __future__ import annotations

import atexit
import math
import threading
from collections.abc import Sequence
from typing import Any

from rag.answering.verify import Verifier
from rag.index.embedding import Embedder
from rag.settings import Settings
from rag.types import Citation

SUPPORT_THRESHOLD = 0.5
_PROMPT = (
    "Source:\n{quotes}\n\nStatement: {statement}\n\nDoes the source state this? Answer yes or no."
)


class LlmJudge:
    """P(yes) that the quotes state the statement, from the configured LLM."""

    def __init__(self, settings: Settings, generator: str) -> None:
        from rag.llm.generation import make_backend

        self.generator = generator
        self._lock = threading.Lock()
        self._llm: Any = None
        self._backend: Any = None
        if generator == "llama-cpp":
            from llama_cpp import Llama

            from rag.llm.models import qwen_path

            path = settings.llm_model_path or qwen_path(settings.cache_dir)
            # logits_all keeps next-token probabilities, which the answering
            # instance does not need and would slow down.
            self._llm = Llama(model_path=str(path), n_ctx=2048, n_threads=settings.llm_threads,
                              chat_format=settings.llm_chat_format, logits_all=True,
                              verbose=False, seed=0)  # fmt: skip
            atexit.register(self._llm.close)  # see generation._close_backends
        else:
            self._backend = make_backend(settings, generator)

    def support(self, statement: str, quotes: Sequence[str]) -> float:
        content = _PROMPT.format(quotes="\n".join(quotes), statement=statement)
        messages = [{"role": "user", "content": content}]
        with self._lock:
            if self._llm is None:
                reply = "".join(self._backend.stream(messages)).strip().lower()
                return 1.0 if reply.startswith("yes") else 0.0
            result = self._llm.create_chat_completion(
                messages=messages, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=10
            )
        top = result["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
        yes = sum(math.exp(t["logprob"]) for t in top if t["token"].strip().lower() == "yes")
        no = sum(math.exp(t["logprob"]) for t in top if t["token"].strip().lower() == "no")
        return yes / (yes + no) if yes + no > 0 else 0.0

    def judge(self, question: str, sentence: str, quotes: Sequence[str]) -> float:
        """The ``evals.metrics.Judge`` signature."""
        return self.support(sentence, quotes)

    def check(self, sentence: str, citations: Sequence[Citation]) -> str | None:
        """A ``Verifier.extra_checks`` entry: a reason when the LLM says "not stated"."""
        probability = self.support(sentence, [c.quote for c in citations])
        if probability < SUPPORT_THRESHOLD:
            return f"the LLM support check says the quotes do not state this (p={probability:.2f})"
        return None


class Verifiers:
    """The verifier each generator's sentences must pass, built once per generator.

    Extractive quotes get the deterministic verifier. Generated text is not verbatim,
    so it also needs the embedding-similarity gate and, when enabled
    (``RAG_LLM_SUPPORT_CHECK``), the LLM support check; judges are cached because
    loading a model takes seconds.
    """

    def __init__(self, settings: Settings, embedder: Embedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.extractive = Verifier()
        self._judges: dict[str, LlmJudge] = {}
        self._generative: dict[str, Verifier] = {}

    def for_generator(self, generator: str) -> Verifier:
        if generator not in self._generative:
            extra = list(self.extractive.extra_checks)
            if self.settings.llm_support_check:
                if generator not in self._judges:
                    self._judges[generator] = LlmJudge(self.settings, generator)
                extra.append(self._judges[generator].check)
            embedder = self.embedder

            def similarity(sentence: str, quotes: str) -> float:
                vectors = embedder.embed([sentence, quotes])
                return float(vectors[0] @ vectors[1])

            self._generative[generator] = Verifier(extra_checks=extra, similarity=similarity)
        return self._generative[generator]
