"""Quality checks of a generated triple, shared by `generate` (to decide a retry) and `validate`.

Each check is one small function that returns None (pass) or a stable reason code; the pipeline
counts the codes, so nothing here counts. Per output field the checks run in a fixed order and stop
at the first failure: a copy of the caption also "keeps polarity", and reporting that twice would
double-count one defect. `REASONS` lists every code the toolkit writes, including the pipeline's own
(parsing, truncation, backend failures) and the optional semantic check's, so that reports and the
dataset card can describe any code they meet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from triplegen.rules.dangling_verb import dangling_verb
from triplegen.rules.lexicon import garbled
from triplegen.rules.object_names import ObjectLexicon
from triplegen.rules.opposites import swapped_opposite
from triplegen.rules.polarity import cue_spans
from triplegen.rules.scope import read_objects

REASONS: dict[str, str] = {
    "empty_caption": "the source caption is missing, empty or only whitespace",
    "caption_too_long": "the source caption is longer than the configured maximum",
    "caption_control_chars": "the source caption holds a control character (NUL, escape, backspace...): a broken "
                             "export or binary data, not text to write about",
    "invalid_json": "the model output is not a JSON object",
    "missing_field": "the JSON object lacks the paraphrase or the negation string",
    "truncated": "the output hit the token limit before it was complete",
    "backend_error": "the backend returned no output for this caption",
    "empty_paraphrase": "the paraphrase is empty or only whitespace",
    "paraphrase_too_long": "the paraphrase is far longer than the caption or the character limit",
    "paraphrase_too_short": "the paraphrase has far fewer words than the caption",
    "paraphrase_meta": "the paraphrase talks about the task instead of the image",
    "paraphrase_copy": "the paraphrase repeats the caption (ignoring case, punctuation, spacing)",
    "paraphrase_polarity": "the paraphrase adds or removes a negation cue",
    "paraphrase_opposite": "the paraphrase trades a word of the caption for its opposite (\"inside\" -> \"outside\", "
                           "a colour for another)",
    "empty_negation": "the negation is empty or only whitespace",
    "negation_too_long": "the negation is far longer than the caption or the character limit",
    "negation_too_short": "the negation has far fewer words than the caption",
    "negation_meta": "the negation talks about the task instead of the image",
    "negation_copy": "the negation repeats the caption (ignoring case, punctuation, spacing)",
    "negation_unrelated": "the negation keeps too few of the caption's content words to be a minimal edit",
    "negation_polarity": "the negation neither adds nor removes a negation cue",
    "paraphrase_ungrammatical": "the paraphrase's noun phrase runs into a verb (\"there is a chef garnishes a plate\")",
    "negation_ungrammatical": "the negation's noun phrase runs into a verb (\"there is a chef garnishes a plate\")",
    "negation_equals_paraphrase": "the negation and the paraphrase are the same text",
    "paraphrase_unfinished": "the paraphrase stops mid-sentence (ends on \"of\", \"the\", \"that says\", \"and\", a comma, "
                             "or leaves a quote or bracket open)",
    "negation_unfinished": "the negation stops mid-sentence (ends on \"of\", \"the\", \"that says\", \"and\", a comma, "
                           "or leaves a quote or bracket open)",
    "paraphrase_repeats": "the paraphrase says a phrase twice that the caption says once (\"a stop sign ... above a stop sign\")",
    "negation_repeats": "the negation says a phrase twice that the caption says once",
    "paraphrase_garbled": "the paraphrase has a word that is none (\"herdof\", \"roomwitha\", 19+ letters)",
    "negation_garbled": "the negation has a word that is none (\"herdof\", \"roomwitha\", 19+ letters)",
    "negation_tautology": "the negation denies that something is what it has just named (\"a man in a tie is not a man\")",
    "low_paraphrase_similarity": "the paraphrase's sentence embedding is far from the caption's",
    "low_negation_similarity": "the negation's sentence embedding is far from the caption's (off topic)",
    # absent-object rows (--absent-objects): the caption must deny an object the image lacks
    "absent_not_denied": "the caption (or its paraphrase) does not deny the absent object",
    "absent_denies_present": "the caption (or its paraphrase) denies an object the image shows",
    "absent_caption_unrelated": "the caption keeps too few of the source caption's content words",
    "absent_caption_too_long": "the caption is far longer than the source caption or the character limit",
    "negation_keeps_truth": "the negation neither claims the absent object nor denies a shown one, so it is not false",
    # the optional blind check (--blind-model, triplegen.checks.blind): a text-only LM tells true from false
    "blind_detectable": "a text-only language model finds the negation far less likely than the caption (the row "
                        "can be told without the image)",
    "blind_disfluent": "a text-only language model finds an absent-object row's caption far less fluent than its "
                       "source caption",
}


@dataclass(frozen=True)
class CheckConfig:
    """Bounds of the checks.

    The defaults accept the human paraphrases of SugarCrepe++ (caption2) except 11 of 4,757: four
    exact copies and seven that say a negation with a word ("shirtless" -> "without shirts").
    """

    max_caption_chars: int = 1000
    max_output_chars: int = 1500
    min_length_ratio: float = 0.5  # output words / caption words, below this: too short
    max_length_ratio: float = 3.0  # above this (plus the slack): too long
    length_slack_words: int = 4  # short captions may grow by a few words ("Two dogs")
    # Share of the caption's content words a negation must keep. On SugarCrepe++ it rejects 0.19% of
    # the human hard negatives, no rules negation, and 98% of unrelated captions (rules_quality.py).
    min_negation_overlap: float = 0.25
    # Which words name which object label (`--object-synonyms`); None: the built-in COCO table.
    lexicon: ObjectLexicon | None = None


_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*")
_META = re.compile(
    r"\b(?:paraphras\w*|rephras\w*|negat\w*|caption|sentence)\b|^\s*(?:sure|certainly)\b|\bas an ai\b",
    re.IGNORECASE,
)


_FUNCTION_WORDS = frozenset(
    "a an the of in on at to with and or is are was were be been it its his her their this that there some".split()
)


# Words a finished caption does not end on. Auxiliaries are left out ("..., but a clock tower is."),
# and so are particles ("with a hat on"); a final "with" or "from" is taken as cut off although
# "no one to huddle with" is not. On SugarCrepe++ this flags 3 of 4,550 human paraphrases (two with
# a trailing comma, one with an unclosed quote) and no hard negative.
_DANGLING = frozenset(
    "a an the this that these those his their its my your our some any every no several "  # determiners
    "of to with from into onto at for than between toward towards upon via like "  # prepositions
    "and or but nor while because if whose which who whom where when "  # conjunctions, relatives
    "not very be been being "
    "says reads stating labeled labelled titled spelling".split()  # "a sign that says"
)
_SIGN_VERBS = frozenset({"reading", "saying"})  # dangling only after "sign", "that", "which"
_OPEN_ENDINGS = (",", ":", ";", "-", "(", "\u2013", "\u2014", "\u201c")


def unfinished(text: str) -> bool:
    """Whether `text` stops mid-sentence: a dangling last word, a trailing comma, an open quote or bracket."""
    text = text.strip()
    if not text:
        return False
    if text.endswith(_OPEN_ENDINGS) or text.count('"') % 2 or text.count("(") != text.count(")") \
            or text.count("\u201c") != text.count("\u201d"):
        return True
    words = _WORD.findall(text.lower())
    if not words:
        return False
    last = words[-1]
    return last in _DANGLING or (last in _SIGN_VERBS and len(words) > 1 and words[-2] in ("sign", "signs", "that", "which"))


_NOT_CONTENT = _FUNCTION_WORDS | {"no", "not", "without", "never", "nothing", "nobody", "none"}


def _repeated_phrases(lowered: tuple[str, ...]) -> set[tuple[str, str]]:
    """Pairs of adjacent content words that occur more than once."""
    pairs = [pair for pair in zip(lowered, lowered[1:]) if not (_NOT_CONTENT & set(pair))]
    return {pair for pair in pairs if pairs.count(pair) > 1}


_IDENTITY = re.compile(r"\b(?:(?:is|are|was|were)\s+not|(?:isn|aren|wasn|weren)['\u2019]t)\s+(?:a|an|the)\s+([^\W_]+)",
                       re.IGNORECASE)


def _singular(word: str) -> str:
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def tautology(text: str) -> bool:
    """"X ... is not a X": a negation that denies an identity it asserted, instead of a fact of the scene."""
    for match in _IDENTITY.finditer(text):
        named = _singular(match.group(1).lower())
        if named not in _FUNCTION_WORDS and named in {_singular(w) for w in _WORD.findall(text[: match.start()].lower())}:
            return True
    return False


def _content(lowered_words: Iterable[str]) -> set[str]:
    words = (w for w in lowered_words if w not in _FUNCTION_WORDS)
    return {w[:-1] if len(w) > 3 and w.endswith("s") else w for w in words}


def content_words(text: str) -> set[str]:
    """Lower-case words that carry content, plural -s stripped: what a minimal negation keeps."""
    return _content(_WORD.findall(text.lower()))


def normalise(text: str) -> str:
    """Text compared for copies: lower case, words only, single spaces."""
    return " ".join(_WORD.findall(text.lower()))


@dataclass(frozen=True)
class _Text:
    """What the checks read from one text, found once per triple: every check reads the same words.

    `lowered` compares as `normalise` does (words hold no spaces, so equal joins are equal tuples).
    """

    raw: str
    words: int
    lowered: tuple[str, ...]
    cues: int

    @classmethod
    def of(cls, text: str) -> _Text:
        lowered = tuple(_WORD.findall(text.lower()))
        # lower() can split a word outside ASCII ("İ" -> "i" + a combining dot), so count the original's
        words = len(lowered) if text.isascii() else len(_WORD.findall(text))
        return cls(text, words, lowered, len(cue_spans(text)))

    @property
    def meta(self) -> bool:
        """Searched only when asked: the caption's only when an output talks about the task."""
        return _META.search(self.raw) is not None


# C0 and C1 control characters other than the whitespace ones (tab, newline, carriage return), which
# captions scraped from the web hold and the checks read as spaces.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def check_caption(caption: str | None, config: CheckConfig = CheckConfig()) -> str | None:
    """None when the caption is usable as a source, else `empty_caption`, `caption_too_long` or
    `caption_control_chars` (a NUL or an escape code: a model would copy it into the texts, or stop at it)."""
    if caption is None or not caption.strip():
        return "empty_caption"
    if len(caption) > config.max_caption_chars:
        return "caption_too_long"
    if _CONTROL.search(caption):
        return "caption_control_chars"
    return None


# Each check: (caption, output, config) -> passes?  Its reason is "<field>_<suffix>".
Check = Callable[[_Text, _Text, CheckConfig], bool]


def _not_empty(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    return bool(output.raw.strip())


def _not_too_long(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    limit = config.max_length_ratio * caption.words + config.length_slack_words
    return len(output.raw) <= config.max_output_chars and output.words <= limit


def _not_too_short(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    return output.words >= config.min_length_ratio * caption.words


def _on_task(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """Chatter such as "Here is the negated caption: ..." unless the caption itself used the words."""
    return not output.meta or caption.meta


def _finished(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """A cut-off sentence ("A sign on a brick wall that says"), unless the caption itself is one."""
    return not unfinished(output.raw) or unfinished(caption.raw)


def _no_new_repeat(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """A small model pads with a phrase it already wrote ("a toilet seat is a small ... toilet seat");
    on SugarCrepe++ this flags 9 of 4,757 human paraphrases."""
    return not (_repeated_phrases(output.lowered) - _repeated_phrases(caption.lowered))


def _no_garbled_word(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """Letters glued into a word (triplegen.rules.lexicon.garbled), unless the caption has that word; on
    SugarCrepe++ this flags one of 9,514 human paraphrases and hard negatives ("in her armsin")."""
    said = set(caption.lowered)
    return not any(garbled(word) for word in output.lowered if word not in said)


def _no_tautology(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """No human hard negative of SugarCrepe++ has this shape; "A baseball player is not a baseball player" does."""
    return not tautology(output.raw) or tautology(caption.raw)


def _not_copy(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    return output.lowered != caption.lowered


def _minimal_edit(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """A negation edits the caption; a text about something else is no negation of it, "no" or not."""
    words = _content(caption.lowered)
    return not words or len(words & _content(output.lowered)) >= config.min_negation_overlap * len(words)


def _keeps_polarity(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """As `polarity.keeps_polarity`: the same number of negation cues."""
    return output.cues == caption.cues


def _flips_polarity(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """As `polarity.flips_polarity`: a cue added or removed."""
    return output.cues != caption.cues


def _no_opposite(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """A SugarCrepe++-style hard negative is no paraphrase (triplegen.rules.opposites); flags 3 of 4,757
    human paraphrases there, and 262 of its 788 replaced attributes."""
    return swapped_opposite(caption.lowered, output.lowered) is None


def _grammatical(caption: _Text, output: _Text, config: CheckConfig) -> bool:
    """No "there is a chef garnishes ..." (triplegen.rules.dangling_verb), unless the caption already reads so."""
    return dangling_verb(output.raw) is None or dangling_verb(caption.raw) is not None


_COMMON: list[tuple[str, Check]] = [
    ("empty", _not_empty),
    ("too_long", _not_too_long),
    ("too_short", _not_too_short),
    ("meta", _on_task),
    ("copy", _not_copy),
    ("unfinished", _finished),
    ("repeats", _no_new_repeat),
    ("garbled", _no_garbled_word),
    ("ungrammatical", _grammatical),
]
PARAPHRASE_CHECKS: list[tuple[str, Check]] = [*_COMMON, ("polarity", _keeps_polarity), ("opposite", _no_opposite)]
NEGATION_CHECKS: list[tuple[str, Check]] = [*_COMMON, ("unrelated", _minimal_edit), ("polarity", _flips_polarity),
                                            ("tautology", _no_tautology)]


def _first_failure(field: str, checks: list[tuple[str, Check]], caption: _Text, output: _Text | None,
                   config: CheckConfig) -> str | None:
    if output is None:
        return f"empty_{field}"
    for suffix, passes in checks:
        if not passes(caption, output, config):
            return f"empty_{field}" if suffix == "empty" else f"{field}_{suffix}"
    return None


def check_triple(caption: str, paraphrase: str | None, negation: str | None,
                 config: CheckConfig = CheckConfig()) -> list[str]:
    """Reason codes of a generated pair, [] when it passes: paraphrase first, then negation."""
    source = _Text.of(caption)
    said = _Text.of(paraphrase) if paraphrase is not None else None
    denied = _Text.of(negation) if negation is not None else None
    reasons = [
        reason
        for reason in (
            _first_failure("paraphrase", PARAPHRASE_CHECKS, source, said, config),
            _first_failure("negation", NEGATION_CHECKS, source, denied, config),
        )
        if reason is not None
    ]
    if said is not None and denied is not None and said.lowered == denied.lowered and denied.lowered:
        reasons.append("negation_equals_paraphrase")
    return reasons


def check_absent_triple(source: str | None, objects: Iterable[str], absent: str, caption: str | None,
                        paraphrase: str | None, negation: str | None, config: CheckConfig = CheckConfig()) -> list[str]:
    """Reason codes of an absent-object row, [] when it passes.

    The caption and its paraphrase must deny `absent` and no object of `objects` (what the image
    shows); the negation must change the truth: claim `absent` or deny a shown object. `source`, the
    input caption, is optional (validate does not have it) and bounds what the caption may drop.
    The paraphrase and negation are judged against the new caption with the usual checks, except the
    cue count: "a dog but no cat" / "a cat but no dog" has one cue on either side.
    """
    shown = [label for label in objects if label != absent]
    labels = [*shown, absent]
    if caption is None or not caption.strip():
        return ["absent_not_denied"]
    reasons = _absent_statement(caption, shown, absent, labels, config.lexicon)
    if source is not None:
        before, after = _Text.of(source), _Text.of(caption)
        if not _not_too_long(before, after, config):
            reasons.append("absent_caption_too_long")
        elif not _minimal_edit(before, after, config):
            reasons.append("absent_caption_unrelated")
    if reasons:
        return reasons
    true = _Text.of(caption)
    said = _Text.of(paraphrase) if paraphrase is not None else None
    denied = _Text.of(negation) if negation is not None else None
    found = _first_failure("paraphrase", PARAPHRASE_CHECKS, true, said, config)
    if found is None:
        found = next(iter(_absent_statement(paraphrase, shown, absent, labels, config.lexicon)), None)
    reasons += [found] if found else []
    found = _first_failure("negation", _COMMON, true, denied, config)
    if found is None:
        reading = read_objects(negation, labels, config.lexicon)
        if not (reading[absent].asserted or any(reading[label].denied for label in shown)):
            found = "negation_keeps_truth"
    reasons += [found] if found else []
    if said is not None and denied is not None and said.lowered == denied.lowered and denied.lowered:
        reasons.append("negation_equals_paraphrase")
    return reasons


def _absent_statement(text: str, shown: list[str], absent: str, labels: list[str],
                      lexicon: ObjectLexicon | None) -> list[str]:
    reading = read_objects(text, labels, lexicon)
    if any(reading[label].denied for label in shown):
        return ["absent_denies_present"]
    if not reading[absent].denied or reading[absent].asserted:
        return ["absent_not_denied"]
    return []
