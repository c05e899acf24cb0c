"""Where a caption's predicate starts: the one structural fact both rule generators need.

Negation puts "not" (or do-support) at the predicate, paraphrase turns a participle caption into a
sentence or a simple present into a progressive there. Without a tagger, a word is taken as the
predicate only when its neighbours leave no other reading: "lights" in "a woman lights a candle" is
a verb, in "traffic lights on a street" a noun.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import takewhile
from typing import Literal

from triplegen.rules.lexicon import (
    AUXILIARIES,
    CONJUNCTIONS,
    CONTRACTED_BE,
    DETERMINERS,
    HAVE_FORMS,
    IRREGULAR_PARTICIPLES,
    PLURAL_QUANTIFIERS,
    PREPOSITIONS,
    SINGULAR_DETERMINERS,
    THIRD_PERSON,
    VERB_BASES,
    Token,
    is_participle,
    only_a_verb,
    open_verb_base,
    tokenize,
)

Kind = Literal["contracted", "auxiliary", "perfect", "have", "present_s", "present_base", "participle"]

# The function words a candidate predicate's neighbours are read with (be forms, modals, verb particles,
# object pronouns): closed classes; without a tagger only such lists say what may follow a verb.
_BE = frozenset("is are was were am".split())
_MODALS_NEEDING_VERB = frozenset("can will may must might could would should does do did".split())
PARTICLES = frozenset("up down out off away together around back over along about".split())
OBJECT_WORDS = frozenset("it them him her his their its one something someone".split())
# Plural nouns without an -s. lemminflect knows most ("men", "geese") but takes "sheep", "fish", "deer"
# for their singular lemma; here they count as plural unless a singular determiner says otherwise.
IRREGULAR_PLURALS = frozenset("people men women children sheep cattle geese mice feet teeth police fish deer".split())
# Same form in both numbers: "a sheep" is one, "two sheep" are several (lemminflect's first plural
# of "fish" and "bison" is "fishes", "bisons": the zero plural is the reading captions mean).
INVARIANT_NOUNS = frozenset("sheep fish deer moose bison buffalo aircraft series species".split())
# Posture and appearance verbs a participle or adjective can follow ("sits parked", "looks tired"): a use of
# the verb, not a form, so no dictionary marks it.
_LINKING = frozenset("sit stand look seem appear lie lay rest remain stay sleep wait".split())
# Words after which an -ing/-ed word is an adjective ("red and white striped", "freshly baked"): a reading
# of captions no library makes.
_NOT_BEFORE_PARTICIPLE = frozenset("and or very well freshly newly brightly partially half".split())
# Finite verbs of a singular subject, and the words that open another clause: closed classes that bound
# the search for a main verb after a participle phrase.
_SINGULAR_FINITE = frozenset("is was has can will could would does".split())
_CLAUSE_BREAKS = frozenset("while as where when what that which who whose because so if".split())
# -s forms that are at least as often plural nouns after another noun: "street lights", "bus stops";
# lemminflect knows both readings, so which one captions mean is chosen here.
_NOUN_LIKE_VERBS = frozenset(
    "lights stands lines waves stops tops blocks covers frames points races plays shows rides leaves".split()
)
# Quantifiers that start with "a" yet make the subject plural ("a couple of men"): a closed class.
_PLURAL_PHRASES = [["a", "couple"], ["a", "few"], ["a", "lot"], ["a", "number"], ["a", "pair"]]
# Colour words an -ed adjective follows ("a white tiled floor", "dark colored"); wider than
# opposites.COLOURS, which holds only colours that exclude each other.
_COLOURS = frozenset(
    "red white black blue green yellow brown orange pink purple gray grey silver gold tan dark light".split()
)


@dataclass(frozen=True)
class Predicate:
    """The first predicate word of a caption: `index` into its tokens and what kind of word it is."""

    kind: Kind
    index: int


def is_plural(word: str) -> bool:
    return word in IRREGULAR_PLURALS or (
        word.endswith("s") and not word.endswith(("ss", "us", "is", "'s")) and len(word) > 3
    )


@lru_cache(maxsize=4096)
def find_predicate(text: str) -> Predicate | None:
    """The first finite verb or subject participle, whichever the caption reaches first.

    Cached: negation and paraphrase both ask it about the same caption.
    """
    tokens = tokenize(text)
    for i in range(len(tokens)):
        kind = _kind_at(text, tokens, i)
        if kind == "participle" or (kind is None and _leads_participle_phrase(tokens, i)):
            later = _verb_after_participle_phrase(text, tokens, i)
            if later is not None:
                return later
        if kind is not None:
            return Predicate(kind, i)
    return None


def _leads_participle_phrase(tokens: Sequence[Token], i: int) -> bool:
    """ "a woman wearing sunglasses ...": a participle with an object the finder does not take as predicate."""
    return is_participle(tokens[i].lower) and _previous_is_noun(tokens, i) and _participle_after_noun(tokens, i)


def _verb_after_participle_phrase(text: str, tokens: Sequence[Token], i: int) -> Predicate | None:
    """ "A banner reading "Welcome" hangs over a door", "a woman holding an umbrella is crossing": the
    participle describes a singular subject whose own verb comes later, so that verb is the predicate."""
    if tokens[0].lower not in SINGULAR_DETERMINERS and tokens[0].lower != "the":
        return None
    coordinated = False
    for j in range(i + 2, len(tokens) - 1):
        word = tokens[j].lower
        if word in _CLAUSE_BREAKS or "," in text[tokens[j - 1].end : tokens[j].start]:
            return None
        coordinated = coordinated or word == "and"
        if word in _SINGULAR_FINITE and not coordinated and _previous_is_noun(tokens, j):
            kind = _kind_at(text, tokens, j)  # not after "and": "a bear standing on rocks and his ears are up"
            return Predicate(kind, j) if kind is not None else None
        if (
            word in THIRD_PERSON and word not in _NOUN_LIKE_VERBS and tokens[j - 1].lower not in ("and", "or")
            and not is_participle(tokens[j - 1].lower)  # "people riding skis": an object, not a verb
            and text.count('"', 0, tokens[j].start) % 2 == 0
            and _previous_is_noun(tokens, j) and _next_allows_verb(text, tokens, j)
        ):
            return Predicate("present_s", j)
    return None


def _kind_at(text: str, tokens: Sequence[Token], i: int) -> Kind | None:
    word = tokens[i].lower
    nxt = tokens[i + 1].lower if i + 1 < len(tokens) else ""
    if CONTRACTED_BE.match(tokens[i].text):
        return "contracted"
    if word in AUXILIARIES:
        if word in _MODALS_NEEDING_VERB and not (nxt == "be" or nxt in VERB_BASES or nxt in PARTICLES):
            return None
        return None if (word in _BE and i == 0) else "auxiliary"
    if word in HAVE_FORMS and i > 0:
        perfect = nxt == "been" or nxt in IRREGULAR_PARTICIPLES or (is_participle(nxt) and not nxt.endswith("ing"))
        return "perfect" if perfect else "have"
    if not _previous_is_noun(tokens, i):
        return None
    if _open_verb_at(text, tokens, i):
        return "present_s"
    # "sits parked" is a linking verb; "stands selling" is more likely a noun ("fruit stands selling")
    linking = THIRD_PERSON.get(word, word) in _LINKING and not nxt.endswith("ing")
    if not (linking or _next_allows_verb(text, tokens, i)):
        return None
    plural_subject = tokens[0].lower in PLURAL_QUANTIFIERS
    verb_reading = linking or _singular_subject(tokens, i) or _takes_object(tokens, i)
    prev = tokens[i - 1].lower
    after_participle = prev.endswith("ing") and is_participle(prev)  # "a man riding skis": an object
    if word in THIRD_PERSON and not plural_subject and verb_reading and not after_participle:
        return "present_s"
    if word in VERB_BASES and not after_participle and _plural_subject_before(tokens, i) and (
        linking or _takes_object(tokens, i, True) or coordinated_verb(tokens, i) is not None
    ):
        return "present_base"
    if not after_participle and _open_verb_at(text, tokens, i, "VBP"):
        return "present_base"  # "two chefs garnish a plate": a verb outside the hand-kept list
    if is_participle(word) and _participle_after_noun(tokens, i) and text.count('"', 0, tokens[i].start) % 2 == 0:
        return "participle"
    return None


def _open_verb_at(text: str, tokens: Sequence[Token], i: int, tag: str = "VBZ") -> bool:
    """A verb the hand-kept list lacks ("a chef garnishes a plate", "two chefs garnish a plate"), taken
    only where a verb is the one reading: right after a plain subject noun phrase that opens the caption
    ("a chef", "two women"; a singular noun phrase cannot end in a plural noun), before an object or a
    preposition; or, after a longer subject, before an object ("a man in a red shirt welds a beam").
    Many such words are also nouns ("waters", "streaks"), hence the care. Called after `_previous_is_noun`."""
    word = tokens[i].lower
    if word in _NOUN_LIKE_VERBS or word in PREPOSITIONS or word in CONJUNCTIONS:
        return False
    if tag == "VBZ" and (word in THIRD_PERSON or open_verb_base(word) is None):
        return False
    if tag == "VBP" and (word in VERB_BASES or open_verb_base(word, "VBP") != word):
        return False
    if text.count('"', 0, tokens[i].start) % 2 or i + 1 < len(tokens) and text[tokens[i].end:tokens[i + 1].start].strip():
        return False  # quoted, or punctuation after it: "a No bicycles, skates or skateboards sign"
    nxt = tokens[i + 1].lower if i + 1 < len(tokens) else ""
    takes_object = nxt in DETERMINERS or nxt in OBJECT_WORDS
    between = tokens[1:i]
    if any(t.lower in THIRD_PERSON or (tag == "VBZ" and open_verb_base(t.lower)) for t in between):
        return False  # "a collage displays colorful deserts": the verb came earlier
    plain = not any(t.lower in PREPOSITIONS or t.lower in CONJUNCTIONS or t.lower in DETERMINERS
                    or t.lower.endswith("ing") for t in between) and "," not in text[:tokens[i].start]
    if tag == "VBP" and not is_plural(tokens[i - 1].lower):
        return False  # "three young people", "two peanut butter": the plural noun must come first
    opener = ("a", "an") if tag == "VBZ" else PLURAL_QUANTIFIERS
    if plain and tokens[0].lower in opener and i >= 2:
        return (takes_object or _next_allows_verb(text, tokens, i) or (tag == "VBZ" and is_plural(nxt))
                or only_a_verb(word))  # "a barista pours milk": "pours" is no noun
    nearest = next((t.lower for t in reversed(tokens[:i]) if t.lower in DETERMINERS), None)
    return (tag == "VBZ" and takes_object and nearest not in PLURAL_QUANTIFIERS and _singular_subject(tokens, i)
            and not is_participle(tokens[i - 1].lower))


def _previous_is_noun(tokens: Sequence[Token], i: int) -> bool:
    if i == 0:
        return False
    prev = tokens[i - 1].lower
    return not (
        prev in DETERMINERS or prev in PREPOSITIONS or prev in AUXILIARIES or prev in HAVE_FORMS
        or (prev in CONJUNCTIONS and prev not in {"who", "that", "which"}) or prev.isdigit() or prev == "to"
    )


def _next_allows_verb(text: str, tokens: Sequence[Token], i: int) -> bool:
    """What may follow a verb: an object's determiner, a preposition, a particle, an adverb, the end."""
    if i + 1 >= len(tokens) or text[tokens[i].end:tokens[i + 1].start].strip():
        return True
    nxt = tokens[i + 1].lower
    return (
        nxt in DETERMINERS or nxt in PREPOSITIONS or nxt in PARTICLES or nxt in OBJECT_WORDS
        or nxt in {"and", "while"} or nxt.endswith("ly")
    )


def _singular_subject(tokens: Sequence[Token], i: int) -> bool:
    """ "A man rides", "She rides": a subject whose number says the -s word is a verb, not a plural."""
    first = tokens[0].lower
    return (first in SINGULAR_DETERMINERS or first in {"the", "he", "she", "it"}) and all(
        t.lower != "and" for t in tokens[:i]
    )


def _takes_object(tokens: Sequence[Token], i: int, prepositions: bool = False) -> bool:
    """A following word that only a verb could take: "lights a candle", not "lights on a street"."""
    if i + 1 >= len(tokens):
        return False
    nxt = tokens[i + 1].lower
    return (
        nxt in DETERMINERS or nxt in OBJECT_WORDS or nxt in PARTICLES or nxt.endswith("ly")
        or (prepositions and nxt in PREPOSITIONS)
    )


def _plural_subject_before(tokens: Sequence[Token], i: int) -> bool:
    prev = tokens[i - 1].lower
    return (
        is_plural(prev) or prev in {"they", "we", "you", "i"}
        or any(t.lower == "and" for t in tokens[:i]) or tokens[0].lower in PLURAL_QUANTIFIERS
    )


def _participle_after_noun(tokens: Sequence[Token], i: int) -> bool:
    """ "a man riding", "a bus parked": not "a red and white striped pole" (an adjective)."""
    prev = tokens[i - 1].lower
    return prev not in _NOT_BEFORE_PARTICIPLE and not (tokens[i].lower.endswith("ed") and prev in _COLOURS)


def coordinated_verb(tokens: Sequence[Token], i: int) -> int | None:
    """ "stands and shows", "sits on a ledge and looks": the second verb of a pair whose first is token i;
    it takes the first's form."""
    if i + 2 < len(tokens) and tokens[i + 1].lower == "and":
        word = tokens[i + 2].lower
        if word in THIRD_PERSON or (word in VERB_BASES and tokens[i].lower in VERB_BASES):
            return i + 2
    if tokens[i].lower not in THIRD_PERSON:
        return None
    for k in range(i + 1, len(tokens) - 1):
        word = tokens[k].lower
        if word in _CLAUSE_BREAKS or word in AUXILIARIES:
            return None
        if word == "and" and tokens[k + 1].lower in THIRD_PERSON and tokens[k + 1].lower not in _NOUN_LIKE_VERBS:
            return k + 1
    return None


def subject_is_plural(tokens: Sequence[Token], end: int) -> bool:
    """Number of the subject that ends before token `end` ("two dogs", "a couple of men", "a man and a dog")."""
    words = [t.lower for t in tokens[:end]]
    if not words:
        return False
    if words[0] in PLURAL_QUANTIFIERS or words[:2] in _PLURAL_PHRASES:
        return True
    if any(w == "and" and (nxt in DETERMINERS or is_plural(nxt)) for w, nxt in zip(words, words[1:])):
        return True  # "a man and a woman", "a dog and cats"; not "a black and white dog"
    head = list(takewhile(lambda w: w not in PREPOSITIONS, words))
    if not head or (head[-1] in INVARIANT_NOUNS and head[0] in SINGULAR_DETERMINERS):
        return False
    return is_plural(head[-1])
