"""triplegen's user errors: the shared `UserError` (`semclip_core.errors`) under the name its
modules raise it by, and the two cases only triplegen has (a missing optional package for a feature,
a backend that stayed unavailable).
"""

from semclip_core.errors import UserError

TripleGenError = UserError  # the name triplegen's modules raise it under


class MissingExtraError(UserError):
    """An optional dependency is needed for the feature the user asked for."""

    def __init__(self, feature: str, extra: str, module: str, install: str | None = None):
        install = install or f"pip install 'semclip[{extra}]'"
        super().__init__(f"{feature} needs the '{module}' package: {install}")


class BackendUnavailable(UserError):
    """Every server (or the in-process engine) failed for longer than the run allows.

    Not a reject: the rows of the unfinished chunk are left for the next run of the same command.
    """

    exit_code = 3
