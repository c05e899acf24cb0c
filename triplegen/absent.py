"""The rules writer of absent-object rows: a true caption that denies an object the image lacks.

From "A man riding a horse on a beach" with the image's objects {person, horse} and the absent
object "dog", one row is

    caption     "A man riding a horse on a beach, with no dog."          (true)
    paraphrase  "Without a dog, on a beach a guy is riding a horse."      (true, other words)
    negation    "A man riding a horse on a beach, with a dog."            (absent-assert: false)
             or "A man riding a dog on a beach, with no horse."           (absent-swap: false)

The two kinds of negation teach both halves of negation: "absent-assert" drops the "no" (so a
caption with "no" can be the true one), "absent-swap" keeps the same words and moves the "no" onto
an object the image shows (so the model must read which object a "no" applies to). Where and how the
denial is written varies (`objects.STYLES`, at the end or the start), because a model trained on
one clause order learns the position instead of the scope. When the present object is not named in
the caption, the swap adds both objects: "..., with a person and no dog" / "..., with a dog and no
person".
"""

from __future__ import annotations

from triplegen.lexicon import keeps_capital, split_ending
from triplegen.objects import AbsentSpec
from triplegen.paraphrase import paraphrase
from triplegen.scope import is_plural_label, mentions, plural

# style -> (denial, affirmation) of one object; {a} "a dog", {bare} "dog", {be} "is"/"are"
_CORE = {
    "and no": ("no {bare}", "{a}"),
    "with no": ("with no {bare}", "with {a}"),
    "without": ("without {a}", "with {a}"),
    "there is no": ("there {be} no {bare}", "there {be} {a}"),
    "but not": ("not {a}", "{a}"),
    "but no": ("no {bare}", "{a}"),
}
# style -> (joiner when denying, joiner when affirming), between caption and phrase at the end
_END_JOINERS = {
    "and no": (" and ", " and "), "with no": (", ", ", "), "without": (" ", " "),
    "there is no": (", and ", ", and "), "but not": (", but ", ", and "), "but no": (", but ", ", and "),
}
# ... and between phrase and caption at the start
_START_JOINERS = {
    "and no": (" and ", " and "), "with no": (", ", ", "), "without": (", ", ", "),
    "there is no": (", and ", ", and "), "but not": (", but ", ", and "), "but no": (", but ", ", and "),
}
# the denial inside a phrase that also names a present object: "with a person and no dog"
_PAIR = {
    "and no": "and no {bare}", "with no": "with no {bare}", "without": "without {a}",
    "there is no": "but there {be} no {bare}", "but not": "but not {a}", "but no": "but no {bare}",
}


def indefinite(label: str) -> str:
    """ "a dog", "an apple", "skis" (a plural label takes no article)."""
    if is_plural_label(label):
        return label
    first = label.lower()
    vowel = first[:1] in "aeiou" and not first.startswith(("uni", "use", "usu", "eu", "one", "ewe"))
    return ("an " if vowel or first.startswith(("hour", "honest", "heir")) else "a ") + label


def _fill(template: str, label: str) -> str:
    return template.format(a=indefinite(label), bare=label, be="are" if is_plural_label(label) else "is")


def _phrase(label: str, style: str, deny: bool) -> str:
    return _fill(_CORE[style][0 if deny else 1], label)


def _pair(shown: str, missing: str, style: str) -> str:
    return f"with {indefinite(shown)} {_fill(_PAIR[style], missing)}"


def _place(body: str, phrase: str, position: str, joiner: str) -> str:
    if position == "end":
        return body + joiner + phrase
    first = body.split(" ", 1)[0]
    rest = body if keeps_capital(first) else body[:1].lower() + body[1:]
    return phrase + joiner + rest


def _joiner(style: str, position: str, deny: bool) -> str:
    table = _END_JOINERS if position == "end" else _START_JOINERS
    return table[style][0 if deny else 1]


def _sentence(text: str, like: str, ending: str) -> str:
    text = " ".join(text.split())
    if like[:1].isupper():
        text = text[:1].upper() + text[1:]
    return text + ending


def _swap_mention(body: str, shown: str, missing: str) -> str | None:
    """The caption with its first mention of `shown` replaced by `missing` (number and article kept)."""
    found = mentions(body, shown)
    if not found:
        return None
    start, end = found[0]
    written = body[start:end]
    replacement = plural(missing) if written.lower() != shown.lower() and not is_plural_label(shown) else missing
    if written[:1].isupper():
        replacement = replacement[:1].upper() + replacement[1:]
    before = body[:start]
    article = before.rstrip().rsplit(" ", 1)[-1]
    if article.lower() in ("a", "an") and before.endswith(" ") and not is_plural_label(replacement):
        fixed = indefinite(replacement).split(" ", 1)[0]
        fixed = fixed[:1].upper() + fixed[1:] if article[:1].isupper() else fixed
        before = before[: len(before.rstrip()) - len(article)] + fixed + " "
    return before + replacement + body[end:]


def absent_row(caption: str, spec: AbsentSpec) -> tuple[str, str, str]:
    """(true caption, its paraphrase, a false negation) for one absent-object row."""
    body, ending = split_ending(" ".join(caption.split()))
    reworded = split_ending(paraphrase(caption) or body)[0]
    other = "start" if spec.position == "end" else "end"
    swapped = _swap_mention(body, spec.present, spec.absent) if spec.kind == "absent-swap" else None

    def denial(text: str, style: str, position: str) -> str:
        return _place(text, _phrase(spec.absent, style, True), position, _joiner(style, position, True))

    if spec.kind == "absent-swap" and swapped is None:  # the present object is not named: name both
        def pair(text: str, shown: str, missing: str, style: str, position: str) -> str:
            return _place(text, _pair(shown, missing, style), position, ", ")

        true = pair(body, spec.present, spec.absent, spec.style, spec.position)
        reworded = pair(reworded, spec.present, spec.absent, spec.paraphrase_style, other)
        false = pair(body, spec.absent, spec.present, spec.style, spec.position)
    else:
        true = denial(body, spec.style, spec.position)
        reworded = denial(reworded, spec.paraphrase_style, other)
        if swapped is not None:
            false = _place(swapped, _phrase(spec.present, spec.style, True), spec.position,
                           _joiner(spec.style, spec.position, True))
        else:
            false = _place(body, _phrase(spec.absent, spec.style, False), spec.position,
                           _joiner(spec.style, spec.position, False))
    return tuple(_sentence(text, caption, ending) for text in (true, reworded, false))  # type: ignore[return-value]
