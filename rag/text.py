"""Small text utilities shared by retrieval, answering and verification.

Tokenising, a light suffix stemmer, stopwords, and extraction of the "hard facts"
of a sentence (numbers, dates, amounts, names) that a verifier must find in the
quotes. Rule-based and English-only on purpose: no model, no download. It does not
do named-entity recognition; capitalisation is its only signal for names.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import snowballstemmer

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been
    before being below between both but by can could did do does doing done down during each
    either few for from further had has have having he her here hers herself him himself his
    how i if in into is it its itself just me more most my myself nor of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    upon us very was we were what when where which while who whom whose why will with would
    you your yours yourself yourselves s t d ll m re ve y according document documents text
    article say says said tell please exactly really actually currently
    """.split()
)

WH_WORDS = frozenset(["what", "when", "where", "which", "who", "whom", "whose", "why", "how"])

NEGATIONS = frozenset(
    """
    not no never none nothing nobody neither nor without cannot isn't aren't wasn't weren't
    doesn't don't didn't won't wouldn't can't couldn't shouldn't hasn't haven't hadn't
    """.split()
)

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "hundred": "100",
    "thousand": "1000", "million": "1000000", "billion": "1000000000", "twice": "2",
    "double": "2", "half": "0.5", "dozen": "12", "triple": "3", "thrice": "3",
    "first": "1st", "second": "2nd", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "hundreds": "100s", "thousands": "1000s", "millions": "1000000s", "billions": "1000000000s",
    "dozens": "12s",
}  # fmt: skip

MONTHS = frozenset(
    """
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)

_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’%$.-]*[A-Za-z0-9%]|[A-Za-z0-9%]")
_NAME_BEFORE = re.compile(r"\b[A-Z][\w’'-]*[A-Za-z] $")
_NUMBER = re.compile(r"(?<![\w.])[$€£]?\d[\d,]*(?:\.\d+)?(?:\s?(?:%|percent\b|bn\b|m\b|k\b))?")


def words(text: str) -> list[str]:
    """Word tokens with their original case ("Trainium", "40%", "high-performance")."""
    return [w.strip(".-'’") for w in _WORD.findall(text) if w.strip(".-'’")]


_STEMMER = snowballstemmer.stemmer("english")

# Irregular past forms, so "bought" matches "buy" (Porter leaves them alone).
_IRREGULAR = {
    past: base
    for base, forms in {
        "be": "was were been", "begin": "began begun", "break": "broke broken",
        "bring": "brought", "build": "built", "buy": "bought", "catch": "caught",
        "choose": "chose chosen", "come": "came", "cost": "cost", "do": "did done",
        "drive": "drove driven", "fall": "fell fallen", "find": "found", "get": "got gotten",
        "give": "gave given", "go": "went gone", "grow": "grew grown", "have": "had",
        "hold": "held", "keep": "kept", "know": "knew known", "lead": "led", "leave": "left",
        "lose": "lost", "make": "made", "mean": "meant", "meet": "met", "pay": "paid",
        "rise": "rose risen", "run": "ran", "say": "said", "see": "saw seen",
        "sell": "sold", "send": "sent", "set": "set", "show": "shown", "spend": "spent",
        "stand": "stood", "take": "took taken", "teach": "taught", "tell": "told",
        "think": "thought", "win": "won", "write": "wrote written",
    }.items()
    for past in forms.split()
}  # fmt: skip


@lru_cache(maxsize=50_000)
def stem(word: str) -> str:
    """Snowball (Porter 2) stem of a word, lower-cased: "chips" -> "chip"."""
    w = word.replace("’", "'")
    if re.fullmatch(r"[A-Z]{2,}s", w):
        w = w[:-1]  # "GPUs" -> "GPU": acronym plurals that Porter leaves alone
    w = w.lower()
    if w.endswith("'s"):
        w = w[:-2]
    return str(_STEMMER.stemWord(_IRREGULAR.get(w, w)))


def content_tokens(text: str) -> list[str]:
    """Stemmed, lower-cased tokens without stopwords or question words."""
    out = []
    for word in words(text):
        # "high-performance" matches "high performance": hyphenated words count by part.
        for w in word.split("-"):
            lw = w.lower()
            if not w or lw in STOPWORDS or lw in WH_WORDS:
                continue
            out.append(stem(w))
    return out


def negated_terms(text: str) -> set[str]:
    """Stems of the words within three after a negation ("does not sell" -> sell): the
    answerer (a premise the documents deny) and the verifier (a flipped claim) both
    read negation through this one function."""
    out: set[str] = set()
    tokens = [w.lower() for w in words(text)]
    for i, token in enumerate(tokens):
        if token in NEGATIONS or token.endswith("n't"):
            out.update(stem(t) for t in tokens[i + 1 : i + 4] if t not in NEGATIONS)
    return out


def numbers(text: str) -> set[str]:
    """Normalised numeric facts: "40%", "2015", "2", "1000s" (from "thousands")."""
    found: set[str] = set()
    for match in _NUMBER.finditer(text):
        name = _NAME_BEFORE.search(text, 0, match.start())
        if name and name.group(0).strip().lower() not in STOPWORDS | MONTHS:
            continue  # "Trainium 4": part of a name (see ``names``), not a quantity
        value = match.group(0).lower().replace(",", "").replace(" ", "")
        value = value.replace("percent", "%").lstrip("$€£")
        found.add(value)
    for w in words(text):
        lw = w.lower()
        if lw in NUMBER_WORDS:
            found.add(NUMBER_WORDS[lw])
    return found


def months(text: str) -> set[str]:
    return {w.lower()[:3] for w in words(text) if w.lower() in MONTHS and w[0].isupper()}


def names(text: str, skip_first: bool = False) -> set[str]:
    """Capitalised words that are not sentence-initial common words (a name proxy).

    "Amazon", "AWS", "Trainium", "OpenAI"; a name followed by a number also gives the
    pair ("trainium 4"), so "Trainium 4" and "Trainium 3" stay different things.
    The first word counts only when it is not a stopword, so "The chips..." gives
    nothing but "Nvidia and AMD..." gives Nvidia. ``skip_first`` ignores the first
    word entirely (for questions, which rarely open with a name: "Roughly how...").
    """
    found: set[str] = set()
    tokens = words(text)
    for i, w in enumerate(tokens):
        is_cap = w[0].isupper() or (len(w) > 1 and any(c.isupper() for c in w[1:]))
        lw = w.lower()
        if not is_cap or lw in STOPWORDS or lw in WH_WORDS or lw in MONTHS:
            continue
        if i == 0 and ((skip_first and not w.isupper()) or lw in _COMMON_SENTENCE_STARTERS):
            continue
        name = lw.replace("’", "'").removesuffix("'s")
        found.add(name)
        if i + 1 < len(tokens) and tokens[i + 1].isdigit() and len(tokens[i + 1]) <= 3:
            found.add(f"{name} {tokens[i + 1]}")
    return found


# Capitalised only because they open a sentence; never taken for names.
_COMMON_SENTENCE_STARTERS = frozenset(
    """
    instead even unlike although however yes no also many most some each every both ai
    """.split()
)


ORDINALS = frozenset(
    """
    first second third fourth fifth sixth seventh eighth ninth tenth last latest newest
    previous next original earlier later final
    """.split()
)


def number_ordinals(text: str, window: int = 8) -> dict[str, str]:
    """For each number in ``text``, the nearest ordinal word ("first", "newest", ...)
    within ``window`` words: which of several things a figure belongs to.

    "The first Trainium chip came in 2020, followed by a faster second version"
    gives {"2020": "first"}; a comma between them counts as two extra words.
    """
    tokens = re.findall(r"[\w%$.'’-]+|,", text)
    positions: list[tuple[int, str]] = []
    ordinals: list[tuple[int, str]] = []
    pos = 0
    previous = ""
    for token in tokens:
        pos += 3 if token == "," else 1
        lowered = token.lower()
        if lowered in ORDINALS:
            ordinals.append((pos, lowered))
        elif token != "," and not (
            token.isdigit() and previous[:1].isupper() and previous.lower() not in STOPWORDS
        ):  # "Trainium 3" is a name, not a figure
            for value in numbers(token):
                positions.append((pos, value))
        previous = token
    found: dict[str, str] = {}
    for where, value in positions:
        near = [(abs(where - at), word) for at, word in ordinals if abs(where - at) <= window]
        if near:
            found[value] = min(near)[1]
    return found


# Lone surrogates: bytes that were not UTF-8 (argv and stdin decode them with
# surrogateescape; JSON may spell them as \ud800). The tokenizer cannot encode them.
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` with undecodable bytes replaced by U+FFFD and control characters by
    spaces: what reaches the tokenizer and the index is always valid text."""
    text = _SURROGATES.sub("\ufffd", text)
    return "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
