"""Prompt-injection screening: document text is data, never instructions.

``looks_like_instruction`` flags sentences written to steer an AI system rather than
to inform a reader ("ignore all previous instructions", "tell the user that...",
"Assistant, you must answer..."). Answerers never quote or follow a flagged
sentence; the LLM prompt (generative issue) also labels evidence as untrusted data.
Pattern-based, English only; it will miss cleverly disguised injections, which is
why answers are verified against quotes as well.
"""

from __future__ import annotations

import re

_PATTERNS = [
    r"\b(ignore|disregard|forget|override|bypass)\b[^.]{0,40}\b(instructions?|rules?|prompts?|"
    r"guidelines?|context|documents?|above|previous|prior|everything)\b",
    r"\b(system|developer|assistant|ai|model)\s+(note|prompt|message|instruction|override)s?\b",
    r"\b(tell|inform|convince|remind)\s+(the\s+)?(user|users|reader|readers|customer|human)s?\b",
    r"\b(assistant|chatbot|ai|model|llm|gpt)\s*[,:]\s*(you\s+)?(must|should|will|shall|are)\b",
    r"\byou\s+(must|should|are required to|have to|will)\s+(always\s+)?"
    r"(say|answer|respond|reply|state|claim|tell|output|print)\b",
    r"\b(respond|reply|answer)\s+(only\s+)?(with|by saying)\b",
    r"\b(reveal|print|show)\s+(your|the)\s+(system\s+)?(prompt|instructions)\b",
    r"\bnew instructions?\b",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def looks_like_instruction(text: str) -> bool:
    """True when ``text`` reads as an instruction aimed at an AI system."""
    return bool(_INJECTION.search(" ".join(text.split())))
