"""Whether a generated triple is good: parsing a model's answer, the lexical checks and their reason
codes, the output constraints, the optional semantic, blind and LLM-judge checks, and `validate`."""
