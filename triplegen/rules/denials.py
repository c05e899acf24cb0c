"""How English denies an object in a caption: where the denial goes, and how an object is swapped.

A caption is a noun phrase ("A man riding a horse on a beach"), a sentence ("A man rides a horse on
the beach") or already holds a negation ("A street with no cars"). Each wording fits some of those
forms: "There is no dog in this picture of ..." needs a noun phrase after "of"; "..., but no dog"
ends a noun phrase, not a sentence; "..., and there is no dog either" only follows a negation. Each
wording has an affirmative twin ("..., with a dog"), so the false version of an absent-assert row
reads as naturally as the true one and a text-only model cannot tell them apart by style.

A swap ("a cat on a sofa, with no bed in sight" / "a cat on a bed, with no sofa in sight") replaces
the one mention of a shown object by an absent object of the same group (triplegen.rules.object_names),
keeping number and fixing the article, and never inside a compound ("book shelf").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lemminflect import getAllLemmas

from triplegen.rules.clause import find_predicate
from triplegen.rules.lexicon import (
    AUXILIARIES,
    CONJUNCTIONS,
    DETERMINERS,
    PREPOSITIONS,
    THIRD_PERSON,
    VERB_BASES,
    is_participle,
    keeps_capital,
    split_ending,
)
from triplegen.rules.object_names import INVARIANT, MASS_WORDS, PLURAL_ONLY, ObjectLexicon, ObjectName, plurals
from triplegen.rules.polarity import cue_spans
from triplegen.rules.scope import denied_spans

FORMS = ("phrase", "sentence", "negated")
# Captions that get no absent-object row, with the reason counted for them.
SKIPS = ("question", "imperative", "unparsed")
# How questions and instructions ("Look at ...") open, which no wording fits: a closed class, and the
# imperatives captions use (telling an imperative otherwise needs a parser).
_QUESTION_WORDS = frozenset("why what how who whom whose where when which is are was were do does did can could "
                            "would should will shall may might".split())
_IMPERATIVES = frozenset("look check enjoy take come see watch get let make try meet behold imagine note notice find "
                         "say please don't do have put give keep".split())
# Openings that already name the picture: "in this picture of a photo of ..." would say it twice.
_PICTURE_OPENINGS = re.compile(r"^(?:(?:a|an|the|this|some)\s+)?(?:close[\s-]?up|view|picture|photo|photograph|image"
                               r"|shot|snapshot|scene|pic|black and white|overhead|aerial)\b", re.IGNORECASE)


def caption_form(caption: str) -> str:
    """One of FORMS, or one of SKIPS for a caption that no wording fits."""
    text = " ".join(caption.split())
    body, _ = split_ending(text)
    words = body.lower().split()
    if "?" in text or (words and words[0] in _QUESTION_WORDS and len(words) > 1 and words[1] not in PREPOSITIONS):
        return "question"
    if not words or not any(c.isalpha() for c in body) or re.search(r"[.!;:]\s+\S", body) or len(words) > 40 \
            or body.count('"') % 2 or "(" in body:
        return "unparsed"
    if words[0] in _IMPERATIVES or words[0].startswith("let's"):
        return "imperative"
    if cue_spans(body):
        return "negated"
    predicate = find_predicate(body)
    return "phrase" if predicate is None or predicate.kind == "participle" else "sentence"


@dataclass(frozen=True)
class Wording:
    """One way to deny an object, and its affirmative twin; `{body}` is the caption without its ending."""

    name: str
    position: str  # "end" or "start"
    forms: frozenset[str]
    deny: str
    affirm: str
    asserts: bool = True  # also for absent-assert rows, whose false version is `affirm`
    body: str = "any"  # what the caption must be beyond its form: "noun phrase" or "list" (see `fits`)

    def fits(self, form: str, body: str) -> bool:
        """"in this picture of" takes a noun phrase only: no picture words, no finite verb anywhere;
        "and no", "No ... and" and a final "without" only join a plain list of things ("a plate of
        food on a table and no fork"), never a participle or a clause they would hang on, and an
        "and" never joins a caption that has one ("No bench and men and boys")."""
        if form not in self.forms:
            return False
        words = body.lower().split()
        if self.body == "noun phrase":
            return not _PICTURE_OPENINGS.match(body) and not set(words) & _FINITE
        if self.body == "list":
            joined = " and " in f" {self.deny} " and "and" in words
            return not joined and not set(words) & (_FINITE | _RELATIVE) and not any(
                w.endswith("ing") or is_participle(w) for w in words)
        return True


_BOTH = frozenset({"phrase", "sentence"})
# Words that show a finite verb or a clause, which the "noun phrase" and "list" wordings must not hang on
# (`Wording.fits`): closed classes.
_FINITE = AUXILIARIES | frozenset(THIRD_PERSON) | frozenset("has have had am 's".split())
_RELATIVE = frozenset("that which who whose where while when as".split())
# The wordings are a design choice of the dataset (see the module docstring), not language data.
WORDINGS = {w.name: w for w in (
    Wording("with no", "end", _BOTH, "{body}, with no {bare}", "{body}, with {a}"),
    # "without" at both ends of every form: a model that only ever saw "Without a dog in sight, ..."
    # learned that "without" denies the first object named, and read "a cat without a dog" backwards
    Wording("without in sight", "end", _BOTH, "{body}, without {a} in sight", "{body}, with {a} in sight"),
    # "no dog in sight" is an idiom its affirmative twins are not: a text-only model preferred the
    # true caption in 81% of absent-assert rows worded so (benchmarks/absent_quality.py), so it only
    # words captions whose false version is a swap
    Wording("in sight", "end", _BOTH, "{body}, with no {bare} in sight", "{body}, with {a} nearby", asserts=False),
    Wording("but no", "end", frozenset({"phrase"}), "{body}, but no {bare}", "{body}, and {a}"),
    Wording("and no", "end", frozenset({"phrase"}), "{body} and no {bare}", "{body} and {a}", body="list"),
    Wording("without a", "end", frozenset({"phrase"}), "{body} without {a}", "{body} with {a}", body="list"),
    Wording("but there is no", "end", frozenset({"sentence"}), "{body}, but there {be} no {bare}",
            "{body}, and there {be} {a}"),
    Wording("either", "end", frozenset({"negated"}), "{body}, and there {be} no {bare} either",
            "{body}, and there {be} {a}"),
    Wording("and no either", "end", frozenset({"negated"}), "{body}, and no {bare} either", "{body}, but {a}"),
    Wording("in this picture", "start", frozenset({"phrase"}), "There {be} no {bare} in this picture of {body}",
            "There {be} {a} in this picture of {body}", body="noun phrase"),
    Wording("no ... and", "start", frozenset({"phrase"}), "No {bare} and {body}", "{a} and {body}", body="list"),
    Wording("around", "start", _BOTH, "With no {bare} around, {body}", "With {a} around, {body}"),
    Wording("without", "start", _BOTH, "Without {a} in sight, {body}", "With {a} in sight, {body}"),
    # the one wording that opens on the "no" for a sentence ("No ... and" takes a list only): without it a
    # model never saw a sentence open on a denial and read "no B here, only a A" by position; swaps only,
    # as "in sight"
    Wording("no in sight", "start", _BOTH, "No {bare} in sight, {body}", "{a} in sight, {body}", asserts=False),
)}
# An absent-swap whose shown object the caption does not name: both objects go into the denial,
# which changes places in the false version ("with a dog but no cat" / "with a cat but no dog"); the
# caption's own words stay, so only the scope of "no" tells the two apart.
PAIR_WORDINGS = {w.name: w for w in (
    Wording("pair in sight", "end", _BOTH, "{body}, with {shown} but no {bare} in sight", ""),
    Wording("pair around", "start", _BOTH, "With {shown} but no {bare} around, {body}", ""),
)}
STYLES = (*WORDINGS, *PAIR_WORDINGS)


def wordings_for(form: str, body: str, position: str | None = None, asserting: bool = False) -> list[str]:
    """The names of the wordings that fit a caption body of this form (at `position`, if given; for an
    absent-assert row's caption, if `asserting`)."""
    return [w.name for w in WORDINGS.values()
            if w.fits(form, body) and position in (None, w.position) and (w.asserts or not asserting)]


def indefinite(word: str) -> str:
    """ "a dog", "an apple", "an SUV"; plural-only and mass nouns take none ("skis", "broccoli")."""
    if word.lower() in PLURAL_ONLY | MASS_WORDS:
        return word
    if word.isupper() and len(word) > 1:
        return ("an " if word[0] in "AEFHILMNORSX" else "a ") + word
    first = word.lower()
    vowel = first[:1] in "aeiou" and not first.startswith(("uni", "use", "usu", "eu", "one", "ewe", "ukulele"))
    return ("an " if vowel or first.startswith(("hour", "honest", "heir")) else "a ") + word


def is_plural_word(word: str) -> bool:
    return word.lower() in PLURAL_ONLY


def render(wording: str, body: str, word: str, deny: bool, shown: str = "") -> str:
    """The caption body with `word` denied (or affirmed) in `wording`; a pair wording also names the
    shown object `shown`."""
    chosen = WORDINGS.get(wording) or PAIR_WORDINGS[wording]
    if chosen.position == "start" and not keeps_capital(body.split(" ", 1)[0]):
        body = body[:1].lower() + body[1:]
    be = "are" if is_plural_word(word) else "is"
    return (chosen.deny if deny else chosen.affirm).format(body=body, bare=word, a=indefinite(word), be=be,
                                                           shown=indefinite(shown) if shown else "")


@dataclass(frozen=True)
class Swap:
    """Where an absent-swap puts the absent object: the caption with one shown object replaced."""

    present: str  # the shown label that gives up its place
    shown_word: str  # how the caption names it, singular ("sofa"), for the false version's denial
    body: str  # the caption body with the absent object in its place


# Words that cannot be the noun a swap replaces, and the words before it that fix its number: closed classes.
_NOT_NOUNS = PREPOSITIONS | CONJUNCTIONS | AUXILIARIES | DETERMINERS | frozenset(
    "has have had and or with who that which while there here being been".split())
_SINGULAR = frozenset("a an one another this that each every single".split())
_NUMBERS = frozenset("two three four five six seven eight nine ten several many multiple numerous various "
                     "these those both few couple dozen lots".split())
_NEXT_WORD = re.compile(r"\s*([A-Za-z]+)")


def _followed_by_noun(body: str, end: int, plural: bool) -> bool:
    """ "dog bed", "car wash", "book shelf": the mention modifies the next word, so it is no object of
    its own. A bare verb form follows only a plural subject ("dogs sit"; "a car wash" is a noun)."""
    match = _NEXT_WORD.match(body, end)
    if match is None or body[end:match.start(1)].strip():
        return False
    word = match.group(1).lower()
    if word in _NOT_NOUNS or word in THIRD_PERSON or is_participle(word) or word.endswith(("ing", "ly")) \
            or (plural and word in VERB_BASES):
        return False
    return "NOUN" in getAllLemmas(word)


def _after_noun(body: str, start: int) -> bool:
    """ "coffee mug", "wedding cake", "toy car": a noun before the mention makes a compound whose
    head cannot change ("coffee wine glass", "wedding donut"); adjectives ("red sofa") may stay."""
    match = re.search(r"([A-Za-z]+)\s+$", body[:start])
    if match is None:
        return False
    word = match.group(1).lower()
    if word in _NOT_NOUNS or word in _NUMBERS:
        return False
    lemmas = getAllLemmas(word)
    return "NOUN" in lemmas and "ADJ" not in lemmas


def _determiner(body: str, start: int) -> str:
    """The determiner of the noun at `start`, over up to three adjectives ("a large brown dog": "a");
    "" when there is none ("a bowl of broccoli", "dogs running")."""
    for word in reversed(re.findall(r"[A-Za-z']+", body[:start])[-4:]):
        word = word.lower()
        if word in DETERMINERS or word in _NUMBERS:
            return word
        if word in PREPOSITIONS or word in CONJUNCTIONS or word in AUXILIARIES or word in THIRD_PERSON \
                or word.endswith("ing") or is_participle(word):
            return ""
    return ""


def _singular_of(name: ObjectName, written: str) -> str | None:
    """The table word a mention is ("sofa"); None when it is a plural form ("sofas")."""
    lowered = " ".join(written.lower().split())
    return lowered if lowered in name.words else None


def swap_site(body: str, present: list[str], absent: str, lexicon: ObjectLexicon) -> Swap | None:
    """The first shown label that can give its place to `absent`, or None (then no swap is written)."""
    target = lexicon.name(absent)
    for label in present:
        if label == absent or not lexicon.share_group(label, absent):
            continue
        swap = _swap_one(body, lexicon.name(label), target, lexicon)
        if swap is not None:
            return swap
    return None


def _swap_one(body: str, shown: ObjectName, absent: ObjectName, lexicon: ObjectLexicon) -> Swap | None:
    spans = shown.mentions(body)
    if len(spans) != 1:  # named twice: replacing one would leave it named
        return None
    start, end = spans[0]
    written = body[start:end]
    before = _determiner(body, start)
    singular_word = _singular_of(shown, written)
    plural = singular_word is None or (written.lower() in INVARIANT and before not in _SINGULAR)
    if _followed_by_noun(body, end, plural) or _after_noun(body, start) \
            or any(s <= start < e for s, e in denied_spans(body)):
        return None
    word = absent.word
    if is_plural_word(written) != is_plural_word(word):
        return None  # "skis" are one pair: "with skis" is no "with snowboards", "two snowboards" no "two skis"
    if plural:
        if absent.mass:
            replacement = word if before not in _NUMBERS else None
        else:
            replacement = word if is_plural_word(word) else _plural(word)
    elif shown.mass or not before:
        replacement = word if absent.mass else None  # "a bowl of broccoli": only another mass noun fits
    else:
        replacement = None if absent.mass or is_plural_word(word) else word
    if replacement is None:
        return None
    if written[:1].isupper():
        replacement = replacement[:1].upper() + replacement[1:]
    head = body[:start]
    article = re.search(r"\b(a|an)\s+$", head, re.IGNORECASE)
    if article is not None:
        fixed = indefinite(replacement).split(" ", 1)[0]
        fixed = fixed.capitalize() if article.group(1)[:1].isupper() else fixed
        head = head[: article.start()] + fixed + " "
    swapped = head + replacement + body[end:]
    if lexicon.mentions(swapped, shown.label):
        return None  # still named by another word ("players ... person"): the denial would contradict it
    return Swap(shown.label, singular_word or _base_word(shown, written), swapped)


def _plural(word: str) -> str:
    return next((form for form in plurals(word) if form != word), word)


def _base_word(name: ObjectName, written: str) -> str:
    lowered = " ".join(written.lower().split())
    return next((w for w in name.words if lowered in plurals(w)), name.word)


