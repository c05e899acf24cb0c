"""One class of ungrammatical output that every other check lets pass: an existential whose noun
phrase runs into a finite verb, "There is a chef garnishes a plate of pasta." (the rules generator
wrote such sentences for verbs outside its list; an LLM can too). The sentence then has two main
verbs and no clause for the second, while its words, length and polarity all look right.
"""

from __future__ import annotations

from triplegen.rules.lexicon import (
    CONJUNCTIONS, DETERMINERS, PREPOSITIONS, THIRD_PERSON, VERB_BASES, is_participle, open_verb_base, tokenize,
)

# Closed classes: the be forms of "there is/are" by number, the finite auxiliaries that make a second
# main verb, and words that end the noun phrase otherwise ("without", "who").
_SINGULAR_BE = frozenset("is was".split())
_PLURAL_BE = frozenset("are were".split())
_FINITE_AUX = frozenset("is are was were has does can will".split())
_PHRASE_ENDS = frozenset("without within who that which whose".split())
_NOUN_PHRASE_WORDS = 5  # how far after "there is a" the verb is looked for


def dangling_verb(text: str) -> str | None:
    """The verb in "there is a chef garnishes a plate" / "there are two men unload a truck", else None.

    Only where no noun reading is left: after a singular "there is a/an/one ..." an -s word cannot be
    the plural head ("a chef garnishes"); after a plural one a base form is a verb only when an object
    follows ("two men unload a truck", not "two dog beds")."""
    tokens = tokenize(text)
    for i in range(len(tokens) - 3):
        if tokens[i].lower != "there" or tokens[i + 1].lower not in _SINGULAR_BE | _PLURAL_BE:
            continue
        singular = tokens[i + 1].lower in _SINGULAR_BE
        if tokens[i + 2].lower not in (("a", "an", "one") if singular else DETERMINERS):
            continue
        for k in range(i + 4, min(len(tokens), i + 3 + _NOUN_PHRASE_WORDS)):
            word, before = tokens[k].lower, text[tokens[k - 1].end:tokens[k].start]
            if (word in PREPOSITIONS or word in CONJUNCTIONS or word in DETERMINERS or word in _PHRASE_ENDS
                    or is_participle(word) or before.strip()):
                break  # the noun phrase ended: "a guy lifting weights", "a vase without flowers"
            if word in _FINITE_AUX and k + 1 < len(tokens):
                return tokens[k].text
            if singular and (word in THIRD_PERSON or open_verb_base(word) is not None) and word.endswith("s"):
                return tokens[k].text
            nxt = tokens[k + 1].lower if k + 1 < len(tokens) else ""
            if not singular and nxt in DETERMINERS and (word in VERB_BASES or open_verb_base(word, "VBP") == word):
                return tokens[k].text
    return None
