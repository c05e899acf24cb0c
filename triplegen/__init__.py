"""triplegen: turn captions into (caption, paraphrase, negation) triples and check them."""

__version__ = "0.1.0"
