"""The rules grammar: how the built-in generator reads and rewrites an English caption.

No model and no download: closed word classes and lemminflect's dictionary (`lexicon`), where a
caption's verb is (`clause`), its polarity and negation cues (`polarity`, `scope`), the rewrites
themselves (`negation`, `paraphrase`, `denials` and `absent` for captions that deny an object), and
the word-level facts the checks share (`dangling_verb`, `opposites`, `object_names`).

The package knows nothing of how a run is executed: it imports nothing from the run, backends,
executors or commands (tests/test_layering.py), so the grammar can be read, tested and benchmarked
on its own.
"""
