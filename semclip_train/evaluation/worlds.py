"""A family of synthetic worlds: what a recipe tuned on one world could overfit to, drawn from a seed.

A world fixes the things a model can learn instead of negation: which objects exist (colours, shapes,
sizes, textures), how many share a scene, the words for the relations, the grammar and casing of the
captions, and the wordings of the scope test (which sentences with one "no" it must tell apart,
including wordings that triplegen never writes). `DEFAULT` is the project's own world, unchanged;
`World.sample(n)` is world n of the family, the same on every machine. A benchmark tunes on some
worlds and reports on others; a file written for a world records it, so `semclip-eval synthetic`
scores a model on any world.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 90, 230),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 20),
    "white": (235, 235, 235),
    "pink": (250, 130, 190),
    "brown": (140, 85, 40),
    "cyan": (40, 210, 220),
}
MIN_KINDS = 15
SHAPES = ("circle", "square", "triangle", "diamond", "cross", "hexagon")  # what the renderer draws
SIZES = ("small", "big")
TEXTURES = ("solid", "striped", "hollow")
RELATIONS = ("above", "below", "left of", "right of")
INVERSE = {"above": "below", "below": "above", "left of": "right of", "right of": "left of"}
RELATION_WORDS = {
    "above": ("above", "over", "on top of"),
    "below": ("below", "under", "beneath"),
    "left of": ("to the left of", "left of", "on the left of"),
    "right of": ("to the right of", "right of", "on the right of"),
}
# How a caption is built (semclip_train.evaluation.synthetic.realise): "phrase" ("a red circle above a blue
# square"), "there is" (the same after "there is"), "sentence" ("a red circle is above a blue
# square"; "there is a green triangle"), "with" ("a blue square with a red circle above it").
GRAMMARS = ("phrase", "there is", "sentence", "with")

# The scope test: a true and a false text with the same words and one negation each; {a} is shown,
# {b} is absent. "after" denies the second object, "before" the first, so a model that learned where
# the denied object sits instead of what "no" governs wins one order and loses the other. The
# starred wordings are ones triplegen never writes.
SCOPE_AFTER = (
    "a {a} and no {b}", "a {a} without a {b}", "a {a}, but no {b}", "a {a}, with no {b}",
    "*there is a {a} but no {b}", "*a {a} and there is no {b}", "*only a {a}, no {b}",
)
SCOPE_BEFORE = (
    "no {b} and a {a}", "with no {b} around, a {a}",
    "*without a {b}, a {a}", "*there is no {b} but there is a {a}", "*no {b}, just a {a}", "*no {b} here, only a {a}",
)
# Another negation word, which no training text holds: reported, never part of an acceptance line.
SCOPE_UNSEEN_CUE = ("a {a} but not a {b}", "not a {b} but a {a}")


@dataclass(frozen=True)
class World:
    """Everything a caption model could fit instead of negation; items, images and the scope test
    are drawn from it (semclip_train.evaluation.synthetic, synthetic_data)."""

    name: str
    colours: dict[str, tuple[int, int, int]]
    shapes: tuple[str, ...]
    sizes: tuple[str, ...] = ()
    textures: tuple[str, ...] = ()
    max_objects: int = 2
    one_object_share: float = 0.3
    relation_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    grammars: tuple[str, ...] = ("phrase",)
    capitalised: bool = False
    # group -> (true, false) templates; "after" and "before" are the two clause orders
    scope_forms: dict[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)

    def kinds(self) -> list[tuple[str, ...]]:
        """Every object kind as its words in English order (size, texture, colour, shape)."""
        return [tuple(w for w in (size, texture, colour, shape) if w)
                for size in self.sizes or ("",) for texture in self.textures or ("",)
                for colour in self.colours for shape in self.shapes]

    def relation_word(self, relation: str, rng: random.Random | None = None) -> str:
        words = self.relation_words[relation]
        return words[0] if rng is None or len(words) == 1 else rng.choice(words)

    def cased(self, text: str) -> str:
        return text[:1].upper() + text[1:] + "." if self.capitalised else text

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, data: dict) -> "World":
        tuples = {"shapes", "sizes", "textures", "grammars"}
        values = {key: tuple(value) if key in tuples else value for key, value in data.items()}
        values["colours"] = {name: tuple(rgb) for name, rgb in data["colours"].items()}
        values["relation_words"] = {rel: tuple(words) for rel, words in data["relation_words"].items()}
        values["scope_forms"] = {group: tuple(tuple(pair) for pair in pairs) for group, pairs in data["scope_forms"].items()}
        world = cls(**values)
        for what, chosen, known in (("colour", world.colours, PALETTE), ("shape", world.shapes, SHAPES),
                                    ("size", world.sizes, SIZES), ("texture", world.textures, TEXTURES),
                                    ("grammar", world.grammars, GRAMMARS), ("relation", world.relation_words, RELATIONS)):
            unknown = sorted(set(chosen) - set(known))
            if unknown:  # the renderer and the grammar know only these
                raise ValueError(f"unknown {what} {unknown[0]!r} (known: {', '.join(known)})")
        if set(world.relation_words) != set(RELATIONS) or not {"after", "before"} <= set(world.scope_forms):
            raise ValueError("it needs words for every relation and scope wordings 'after' and 'before'")
        return world

    @classmethod
    def sample(cls, seed: int) -> "World":
        """World `seed` of the family: a few colours and shapes, maybe sizes and textures, up to three
        objects, its own relation words, one or two caption grammars, and its own scope wordings."""
        rng = random.Random(f"semclip-world/{seed}")
        colours = rng.sample(sorted(PALETTE), rng.randint(4, 6))
        shapes = rng.sample(SHAPES, rng.randint(3, 4))
        sizes = SIZES if rng.random() < 0.4 else ()
        textures = tuple(sorted(rng.sample(TEXTURES, 2))) if rng.random() < 0.3 else ()
        while len(colours) * len(shapes) < MIN_KINDS:  # enough distinct scenes for a 300-image test split
            colours.append(rng.choice(sorted(set(PALETTE) - set(colours))))
        return cls(
            name=f"world-{seed}",
            colours={name: PALETTE[name] for name in colours},
            shapes=tuple(shapes), sizes=sizes, textures=textures,
            max_objects=rng.choice((2, 3)),
            one_object_share=round(rng.uniform(0.15, 0.35), 2),
            relation_words={rel: tuple(rng.sample(RELATION_WORDS[rel], rng.randint(1, 2))) for rel in RELATIONS},
            grammars=tuple(rng.sample(GRAMMARS, rng.randint(1, 2))),
            capitalised=rng.random() < 0.5,
            scope_forms={"after": _scope_choice(SCOPE_AFTER, rng), "before": _scope_choice(SCOPE_BEFORE, rng),
                         "other": _pairs(SCOPE_UNSEEN_CUE)},
        )


def _pairs(templates: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """(true, false) pairs: the false text swaps the shown and the absent object."""
    return tuple((t, t.replace("{a}", "{tmp}").replace("{b}", "{a}").replace("{tmp}", "{b}")) for t in templates)


def _scope_choice(pool: tuple[str, ...], rng: random.Random) -> tuple[tuple[str, str], ...]:
    """Two wordings of one clause order, at least one of which triplegen never writes."""
    unseen = [t[1:] for t in pool if t.startswith("*")]
    first = rng.choice(unseen)
    second = rng.choice([t.lstrip("*") for t in pool if t.lstrip("*") != first])
    return _pairs((first, second))


DEFAULT = World(
    name="default",
    colours={name: PALETTE[name] for name in ("red", "green", "blue", "yellow", "purple")},
    shapes=("circle", "square", "triangle"),
    relation_words={rel: (RELATION_WORDS[rel][0],) for rel in RELATIONS},
    scope_forms={
        "after": _pairs(("a {a} and no {b}",)),
        "before": _pairs(("no {b} and a {a}",)),
        "other": _pairs(("a {a} without a {b}", "there is no {b} but there is a {a}")),
    },
)


def world_from_spec(spec: str | int | None) -> World:
    """"default" (or None), a number of the family, or a JSON file written by `World.to_json`."""
    if spec is None or str(spec) == "default":
        return DEFAULT
    text = str(spec)
    if text.lstrip("-").isdigit():
        return World.sample(int(text))
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"world {text!r} is neither 'default', a number nor a JSON file")
    try:
        return World.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"world file {text}: not a world description ({exc})") from None
