"""Which words name which object: object labels through their synonyms, kinds and plurals.

A caption says "two tennis players", "a plane", "a table"; the image's labels say person, airplane,
dining table. Matching labels by their own words misses those, so an absent-object row could deny a
person in a caption about players. The built-in table (`triplegen/data/coco_objects.yaml`) covers
COCO's 80 categories; `--object-synonyms FILE` (YAML or JSON: label -> words, or label -> {words,
groups, except, say, mass}) extends or overrides it for other vocabularies (LVIS, Open Images,
detector labels). Plural forms come from lemminflect. No WordNet package ships its data on PyPI for
offline use (wn and nltk download it at run time), so kinds are listed rather than derived.

Labels the table does not know are named by their own words, and all share one swap group, so a
vocabulary of one's own behaves as before unless it says otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from lemminflect import getInflection

from semclip_core.mapping_text import parse_mapping_text
from triplegen.errors import TripleGenError

OTHER_GROUP = "*"  # the swap group of labels that no table describes
# Nouns whose written form says nothing about number: plural-only ones (no article, "are"), those
# the same in both numbers, and mass nouns (no article, "is").
PLURAL_ONLY = frozenset("series species cattle scissors skis people police clothes glasses pants jeans shorts "
                        "trousers".split())
# lemminflect gives "skis", "pants" a singular and records no countability, so these readings are listed
# (the synonym table marks more with `mass`).
MASS_WORDS = frozenset({"broccoli"})
INVARIANT = PLURAL_ONLY | MASS_WORDS | frozenset("sheep fish deer moose bison buffalo aircraft".split())
_KEYS = {"words", "groups", "except", "say", "mass"}


def plurals(phrase: str) -> tuple[str, ...]:
    """Plural forms of a noun phrase, the usual one first, inflecting its last word ("dining tables")."""
    head, _, last = phrase.rpartition(" ")
    forms = tuple(getInflection(last, "NNS") or ()) if last.isalpha() else ()
    if not forms:
        forms = (last + ("es" if last.endswith(("s", "x", "z", "ch", "sh")) else "s"),)
    return tuple(f"{head} {form}" if head else form for form in forms)


def _words_pattern(phrases: set[str]) -> re.Pattern[str]:
    ordered = sorted(phrases, key=len, reverse=True)
    alternatives = ["[\\s-]+".join(re.escape(word) for word in re.split(r"[\s-]+", p)) for p in ordered]
    return re.compile(r"(?<![\w-])(?:" + "|".join(alternatives) + r")(?![\w-])", re.IGNORECASE)


@dataclass(frozen=True)
class ObjectName:
    """How captions name one label."""

    label: str
    words: tuple[str, ...]  # singular words and phrases, lower case
    groups: tuple[str, ...] = (OTHER_GROUP,)
    excepts: tuple[str, ...] = ()
    say: str = ""  # the word the writer uses; "" means the label
    mass: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _except: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        forms = set(self.words) | {p for w in self.words for p in plurals(w)}
        object.__setattr__(self, "_pattern", _words_pattern(forms))
        excepts = {p for e in self.excepts for p in (e, *plurals(e))}
        object.__setattr__(self, "_except", _words_pattern(excepts) if excepts else None)

    @property
    def word(self) -> str:
        return self.say or self.label

    def named_anywhere(self, text: str) -> bool:
        """Any of its words, even inside a phrase that names something else ("hot dog" for dog): such
        a caption never gets a row denying the object, which would read as a contradiction."""
        return self._pattern.search(text) is not None

    def mentions(self, text: str) -> list[tuple[int, int]]:
        """(start, end) of every word naming this object, outside the phrases that name something else."""
        spans = [m.span() for m in self._pattern.finditer(text)]
        if not spans or self._except is None:
            return spans
        blocked = [m.span() for m in self._except.finditer(text)]
        return [(s, e) for s, e in spans if not any(bs <= s and e <= be for bs, be in blocked)]


class ObjectLexicon:
    """Label -> ObjectName, with the built-in COCO table underneath whatever a user adds."""

    def __init__(self, names: dict[str, ObjectName]):
        self.names = names

    @classmethod
    def builtin(cls) -> ObjectLexicon:
        return _builtin()

    @classmethod
    def load(cls, path: str | Path | None) -> ObjectLexicon:
        """The built-in table, extended (and per label replaced) by a user's file; None: built-in."""
        if path is None:
            return cls.builtin()
        table = _read_table(Path(path))
        names = dict(cls.builtin().names)
        names.update({label: _entry(label, value, str(path)) for label, value in table.items()})
        return cls(names)

    def name(self, label: str) -> ObjectName:
        found = self.names.get(label)
        return found if found is not None else _unknown(label)

    def mentions(self, text: str, label: str) -> list[tuple[int, int]]:
        return self.name(label).mentions(text)

    def share_group(self, a: str, b: str) -> bool:
        return bool(set(self.name(a).groups) & set(self.name(b).groups))

    def fingerprint(self) -> dict:
        """What a resumed run must find unchanged (the user's additions: the built-in is versioned code)."""
        builtin = _builtin().names
        return {label: [list(n.words), list(n.groups), list(n.excepts), n.say, n.mass]
                for label, n in sorted(self.names.items()) if builtin.get(label) != n}


@lru_cache(maxsize=4096)
def _unknown(label: str) -> ObjectName:
    return ObjectName(label, (label.lower(),))


@lru_cache(maxsize=1)
def _builtin() -> ObjectLexicon:
    text = resources.files("triplegen.data").joinpath("coco_objects.yaml").read_text(encoding="utf-8")
    return ObjectLexicon({label: _entry(label, value, "the built-in table")
                          for label, value in parse_mapping_text(text).items()})


def _read_table(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
        table = parse_mapping_text(text, json_format=path.suffix.lower() == ".json")
    except OSError as error:
        raise TripleGenError(f"--object-synonyms {path}: cannot read it ({error.strerror or error})") from None
    except (ValueError, yaml.YAMLError) as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise TripleGenError(f"--object-synonyms {path}: not valid YAML or JSON ({first})") from None
    if not isinstance(table, dict) or not table:
        raise TripleGenError(f"--object-synonyms {path}: expected a mapping of label -> words")
    return table


def _texts(value, what: str, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise TripleGenError(f"{where}: {what} must be a list of words")
    return tuple(dict.fromkeys(" ".join(v.lower().split()) for v in items))


def _entry(label, value, where: str) -> ObjectName:
    if not isinstance(label, str) or not label.strip():
        raise TripleGenError(f"{where}: labels must be text, got {label!r}")
    label = " ".join(label.lower().split())
    here = f"{where}, label {label!r}"
    if not isinstance(value, dict):
        value = {"words": value}
    unknown = sorted(set(value) - _KEYS)
    if unknown:
        raise TripleGenError(f"{here}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    words = _texts(value.get("words", []), "words", here)
    say = value.get("say", "")
    if not isinstance(say, str) or not isinstance(value.get("mass", False), bool):
        raise TripleGenError(f"{here}: say must be a word and mass true or false")
    return ObjectName(label, tuple(dict.fromkeys((label, *words))),
                      _texts(value["groups"], "groups", here) if "groups" in value else (OTHER_GROUP,),
                      _texts(value.get("except", []), "except", here), say.strip(), value.get("mass", False))
