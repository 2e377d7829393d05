"""Question analysis: what kind of fact a question asks for, and follow-up resolution.

``analyze`` finds the expected answer type (a date, an amount of money, a count, a
place, a name, a duration) and the attribute the question is about when it names
one ("CEO", "revenue", "employees"): an answer must contain a value of that type
and mention that attribute, otherwise the documents do not answer it. The answer
types are one table (``ANSWER_TYPES``): how a question asks for each, and how a
sentence holds one.
``resolve_followup`` rewrites "Where is it based?" into a self-contained query using
earlier turns. English only; rules, not a model.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rag.text import STOPWORDS, WH_WORDS, content_tokens, months, names, numbers, stem, words

# Attributes whose value a question can ask for and that a text either states or
# does not. Each group is one attribute with the words that name it.
ATTRIBUTES: tuple[frozenset[str], ...] = tuple(
    frozenset(stem(w) for w in group.split())
    for group in (
        "price prices priced cost costs charge charges charged fee fees",
        "revenue revenues sales turnover income earnings profit profits",
        "salary salaries wage wages pay paid",
        "employee employees staff workforce headcount workers",
        "ceo ceos chief executive boss",
        "founder founders founded co-founder cofounder",
        "president chairman chairwoman chair director owner owners",
        "headquarters headquartered hq",
        "valuation valued worth",
        "investment invested funding funded",
        "transistor transistors",
        "watt watts wattage",
        "ghz mhz clock frequency",
        "nanometer nanometers nm",
        "temperature",
        "weight weighs grams kilograms",
        "population",
        "age",
        "stock share shares shareholders",
        "market-share",
        "customer customers client clients",
        "email phone telephone address website url",
        "budget",
        "deadline",
    )
)

_MONEY_VERBS = {
    stem(w) for w in "cost price charge pay paid spend spent worth sell buy invest".split()
}
_COMPARATIVE = {
    stem(w)
    for w in "reduce cut save lower cheaper less more faster slower bigger smaller better".split()
}
_ROLE_WORDS = {stem(w) for w in "ceo founder president chairman director owner head".split()}

_MONEY = re.compile(
    r"[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:dollars?|euros?|pounds?|usd|eur|gbp)\b", re.IGNORECASE
)
_YEAR = re.compile(r"\b(?:1[89]\d\d|20\d\d)s?\b")
_DURATION = re.compile(r"\b(?:second|minute|hour|day|week|month|year|decade)s?\b", re.IGNORECASE)
_PLACE = re.compile(r"\b(?:in|at|from|near|based in|located in)\s+(?:[A-Z][\w’'-]+)")
_SIZE = re.compile(
    r"\b(?:small|smaller|smallest|large|larger|largest|big|bigger|biggest|tiny|compact|size|"
    r"sized|mm|cm|millimet(?:er|re)s?|centimet(?:er|re)s?|inch(?:es)?|met(?:er|re)s?|feet|foot)\b",
    re.IGNORECASE,
)
_COUNT_WORDS = re.compile(
    r"\b(?:dozens?|hundreds?|thousands?|millions?|billions?|several|few|many|multiple)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class QuestionAnalysis:
    text: str
    answer_type: str | None  # date, year, money, count, quantity, size, place, name, duration
    attributes: tuple[frozenset[str], ...]  # attribute groups the question names
    terms: tuple[str, ...]  # stemmed content terms
    names: frozenset[str]  # capitalised names in the question
    numbers: frozenset[str]
    yes_no: bool
    defines: str = ""  # X in "What is X?": a sentence that defines X is preferred


_DEFINITION = re.compile(
    r"^(?:what|who)\s+(?:is|are|was|were)\s+(?:an?\s+|the\s+)?([\w’' -]{2,40}?)\s*\??$", re.I
)


def _holds_count(sentence: str, question_names: frozenset[str]) -> bool:
    return bool(re.search(r"\d", sentence) or _COUNT_WORDS.search(sentence)) or any(
        n in numbers(sentence) for n in ("2", "3", "4", "5", "6", "7", "8", "9", "10")
    )


def _holds_place(sentence: str, question_names: frozenset[str]) -> bool:
    return bool(_PLACE.search(sentence)) or bool(
        re.search(r"\b(data cent(re|er)s?|headquarters|offices?|facilit(y|ies))\b", sentence)
    )


def _asks_money(lowered: str, stems: frozenset[str], first: str) -> bool:
    return bool(
        re.search(r"\bhow much\b", lowered)
        and stems & _MONEY_VERBS
        and not (stems & _COMPARATIVE or "by how much" in lowered)
    ) or bool(re.search(r"\bwhat (is|was|are|were) the price\b", lowered))


def _asks_name(lowered: str, stems: frozenset[str], first: str) -> bool:
    return (
        first == "who"
        or bool(re.search(r"\bwho (is|was|are|were|did|does)\b", lowered))
        or bool(
            re.search(
                r"\b(which|what) "
                r"(company|companies|firm|firms|organi[sz]ations?|person|people|brand)\b",
                lowered,
            )
        )
    )


@dataclass(frozen=True)
class AnswerType:
    """A kind of value a question can ask for: how a question asks for it (``asks``:
    the lower-cased question, its stems, its first word) and whether a sentence holds
    one (``holds``: the sentence, the question's names). ``checked`` is False for a
    kind that is recognised only to stop later rows from matching (it holds no value
    a sentence can be checked for)."""

    name: str
    asks: Callable[[str, frozenset[str], str], bool]
    holds: Callable[[str, frozenset[str]], bool]
    checked: bool = True


# The answer types, in the order a question is matched against them (the first that
# asks wins: "how many years" is a duration before it is a count). Written by hand
# for the bundled article's questions (evals/suites/trainium.yaml); English only.
ANSWER_TYPES: tuple[AnswerType, ...] = (
    AnswerType(
        "year",
        lambda q, st, f: bool(re.search(r"\b(what|which|in what|in which)\s+year\b", q)),
        lambda s, n: bool(_YEAR.search(s)),
    ),
    AnswerType(
        "date",
        lambda q, st, f: bool(
            re.search(r"\bwhen\b|\bwhat (date|day|month|time)\b|\bwhich (date|day|month)\b", q)
        ),
        lambda s, n: bool(_YEAR.search(s) or months(s)),
    ),
    AnswerType(
        "duration",
        lambda q, st, f: bool(re.search(r"\bhow (long|many (years|months|weeks|days|hours))\b", q)),
        lambda s, n: bool(_DURATION.search(s)),
    ),
    AnswerType("money", _asks_money, lambda s, n: bool(_MONEY.search(s))),
    AnswerType("count", lambda q, st, f: bool(re.search(r"\bhow many\b", q)), _holds_count),
    AnswerType(
        "quantity",  # "how much cheaper / faster / more": a figure
        lambda q, st, f: bool(re.search(r"\bhow much\b", q)),
        lambda s, n: bool(numbers(s)) or bool(re.search(r"\btimes\b", s, re.I)),
    ),
    AnswerType(
        "size",
        lambda q, st, f: bool(
            re.search(
                r"\bhow (big|large|small|tiny|tall|wide|heavy|long is|long are)\b|\bwhat size\b", q
            )
        ),
        lambda s, n: bool(_SIZE.search(s)),
    ),
    AnswerType(
        "source",  # "where did they get X from": a source, not a place
        lambda q, st, f: bool(re.search(r"\bwhere\b.*\bfrom\b", q)),
        lambda s, n: True,
        checked=False,
    ),
    AnswerType(
        "place",
        lambda q, st, f: bool(
            re.search(
                r"\bwhere\b|\b(which|what) (city|country|state|town|region|place|location)\b"
                r"|\blocated\b",
                q,
            )
        ),
        _holds_place,
    ),
    # A name the question does not already contain.
    AnswerType("name", _asks_name, lambda s, n: bool(names(s) - n)),
)
_BY_NAME = {t.name: t for t in ANSWER_TYPES}


def answer_type_of(question: str) -> str | None:
    """The name of the value ``question`` asks for, or None (any statement may answer)."""
    lowered = question.lower()
    stems = frozenset(stem(t) for t in words(question))
    tokens = [w.lower() for w in words(question)]
    first = tokens[0] if tokens else ""
    for kind in ANSWER_TYPES:
        if kind.asks(lowered, stems, first):
            return kind.name if kind.checked else None
    return None


def analyze(question: str) -> QuestionAnalysis:
    tokens = [w.lower() for w in words(question)]
    stems = {stem(t) for t in words(question)}
    first = tokens[0] if tokens else ""
    attributes = tuple(group for group in ATTRIBUTES if group & stems)
    yes_no = first in {
        "is", "are", "was", "were", "does", "do", "did", "can", "could", "will", "has", "have",
    }  # fmt: skip
    return QuestionAnalysis(
        text=question,
        answer_type=answer_type_of(question),
        attributes=attributes,
        terms=tuple(dict.fromkeys(content_tokens(question))),
        names=frozenset(names(question, skip_first=True)),
        numbers=frozenset(numbers(question)),
        yes_no=yes_no,
        defines=(m.group(1) if (m := _DEFINITION.match(question.strip())) else ""),
    )


def has_answer_type(answer_type: str | None, sentence: str, question_names: frozenset[str]) -> bool:
    """Does ``sentence`` hold a value of the type the question asks for?"""
    if answer_type is None:
        return True
    return _BY_NAME[answer_type].holds(sentence, question_names)


def mentions_attribute(group: frozenset[str], text: str) -> bool:
    return bool(group & {stem(w.lower()) for w in words(text)})


def is_role_question(analysis: QuestionAnalysis) -> bool:
    return any(group & _ROLE_WORDS for group in analysis.attributes)


# -- follow-ups -------------------------------------------------------------------------

_PRONOUNS = {"it", "its", "they", "them", "their", "this", "that", "these", "those", "he",
             "she", "his", "her", "there", "one", "ones"}  # fmt: skip
_ELLIPSIS = re.compile(r"^\s*(?:and|what about|how about|and what about|what of)\s+(.+?)\??\s*$",
                       re.IGNORECASE)  # fmt: skip


def _subject(question: str) -> str:
    """The main named thing of a question: its longest capitalised phrase, else its terms."""
    phrases = re.findall(r"(?:[A-Z][\w’'-]*(?:\s+\d+)?)(?:\s+(?:[A-Z][\w’'-]*|\d+))*", question)
    phrases = [p for p in phrases if p.lower().split()[0] not in STOPWORDS | WH_WORDS]
    if phrases:
        return max(phrases, key=len)
    return " ".join(w for w in words(question) if w.lower() not in STOPWORDS | WH_WORDS)


def needs_context(question: str) -> bool:
    tokens = [w.lower() for w in words(question)]
    if _ELLIPSIS.match(question):
        return True
    content = [t for t in tokens if t not in STOPWORDS and t not in WH_WORDS]
    has_pronoun = any(t in _PRONOUNS for t in tokens)
    return (has_pronoun and not names(question)) or len(content) <= 1


def resolve_followup(question: str, history: list[str]) -> str:
    """A self-contained version of ``question`` given earlier user turns (newest last)."""
    if not history or not needs_context(question):
        return question
    previous = history[-1]
    ellipsis = _ELLIPSIS.match(question)
    if ellipsis:
        # "What about Trainium 4?" after "When was Trainium 3 launched?": ask the
        # earlier question again about the new subject.
        new_subject = ellipsis.group(1)
        old_subject = _subject(previous)
        if old_subject and old_subject in previous:
            return previous.replace(old_subject, new_subject, 1)
        return f"{new_subject} {previous}"
    # Keep the question's own words first (they carry the answer type) and add
    # the earlier question, which carries the subject the pronoun stands for.
    return f"{question} ({previous})"


def defines(term: str, sentence: str) -> bool:
    """Does ``sentence`` define ``term`` ("chips called Trainium", "Inferentia chips (for
    ...)", "Bedrock, a platform", "Trainium is ...")?"""
    if not term:
        return False
    t = re.escape(term.strip())
    return bool(
        re.search(rf"\b(?:called|named|known as)\s+{t}\b", sentence, re.I)
        # One word may sit between ("Inferentia chips ("), but not a number:
        # "Trainium 3 is new" is about Trainium 3, not Trainium.
        or re.search(rf"\b{t}(?:\s+[A-Za-z][\w-]*)?\s*(?:,|\(|\bis\b|\bare\b|:)", sentence, re.I)
    )
