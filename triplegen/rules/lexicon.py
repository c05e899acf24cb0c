"""The small English lexicon the rule generators read captions with: word classes and verb forms.

Captions are short, mostly noun phrases or simple present-tense sentences, so closed word classes
(determiners, prepositions, auxiliaries) plus a list of the verbs captions actually use are enough
to find the structure the rules need, at regex speed and without a tagger or a download.

One morphology: every inflected form (rides, riding, has) and every lemma comes from lemminflect's
dictionary (data in its wheel). The word lists here say what no dictionary knows: which of two
readings a caption means ("lines" is a verb in "people line up", a noun in "white lines").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

WORD = re.compile(r"[A-Za-z0-9]+(?:['\u2019\-][A-Za-z0-9]+)*")

# Closed word classes, split by the number a determiner agrees with ("a dog", "two dogs"): no library
# lists function words by number, and the taggers that know them need a model download.
SINGULAR_DETERMINERS = frozenset("a an one this that each every another".split())
PLURAL_QUANTIFIERS = frozenset(
    "two three four five six seven eight nine ten eleven twelve several many some few numerous "
    "multiple various these those both all lots".split()
)
DETERMINERS = SINGULAR_DETERMINERS | PLURAL_QUANTIFIERS | frozenset("the his her their its my our your".split())
# "a couple of dogs", "a lot of cars": the quantifier goes, the noun stays.
QUANTIFIER_PHRASES = re.compile(
    r"^(?:a\s+(?:couple|lot|number|few|handful|bunch|variety|pair)\s+of|lots\s+of|a\s+few|some\s+of|both\s+of|all\s+of"
    r"|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|several|many|some|numerous|multiple|various|few|all"
    r"|both|these|those|a|an|one|the|this|that|each|every|another)\s+",
    re.IGNORECASE,
)
# Closed classes of the words that end a noun phrase ("while" and "as" are both), listed for the same reason.
PREPOSITIONS = frozenset(
    "in on at near next by beside besides behind under over above below with of for from to into onto through "
    "across along alongside around between inside outside against atop toward towards underneath beneath past "
    "down up off out during among amongst like via upon within throughout than while as after before".split()
)
CONJUNCTIONS = frozenset("and or but while as where when that which who whose because so".split())
# Subject pronouns and the do-support each takes ("he does not", "they do not"): agreement, a closed class.
PRONOUN_SUBJECTS = {"he": "does", "she": "does", "it": "does", "they": "do", "we": "do", "i": "do", "you": "do"}

# Finite auxiliaries that take "not" directly after them, the have forms with the do-support that
# negates them ("has" -> "does not have"), and contracted "is": closed classes, as above.
AUXILIARIES = frozenset("is are was were am can could will would should must may might does do did".split())
HAVE_FORMS = {"has": "does", "have": "do", "had": "did"}
CONTRACTED_BE = re.compile(r"^(there|it|that|he|she|what|here)(['\u2019])s$", re.IGNORECASE)

# Words ending in -ing or -ed that are nouns or adjectives in captions, never participles: lemminflect
# knows "building" and "seed" as verb forms too, but not that captions use them as nouns.
NOT_PARTICIPLES = frozenset(
    """
    ceiling building clothing wedding sibling thing something anything everything nothing king ring string spring
    evening morning wing swing railing awning icing frosting stuffing topping dressing pudding sing bring during
    sling ping bling duckling dumpling seedling darling sterling earring offering painting drawing
    lightning tiling siding flooring lettering bedding netting seating shelving fencing plumbing
    housing parking dining living stocking stockings ending landing opening crossing
    red bed shed sled led hundred sacred naked wicked rugged ragged jagged bread speed seed weed steed
    need feed reed bleed breed tweed embed bobsled
    """.split()
)
# Irregular past participles that can follow a noun ("a kite flown by a boy"). lemminflect knows more
# of them, but many are also nouns or past tenses a caption uses otherwise ("a sweater worn"
# is one, "the red set" is not): the list is the readings captions mean.
IRREGULAR_PARTICIPLES = frozenset(
    """
    been gone done seen made taken given shown known grown thrown drawn worn torn broken chosen eaten fallen
    forgotten gotten hidden ridden risen spoken stolen woken written beaten bitten driven frozen shaken sworn
    begun sung sunk swum run come become held built bought brought caught fought left lost kept slept swept
    sold told found hung laid led lit made met paid put read said sent set shot shut sat stood struck stuck
    taught thought understood won wound
    """.split()
)

# Verbs captions use as main verbs, so that "rides" or "line" is read as a verb wherever it stands;
# their forms come from lemminflect. Not a morphology but a choice of reading that no library makes:
# lemminflect knows "plates", "post", "signs" and "bicycle" as verbs too, and reading every word it
# knows as a verb rewrote 872 of 14,365 COCO and SugarCrepe++ captions, mostly wrongly ("a light
# do not post", "No mopeds ... are signing"). Verbs outside the list are read as verbs only where
# no noun reading is left (`open_verb_base`, triplegen.rules.clause).
_VERB_BASES = """
ride sit stand hold play eat look walk lay lie fly run wait park carry wear watch hang rest cross drive pull
push contain show feature have throw catch hit swing kick jump skate ski surf swim climb grab bite chew drink
cook cut slice prepare serve hold lean face point read talk smile laugh pose stare sleep lounge graze roam
travel move head go come pass enter leave cover fill line sell display overlook border surround approach
follow lead chase fight share use try reach touch pet feed brush wash clean fix paint build take make give
keep put set place hug kiss shake wave ride sail row paddle tow haul land take-off taxi glide soar hover
perch sit stand stroll jog race chase dive float hang sit await stop turn make decorate top frame block
light adorn fill hover wade balance perform swing lift wear sport protect shelter hide peek peer gaze
admire observe check examine inspect work fly kneel crouch squat bend stretch reach hop rest grin cry
see watch drag sniff lick nap sleep snuggle cuddle huddle gather crowd line wait stand queue look appear seem
pat extend poke open press spray offer possess say film yield include grow support enjoy nuzzle groom guard
speak practice pitch attempt toss mix depict descend ascend launch compete leap snowboard splash bathe comb
trim chop peel stir bake grill roast boil melt arrange organize repair construct write photograph capture
yawn relax march sprint guide wander explore search hold await wear lay eat
hike shine glow live listen blow unload rush lunge provide dance sing bark beg browse drip hurry get
burn flow bounce dangle drift smell spin twirl scoot shovel mow rake sweep vacuum plow
""".split()


@lru_cache(maxsize=65536)
def _inflection(base: str, tag: str) -> str:
    """lemminflect's first form of `base` for a Penn tag; it spells words it does not know by rule."""
    from lemminflect import getInflection

    return getInflection(base, tag)[0]


def third_person(base: str) -> str:
    """rides, catches, flies, goes, has: the simple present of a singular subject."""
    return _inflection(base, "VBZ")


VERB_BASES = frozenset(_VERB_BASES) - {"have"}
THIRD_PERSON = {third_person(base): base for base in VERB_BASES}


def is_participle(word: str) -> bool:
    """True for "riding", "parked", "shown": a verb form that can follow a noun in a caption."""
    lower = word.lower()
    if lower in NOT_PARTICIPLES:
        return False
    if lower in IRREGULAR_PARTICIPLES:
        return True
    return len(lower) > 4 and (lower.endswith("ing") or lower.endswith("ed"))


_new_token = tuple.__new__  # skips NamedTuple's keyword handling: tokenizing is the hot path


class Token(NamedTuple):
    """One word of a caption and where it sits, so edits splice the original text."""

    text: str
    start: int
    end: int
    lower: str  # lower case, curly apostrophe straightened


@lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[Token, ...]:
    """The words of `text` with their offsets; cached because both generators re-read the same caption."""
    lowered = text.lower().replace("\u2019", "'")
    return tuple([
        _new_token(Token, (text[start:end], start, end, lowered[start:end]))
        for start, end in map(re.Match.span, WORD.finditer(text))
    ])


def split_ending(text: str) -> tuple[str, str]:
    """("A dog on a sofa", ".") from "A dog on a sofa. ": rules edit the body, the ending goes back after."""
    body = text.rstrip(" \t\n.!?;,")
    return body, "".join(text[len(body) :].split())


def match_case(template: str, word: str) -> str:
    """`word` written like `template`: "NO" under "A", "No" under "A" at a sentence start."""
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def keeps_capital(word: str) -> bool:
    """Acronyms and names keep their case when they stop being the first word ("TV", "McDonald's")."""
    return word == "I" or (len(word) > 1 and any(c.isupper() for c in word[1:]))


def capitalise_like(original: str, text: str) -> str:
    """Give `text` the sentence-initial case of `original` (lower-case captions stay lower-case)."""
    if not text:
        return text
    if original[:1].islower():
        return text
    return text[:1].upper() + text[1:]


_NOT_OPEN_VERBS = frozenset("be have do".split())  # auxiliaries: the rules treat them apart


@lru_cache(maxsize=65536)
def open_verb_base(form: str, tag: str = "VBZ") -> str | None:
    """The base of a verb form the list of caption verbs lacks ("garnishes" -> "garnish" for VBZ), from
    lemminflect's dictionary (in its wheel; an unknown word gets no guess), else None.

    Many such forms are also plural nouns ("plates", "waters"): callers accept one as a verb only
    where the words around it leave no other reading (triplegen.rules.clause)."""
    from lemminflect import getAllLemmas, getInflection

    lemmas = getAllLemmas(form).get("VERB")
    if not lemmas or lemmas[0] in _NOT_OPEN_VERBS:
        return None
    return lemmas[0] if form in getInflection(lemmas[0], tag) else None


@lru_cache(maxsize=65536)
def only_a_verb(form: str) -> bool:
    """ "pours", "fetches": lemminflect knows the word as a verb and as nothing else."""
    from lemminflect import getAllLemmas

    return set(getAllLemmas(form)) == {"VERB"}


def verb_base(form: str) -> str:
    """ "rides" -> "ride", "garnishes" -> "garnish": the base of a third-person verb form."""
    return THIRD_PERSON.get(form) or open_verb_base(form) or form


def present_participle(base: str) -> str:
    """riding, sitting, lying, seeing: the -ing form for "rides" -> "is riding"."""
    return _inflection(base, "VBG")


_GLUE = ("of", "with", "a", "the", "and", "in", "on", "to")  # what a small model glues onto a word
MAX_WORD_LETTERS = 18  # "counterrevolutionary" aside, no caption word is longer


@lru_cache(maxsize=65536)
def garbled(word: str) -> bool:
    """ "herdof", "roomwitha", "pizzadescriticalhetero...": letters a model glued into a word that is none.

    A word lemminflect does not know that is a word it knows followed by a glued-on function word, or
    a word longer than any caption's. Unknown words alone pass ("frisbee", "snowboarder" are unknown to it).
    """
    from lemminflect import getAllLemmas

    if len(word) > MAX_WORD_LETTERS:
        return True
    if not word.isalpha() or getAllLemmas(word):
        return False
    for glue in _GLUE:  # only at the end: "atop", "onboard", "towards" are words glued at the start
        head = word[: -len(glue)]
        if word.endswith(glue) and len(head) >= 3 and (getAllLemmas(head) or garbled(head)):
            return True
    return False
