"""The one error type the CLI turns into a one-line message and exit code 2.

Library code raises `TripleGenError` for anything the user can fix (a missing file, a bad column
name, an unusable template); everything else is a bug and keeps its traceback.
"""


class TripleGenError(Exception):
    """A problem with the user's input or set-up, reported as one line."""

    exit_code = 2


class MissingExtraError(TripleGenError):
    """An optional dependency is needed for the feature the user asked for."""

    def __init__(self, feature: str, extra: str, module: str):
        super().__init__(
            f"{feature} needs the '{module}' package: pip install 'semclip[{extra}]'"
        )
