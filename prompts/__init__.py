"""The packaged prompt templates (`*.yaml` here) and the API to load them.

This folder is installed as the package `triplegen.prompts` (pyproject's package-dir), so that
`importlib.resources` finds the YAML files in every kind of install. The code lives in
`triplegen/templates.py`, because a module `triplegen/prompts.py` would collide with this package;
it is re-exported here so that `from triplegen.prompts import load_template` works too.
"""

from triplegen.templates import (
    Problem,
    PromptTemplate,
    check_templates,
    list_templates,
    load_template,
)

__all__ = ["Problem", "PromptTemplate", "check_templates", "list_templates", "load_template"]
