"""Rule-based negation of a caption, chosen by the caption's structure.

Captions come in a few shapes, and each has one natural explicit negation:

- already negated ("a room with no people"): remove every cue ("a room with people");
- "there is/are" sentences: "there is a cat" -> "there is no cat";
- a finite verb: auxiliaries take "not" ("is riding" -> "is not riding"), "has" becomes "does not
  have", present-tense verbs take do-support ("rides" -> "does not ride", "play" -> "do not play");
- a participle after the subject ("a man riding a horse") takes "not" before it;
- a noun phrase whose subject has a "with" phrase ("a kitchen with a stove", "a man with a hat riding a
  bike") denies what "with" names: "a kitchen with no stove", as people write it, not "no kitchen with
  a stove";
- a bare noun phrase ("two dogs on a beach") has its determiner replaced: "no dogs on a beach".

Whichever predicate comes first in the caption is negated, so a relative clause before the main
verb may be the one negated; the result is still a false version of the caption, which is what the
negation is for. Every candidate is confirmed with the polarity detector the checks use, and
`negate` returns None rather than an edit it cannot vouch for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from triplegen.rules.clause import coordinated_verb, find_predicate, is_plural
from triplegen.rules.lexicon import (
    AUXILIARIES,
    CONTRACTED_BE,
    DETERMINERS,
    HAVE_FORMS,
    PLURAL_QUANTIFIERS,
    PREPOSITIONS,
    PRONOUN_SUBJECTS,
    QUANTIFIER_PHRASES,
    THIRD_PERSON,
    VERB_BASES,
    Token,
    capitalise_like,
    keeps_capital,
    match_case,
    split_ending,
    third_person,
    verb_base,
    tokenize,
)
from triplegen.rules.polarity import cue_spans, flips_polarity

# Nouns that stay without an article when "no" goes ("no water" -> "water"): whether captions count a
# noun is a reading lemminflect does not record.
_MASS_NOUNS = frozenset(
    "water food grass snow sand hair light traffic milk furniture luggage fruit meat rice bread "
    "smoke space room one".split()
)
# What a removed negation cue leaves in its place ("nobody" -> "somebody"): pairs within a closed class
# of cues (triplegen.rules.polarity), which no library pairs this way.
_CUE_REMOVALS = {
    "no one": "someone", "no-one": "someone", "nobody": "somebody", "nothing": "something",
    "nowhere": "somewhere", "none": "some", "never": "", "not": "", "cannot": "can", "without": "with",
    "neither": "both", "nor": "and", "free of": "full of", "devoid of": "full of", "void of": "full of",
    "empty of": "full of", "lack": "have", "lacks": "has", "lacked": "had", "lacking": "with",
    "absent": "present", "absence of": "presence of",
}
# The reverse, for negating "something", "someone", "somebody".
_SOME = re.compile(r"some(?:thing|one|body)\b", re.IGNORECASE)
_NO_FOR_SOME = {"something": "nothing", "someone": "no one", "somebody": "nobody"}
# -ing words that open a caption as nouns ("parking lot ..."), not as "nobody is parking": the reading
# of lexicon.NOT_PARTICIPLES for a first word.
_NOUN_STARTS = frozenset("building buildings ceiling clothing parking dining living wedding evening morning".split())
# Words after "with" that open no object to deny: pronouns ("with it", "with each other"), and possessives,
# which mostly describe a pose ("a dog with its head out of a window").
_NOT_NOUN_PHRASE = frozenset("it them him me us you each one other another his her its their my our your".split()) \
    | PREPOSITIONS
# Counts that "no" replaces with the "of" after them: "with dozens of umbrellas" -> "with no umbrellas".
_COUNT_OF = re.compile(r"(?:dozens|hundreds|thousands|plenty|tons|loads|rows|piles|stacks)\s+of\s+", re.IGNORECASE)
_DO_SUPPORT = re.compile(r"\b(does|do)\s+([a-z]+)\b")
_YET = re.compile(r"\s+yet\b", re.IGNORECASE)
# n't contractions whose stem is not the auxiliary ("won't" -> "will"); the others just drop "n't".
_NT = {"can't": "can", "won't": "will", "ain't": "is", "shan't": "shall"}
# Polarity words a removed cue leaves behind: "doesn't have any shoes" -> "has shoes", not "has any shoes".
_ANY_AFTER_CUE = re.compile(r"^((?:\s+[\w'\u2019-]+){0,2}?)\s+(any|anything|anyone|anybody)\b", re.IGNORECASE)
_ANY = {"any": "", "anything": "something", "anyone": "someone", "anybody": "somebody"}
_NO_MORE = re.compile(r"\s+(?:any\s?more|any\s+longer)\b", re.IGNORECASE)
_LONGER = re.compile(r"\s+longer\b", re.IGNORECASE)


def negate(caption: str) -> str | None:
    """An explicit negation of `caption`, or None when no rule gives one the checks would accept."""
    text, ending = split_ending(" ".join(caption.split()))
    if not text:
        return None
    for candidate in _candidates(text):
        if candidate and candidate != text and flips_polarity(text, candidate):
            return candidate + ending
    return None


def _candidates(text: str) -> Iterator[str | None]:
    if cue_spans(text):
        yield _remove_cues(text)
        return
    tokens = tokenize(text)
    if not tokens:
        return
    yield _there_is(text, tokens)
    yield _with_no(text, tokens)
    yield _verb_or_participle(text, tokens)
    yield _no_noun_phrase(text, tokens)
    yield _there_is_no(text, tokens)


def _splice(text: str, start: int, end: int, replacement: str) -> str:
    joined = text[:start] + replacement + text[end:]
    return " ".join(joined.replace(" ,", ",").split())


def _remove_cues(text: str) -> str:
    """Undo every negation: "a room with no people" -> "a room with people"."""
    original_text = text
    for start, end, cue in reversed(cue_spans(text)):
        original = text[start:end]
        text = _drop_polarity_items(text, end)
        if cue == "no" and _LONGER.match(text, end):
            end, replacement = _LONGER.match(text, end).end(), ""  # "no longer open" -> "open"
        elif cue == "not" and _YET.match(text, end):
            end, replacement = _YET.match(text, end).end(), ""  # "fruit not yet ripe" -> "fruit ripe"
        elif cue == "neither" and text[end:].lower().startswith(" of "):
            replacement = "each"  # "neither of the chairs is" -> "each of the chairs is": the verb stays singular
        elif cue == "no":
            replacement = _after_removed_no(text[end:])
        elif cue.endswith("n't"):
            stem = cue[:-3]
            replacement = _NT.get(cue, stem)
        else:
            replacement = _CUE_REMOVALS.get(cue, "")
        text = _splice(text, start, end, match_case(original, replacement) if replacement else "")
    return capitalise_like(original_text, _undo_do_support(text))


def _drop_polarity_items(text: str, end: int) -> str:
    """After the cue at `end`: drop "any more"/"any longer", and "any" -> "", "anything" -> "something"."""
    text = text[:end] + _NO_MORE.sub("", text[end:])
    near = _ANY_AFTER_CUE.match(text[end:])
    if near:
        word = near.group(2)
        at = end + near.start(2)
        replacement = match_case(word, _ANY[word.lower()])
        text = _splice(text, at, at + len(word), replacement) if replacement else _splice(text, at - 1, at + len(word), "")
    return text


def _undo_do_support(text: str) -> str:
    """ "does stop" (left by removing "not") -> "stops"; "do play" -> "play"."""

    def simple_present(match: re.Match[str]) -> str:
        verb = match.group(2)
        if verb.lower() not in VERB_BASES and verb.lower() != "have":
            return match.group(0)
        return third_person(verb) if match.group(1).lower() == "does" else verb

    return _DO_SUPPORT.sub(simple_present, text)


def _after_removed_no(rest: str) -> str:
    """ "no shoes" -> "shoes", "no hat" -> "a hat", "no water" -> "water"."""
    following = tokenize(rest)
    if not following:
        return ""
    noun = next((t.lower for t in following[:3] if t.lower not in PREPOSITIONS), following[0].lower)
    head = following[0].lower
    if is_plural(noun) or noun in _MASS_NOUNS or head in DETERMINERS:
        return ""
    return "an" if head[0] in "aeiou" else "a"


def _there_is(text: str, tokens: Sequence[Token]) -> str | None:
    """ "there is a cat" -> "there is no cat"; "there are people" -> "there are no people"."""
    for i, token in enumerate(tokens[:-1]):
        contracted = CONTRACTED_BE.match(token.text)
        is_there = token.lower == "there" and tokens[i + 1].lower in {"is", "are", "was", "were"}
        if not (is_there or (contracted and contracted.group(1).lower() == "there")):
            continue
        verb = token if contracted else tokens[i + 1]
        rest = text[verb.end:].lstrip()
        some = _SOME.match(rest)
        if some:
            return _splice(text, verb.end, verb.end + len(text[verb.end:]) - len(rest) + some.end(),
                           " " + _NO_FOR_SOME[some.group(0).lower()])
        quantifier = QUANTIFIER_PHRASES.match(rest)
        cut = verb.end + (len(text[verb.end:]) - len(rest)) + (quantifier.end() if quantifier else 0)
        return _splice(text, verb.end, cut, " " + _cased(verb.text, "no") + " ")
    return None


def _with_no(text: str, tokens: Sequence[Token]) -> str | None:
    """ "a kitchen with a stove" -> "a kitchen with no stove", in captions with no finite verb: the
    first "with" after the subject, before any participle, when a noun phrase follows it."""
    predicate = find_predicate(text)
    if not _opens_with_subject(tokens) or (predicate is not None and predicate.kind != "participle"):
        return None
    end = predicate.index if predicate is not None else len(tokens)
    at = next((i for i in range(1, end - 1) if tokens[i].lower == "with"), None)
    if at is None:
        return None
    following = tokens[at + 1]
    if not following.lower.isalpha() or following.lower in _NOT_NOUN_PHRASE \
            or text[tokens[at].end:following.start].strip():  # "with "Happy Birthday" written ...": sign text
        return None
    quantifier = QUANTIFIER_PHRASES.match(text[following.start:]) or _COUNT_OF.match(text[following.start:])
    cut = following.start + (quantifier.end() if quantifier else 0)
    if cut >= len(text):
        return None
    return _splice(text, tokens[at].end, cut, " " + _cased(tokens[at].text, "no") + " ")


def _verb_or_participle(text: str, tokens: Sequence[Token]) -> str | None:
    """Negate the first finite verb or subject participle, whichever the caption reaches first."""
    predicate = find_predicate(text)
    if predicate is None:
        return None
    token = tokens[predicate.index]
    kind = predicate.kind
    if token.lower == "can" and kind == "auxiliary":
        return _splice(text, token.end, token.end, _cased(token.text, "not"))  # "cannot"
    if kind in ("contracted", "auxiliary", "perfect"):
        return _splice(text, token.end, token.end, " " + _cased(token.text, "not"))
    if kind == "have":
        prev = tokens[predicate.index - 1].lower
        pronoun_do = "did" if token.lower == "had" else PRONOUN_SUBJECTS.get(prev)
        do = pronoun_do if prev in PRONOUN_SUBJECTS else HAVE_FORMS[token.lower]
        return _splice(text, token.start, token.end, _cased(token.text, f"{do} not have"))
    if kind == "present_s":
        second = coordinated_verb(tokens, predicate.index)
        if second is not None:  # "does not stand and show", not "... and shows"
            other = tokens[second]
            text = _splice(text, other.start, other.end, THIRD_PERSON.get(other.lower, other.lower))
        return _splice(text, token.start, token.end, _cased(token.text, f"does not {verb_base(token.lower)}"))
    if kind == "present_base":
        return _splice(text, token.start, token.end, _cased(token.text, f"do not {token.lower}"))
    return _splice(text, token.start, token.start, _cased(token.text, "not") + " ")


def _cased(template: str, words: str) -> str:
    """New words in capitals inside an all-capitals caption, else lower case."""
    return words.upper() if template.isupper() and len(template) > 1 else words


def _no_noun_phrase(text: str, tokens: Sequence[Token]) -> str | None:
    """ "two dogs on a beach" -> "no dogs on a beach"; "people walking" -> "no people walking"."""
    first = tokens[0]
    if not _opens_with_subject(tokens):
        return None
    if first.lower.endswith("ing") and first.lower not in _NOUN_STARTS:
        return _opening(text, "nobody is") + " " + (text if text.isupper() else text[:1].lower() + text[1:])
    some = _SOME.match(text)
    if some:
        return _opening(text, _NO_FOR_SOME[some.group(0).lower()]) + text[some.end():]
    quantifier = QUANTIFIER_PHRASES.match(text)
    if quantifier:
        return _opening(text, "no") + " " + text[quantifier.end():]
    rest = text if keeps_capital(first.text) else text[:1].lower() + text[1:]
    return _opening(text, "no") + " " + rest


def _opens_with_subject(tokens: Sequence[Token]) -> bool:
    """A noun phrase opens the caption, not "In a kitchen ...", "He ..." or "Is ..."."""
    first = tokens[0].lower
    return first not in PREPOSITIONS and first not in PRONOUN_SUBJECTS and first not in AUXILIARIES


def _opening(text: str, words: str) -> str:
    """New first words cased like the caption: "No", "no", or "NO" in an all-capitals caption."""
    if text.isupper():
        return words.upper()
    return words[:1].upper() + words[1:] if text[:1].isupper() else words


def _there_is_no(text: str, tokens: Sequence[Token]) -> str | None:
    """Last resort for noun phrases whose "no" reads as sign text: "there is no parking sign"."""
    quantifier = QUANTIFIER_PHRASES.match(text)
    if not quantifier:
        return None
    opening = quantifier.group(0).lower()
    plural = tokens[0].lower in PLURAL_QUANTIFIERS or opening.startswith(("a couple", "a few", "lots"))
    rest = text[quantifier.end():]
    return capitalise_like(text, f"there {'are' if plural else 'is'} no {rest}")
