"""Rule-based paraphrase of a caption: restructure it, then swap a word or two for curated synonyms.

Restructurings that keep the meaning of an image caption:

- a participle caption becomes a sentence: "A man riding a horse" -> "A man is riding a horse";
- a simple present becomes a progressive: "A man rides a horse" -> "A man is riding a horse";
- an indefinite noun phrase becomes existential: "Two dogs on a beach" -> "There are two dogs on a beach";
- a closing place phrase moves to the front: "..., on a beach" -> "On a beach, ...".

Synonyms come from `data/synonyms.tsv`, a hand-checked list whose entries hold in any caption
context. Negation words are never added or removed (only "with no" <-> "without"), so a paraphrase
keeps the caption's polarity; `paraphrase` confirms that and that the text really changed, and
returns None rather than an unchecked edit. The choice among synonyms is seeded by the caption, so
the output is deterministic yet varied across a dataset.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from functools import lru_cache
from importlib import resources

from triplegen.checks.lexical import normalise
from triplegen.rules.clause import coordinated_verb, find_predicate, subject_is_plural
from triplegen.rules.dangling_verb import dangling_verb
from triplegen.rules.lexicon import (
    AUXILIARIES,
    DETERMINERS,
    HAVE_FORMS,
    PREPOSITIONS,
    PRONOUN_SUBJECTS,
    THIRD_PERSON,
    VERB_BASES,
    Token,
    is_participle,
    keeps_capital,
    present_participle,
    verb_base,
    split_ending,
    third_person,
    tokenize,
)
from triplegen.rules.polarity import keeps_polarity

# Openings of an indefinite subject, which "there is/are" can take ("two dogs" -> "there are two dogs").
_INDEFINITE = frozenset("a an some several many two three four five six seven eight nine ten numerous multiple".split())
# What makes a closing phrase a place that may lead the sentence (`_is_place_phrase`): locative
# prepositions, the determiners a place opens with, and words that tie the phrase to the rest of the
# caption ("puts a hand in a dish"); _PHRASE_ADVERBS, _SOURCES and _WEARERS below serve the same test.
# Readings of captions over closed classes, which no library marks.
_PLACES = frozenset(
    "in on at near beside by under behind inside outside along across above below beneath underneath atop".split()
)
_MULTIWORD_PLACES = {"in": ("front", "of"), "on": ("top", "of"), "next": ("to",), "close": ("to",)}
_PLACE_DETERMINERS = frozenset("the a an some two three several".split())
_PP_BLOCKERS = frozenset("and or with while that which who is are it them him her his their its where as".split())
_REST_BLOCKERS = frozenset("that which who with to while as".split())  # a closing phrase could belong to them
_PLACING = frozenset("put putting place placing placed set setting throw throwing pour pouring hang hanging".split())
# Finite verbs (a caption with one takes no "there is") and relative pronouns: closed classes.
_FINITE = frozenset("is are was were does do did has have had".split())
_RELATIVES = frozenset("that which who".split())
_RELATIVE_BE = re.compile(
    r"\s(?:that|which|who)\s+(?:is|are)\s+(?=\w+ing\b|\w+ed\b|(?:made|cut|in|on|at|near|under|behind|beside|next)\b)",
    re.IGNORECASE,
)
_RELATIVE_HAS = re.compile(
    r"\s(?:that|which)\s+ha(?:s|ve)\s+"
    r"(?=(?:a|an|the|some|two|three|four|five|one|its|his|her|their|many|various|several|lots|multiple)\b)",
    re.IGNORECASE,
)
# Words for the picture itself: a participle after them belongs to what is shown ("a photo of a girl sitting").
_DEPICTIONS = frozenset("photo photograph picture image view closeup close-up shot painting drawing poster".split())
_PHRASE_ADVERBS = frozenset("early late right just far deep high low back".split())
# Where these happen is where the subject is, so the place can lead: "On the bed, the cat is sleeping."
_AT_A_PLACE = frozenset(
    present_participle(verb) for verb in "sit stand sleep lie lay rest play wait swim walk run work nap perch float lounge graze".split()
) | {"parked"}
_PROGRESSIVE = {present_participle(verb): verb for verb in sorted(VERB_BASES)}
_SOURCES = frozenset("from of to than".split())  # "peeking out from under a blanket" stays whole
# People whom a following "in" dresses rather than places ("a man in a suit").
_WEARERS = frozenset(
    "man woman person boy girl child kid people men women guy lady player players kids children".split()
)


def paraphrase(caption: str) -> str | None:
    """A meaning-preserving rewording of `caption`, or None when no rule changes it safely."""
    body, ending = split_ending(" ".join(caption.split()))
    if not body:
        return None
    ending = "." if "." in ending else ""
    seed = zlib.crc32(body.encode("utf-8"))
    for candidate in _candidates(body, seed):
        if (candidate and normalise(candidate) != normalise(body) and keeps_polarity(body, candidate)
                and (dangling_verb(candidate) is None or dangling_verb(body) is not None)):
            return _sentence_case(body, candidate) + ending
    return None


def _candidates(body: str, seed: int) -> Iterator[str]:
    """Best first: restructured with one synonym, two synonyms alone, restructured alone, a plainer
    rewrite (with a synonym when one applies), framed."""
    restructured = _front_place(_restructure(body) or body)
    yield _synonyms(restructured, seed, 1)
    yield _synonyms(body, seed, 2)
    yield restructured
    fallback = _fallback(body)
    if fallback:
        yield _synonyms(fallback, seed, 1)
    yield _framed(body)


def _restructure(text: str) -> str | None:
    """The caption as a full sentence of another shape, or None when its shape has no safe rewrite."""
    reduced = _RELATIVE_HAS.sub(" with ", _RELATIVE_BE.sub(" ", text))
    if reduced != text:
        return reduced  # "a cat that is sitting in a sink" -> "a cat sitting in a sink"
    tokens = tokenize(text)
    if not tokens:
        return None
    predicate = find_predicate(text)
    if predicate is None:
        return _existential(text, tokens)
    i, token = predicate.index, tokens[predicate.index]
    attached = _depicts(tokens[:i]) or any(t.lower == "with" for t in tokens[:i])  # "bears with snow falling"
    if predicate.kind == "participle" and not attached and not _has_verb_before(tokens, i + 1):
        be = "are" if subject_is_plural(tokens, i) else "is"
        return f"{text[:token.start]}{be} {text[token.start:]}"
    if predicate.kind in ("present_s", "present_base"):
        second = coordinated_verb(tokens, i)
        if second is not None:  # "is standing and showing", not "... and shows"
            other = tokens[second]
            base = verb_base(other.lower)
            text = f"{text[:other.start]}{present_participle(base)}{text[other.end:]}"
    if predicate.kind == "present_s":
        return f"{text[:token.start]}is {present_participle(verb_base(token.lower))}{text[token.end:]}"
    if predicate.kind == "present_base" and tokens[i - 1].lower not in PRONOUN_SUBJECTS:
        return f"{text[:token.start]}are {present_participle(token.lower)}{text[token.end:]}"
    if tokens[0].lower == "there" and i == 1 and token.lower in ("is", "are") and i + 1 < len(tokens):
        return _without_there(text[tokens[2].start :], token.lower, noun_phrase=False)
    if tokens[0].lower not in _INDEFINITE or "," in text[: token.start] or tokens[i - 1].lower in _RELATIVES:
        return None
    if any(t.lower.endswith("ing") and is_participle(t.lower) and p.lower not in DETERMINERS for p, t in zip(tokens, tokens[1:i])):
        return None  # "there is a lady holding an umbrella crossing the street" reads as two actions
    subject = _lower_first(text[: token.start].rstrip(), tokens[0])
    if predicate.kind == "auxiliary" and token.lower in ("is", "are") and i + 1 < len(tokens):
        return f"there {token.lower} {subject} {text[tokens[i + 1].start:]}"  # "a dog is on a sofa"
    if predicate.kind == "have" and token.lower in ("has", "have") and i + 1 < len(tokens):
        return f"there {'is' if token.lower == 'has' else 'are'} {subject} with {text[tokens[i + 1].start:]}"
    return None


def _fallback(text: str) -> str | None:
    """Plainer rewrites, tried when no restructuring or synonym applies: "there is X" -> "X",
    "the truck is plowing" -> "the truck plows"."""
    tokens = tokenize(text)
    predicate = find_predicate(text)
    if predicate is None or predicate.kind != "auxiliary" or predicate.index + 1 >= len(tokens):
        return None
    i, be = predicate.index, tokens[predicate.index].lower
    if tokens[0].lower == "there" and i == 1 and be in ("is", "are"):
        return _without_there(text[tokens[2].start :], be, noun_phrase=True)
    if "," in text[: tokens[i].start] or tokens[i - 1].lower in _RELATIVES:
        return None
    return _simple_present(text, tokens, i)


def _without_there(rest: str, be: str, noun_phrase: bool) -> str | None:
    """ "there is a doll standing in a bathroom" -> "a doll is standing in a bathroom";
    "there is a bus stop with a bench" -> "a bus stop with a bench"."""
    tokens = tokenize(rest)
    if not tokens or not (tokens[0].lower in _INDEFINITE or tokens[0].lower in ("something", "someone", "no")):
        return None
    predicate = find_predicate(rest)
    if predicate is None:
        return rest if noun_phrase and not _looks_like_verb_phrase(tokens) else None
    if predicate.kind != "participle" or _has_verb_before(tokens, predicate.index + 1):
        return None
    if subject_is_plural(tokens, predicate.index) != (be == "are"):
        return None  # "there are a bunch of people cross-country skiing": the participle is not the subject's
    start = tokens[predicate.index].start
    return f"{rest[:start]}{be} {rest[start:]}"


def _simple_present(text: str, tokens: Sequence[Token], i: int) -> str | None:
    """ "the truck is plowing the snow" -> "the truck plows the snow" (the reverse of "rides" -> "is riding")."""
    be = tokens[i].lower
    if be not in ("is", "are") or i + 1 >= len(tokens) or i == 0:
        return None
    base = _PROGRESSIVE.get(tokens[i + 1].lower)
    if base is None or tokens[i + 1].text != tokens[i + 1].lower:
        return None
    verb = third_person(base) if be == "is" else base
    return f"{text[: tokens[i].start]}{verb}{text[tokens[i + 1].end :]}"


def _framed(text: str) -> str:
    """Last resort, true of any caption because it describes an image."""
    tokens = tokenize(text)
    return "in this image, " + (_lower_first(text, tokens[0]) if tokens else text)


def _depicts(subject: Sequence[Token]) -> bool:
    """ "a photo of a girl sitting": the participle belongs to the girl, not to the photo."""
    words = [t.lower for t in subject]
    return any(w in _DEPICTIONS for w in words) or any(a == "close" and b == "up" for a, b in zip(words, words[1:]))


def _has_verb_before(tokens: Sequence[Token], index: int) -> bool:
    """A verb already before the participle ("a goat leans propped") leaves no room for "is"."""
    return any(
        t.lower in AUXILIARIES or t.lower in HAVE_FORMS or t.lower in THIRD_PERSON or t.lower.endswith("n't")
        or t.lower == "been"
        for t in tokens[: index - 1]
    )


def _existential(text: str, tokens: Sequence[Token]) -> str | None:
    """ "Two dogs on a beach" -> "there are two dogs on a beach" (indefinite subjects only)."""
    first = tokens[0].lower
    if any(t.lower in _FINITE for t in tokens) or _looks_like_verb_phrase(tokens):
        return None
    if first in ("a", "an"):
        be = "is"
    elif first in _INDEFINITE or (first.endswith("s") and not first.endswith("ss")):
        be = "are"
    else:
        return None
    return f"there {be} {_lower_first(text, tokens[0])}"


def _looks_like_verb_phrase(tokens: Sequence[Token]) -> bool:
    """ "an office view shows cubicles": a verb the predicate finder let pass, not a noun like "lights on"."""
    for word, nxt in zip(tokens, tokens[1:]):
        if word.lower in THIRD_PERSON or word.lower in VERB_BASES:
            if nxt.lower in DETERMINERS:
                return True
            if word.lower in THIRD_PERSON and nxt.lower not in PREPOSITIONS and nxt.lower not in ("and", "or"):
                return True
    return False


def _front_place(text: str) -> str:
    """Move a closing place phrase to the front: "a man is riding a horse on a beach" -> "On a beach, ..."."""
    tokens = tokenize(text)
    predicate = find_predicate(text)
    verbs = {t.lower for t in tokens[predicate.index : predicate.index + 2]} if predicate else set()
    if any(THIRD_PERSON.get(verb, verb) in _PLACING for verb in verbs):
        return text  # "puts a hand in a dish": the place belongs to the verb's object
    if predicate is not None and predicate.kind == "participle":
        return text  # "On a bench, a man sitting" would be a fragment
    if tokens and (tokens[0].lower in PREPOSITIONS or tokens[0].lower.endswith("ing")) and "," in text:
        return text  # "On a rainy afternoon, ...": one opening phrase is enough
    start = predicate.index + 1 if predicate else 3
    for i in range(max(start, 3), len(tokens) - 1):
        if _is_place_phrase(text, tokens, i):
            rest = text[: tokens[i].start].rstrip(" ,")
            return f"{text[tokens[i].start:]}, {_lower_first(rest, tokens[0])}"
    return text


def _is_place_phrase(text: str, tokens: Sequence[Token], i: int) -> bool:
    """A locative phrase from token i to the end, with nothing in it that points back or acts."""
    word = tokens[i].lower
    span = _MULTIWORD_PLACES.get(word)
    if span and " ".join(t.lower for t in tokens[i : i + len(span) + 1]) == " ".join((word, *span)):
        after = i + len(span) + 1
    elif word in _PLACES:
        after = i + 1
    else:
        return False
    tail = tokens[i:]
    before = tokens[i - 1].lower
    return (
        after < len(tokens)
        and before not in AUXILIARIES and before not in HAVE_FORMS and before not in _SOURCES
        and before not in ("and", "or")  # "on the wall and on a shelf": the second of two places stays
        and not (is_participle(before) and not _at_a_place(tokens, i - 1))
        and not any(t.lower in _REST_BLOCKERS for t in tokens[:i])
        and not _depicts(tokens[:i])  # "a photo of trains on the tracks": the trains are there, not the photo
        and tokens[after].lower in _PLACE_DETERMINERS
        and "," not in text[tokens[i].start :] and ";" not in text[tokens[i].start :]
        and not any(t.lower in _PP_BLOCKERS or t.lower in AUXILIARIES or is_participle(t.lower) for t in tail)
        and not (word == "in" and before in _WEARERS)  # "a man in a suit" is what he wears
        and not (before.endswith("ly") or before in _PHRASE_ADVERBS)  # "early in the morning" stays whole
        and not (word == "at" and (_has_object(text, tokens, i) or before in PREPOSITIONS))  # "looking down at"  # "swinging a bat at a pitch": a target, not a place
    )


def _at_a_place(tokens: Sequence[Token], i: int) -> bool:
    """ "is sleeping" before "on the bed": a finite clause whose verb happens at the place."""
    return i > 0 and tokens[i].lower in _AT_A_PLACE and tokens[i - 1].lower in ("is", "are", "was", "were")


def _has_object(text: str, tokens: Sequence[Token], i: int) -> bool:
    predicate = find_predicate(text)
    start = predicate.index + 1 if predicate else 0
    return any(t.lower in DETERMINERS for t in tokens[start:i])


def _lower_first(text: str, first: Token) -> str:
    if keeps_capital(first.text) or not text:
        return text
    return text[:1].lower() + text[1:]


@lru_cache(maxsize=1)
def _synonym_table() -> tuple[dict[str, str], frozenset[str], int]:
    """The curated list: phrase -> replacement, the phrases' first words, the longest phrase in words."""
    table: dict[str, str] = {}
    source = resources.files("triplegen").joinpath("data/synonyms.tsv").read_text(encoding="utf-8")
    for line in source.splitlines():
        if line.strip() and not line.startswith("#"):
            word, replacement = line.split("\t")
            table[" ".join(word.lower().split())] = replacement.strip()
    return table, frozenset(p.split()[0] for p in table), max(len(p.split()) for p in table)


def _synonym_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) of each listed phrase, longest match first, left to right."""
    table, firsts, longest = _synonym_table()
    tokens = tokenize(text)
    spans: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        step = 1
        if tokens[i].lower in firsts:
            for n in range(min(longest, len(tokens) - i), 0, -1):
                words = tokens[i : i + n]
                phrase = " ".join(t.lower for t in words)
                if phrase in table and all(text[a.end : b.start] == " " for a, b in zip(words, words[1:])):
                    spans.append((words[0].start, words[-1].end, table[phrase]))
                    step = n
                    break
        i += step
    return spans


def _synonyms(text: str, seed: int, budget: int) -> str:
    """Replace `budget` of the listed phrases, picked by `seed`, fixing "a"/"an" before them."""
    spans = _synonym_spans(text)
    if not spans:
        return text
    picked = sorted({(seed + k * 7) % len(spans) for k in range(budget)}, reverse=True)
    for index in picked:
        start, end, replacement = spans[index]
        replacement = _cased_like(text[start:end], replacement, text, start == 0)
        text = _fix_article(text[:start], replacement) + replacement + text[end:]
    return text


def _cased_like(original: str, replacement: str, text: str, first: bool) -> str:
    if text.isupper():
        return replacement.upper()
    if first and original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


_ARTICLE = re.compile(r"\b([Aa]n?)(\s+)$")


def _fix_article(before: str, word: str) -> str:
    match = _ARTICLE.search(before)
    if not match:
        return before
    article = "an" if word[:1].lower() in "aeiou" and not word.lower().startswith(("uni", "one", "use")) else "a"
    article = article.capitalize() if match.group(1)[0].isupper() else article
    return before[: match.start(1)] + article + match.group(2)


def _sentence_case(original: str, text: str) -> str:
    if original.isupper():
        return text.upper()
    letter = _FIRST_LETTER.search(original)
    if letter and letter.group(0).isupper():  # '"Open" is written ...' starts with a capital too
        at = _FIRST_LETTER.search(text)
        return text[: at.start()] + at.group(0).upper() + text[at.end() :] if at else text
    return text


_FIRST_LETTER = re.compile(r"[^\W\d_]")
