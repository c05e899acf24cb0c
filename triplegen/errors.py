"""The one error type for problems the user can fix, shared by `triplegen`, `semclip-train` and
`semclip-eval`; `triplegen.commands.entry` turns it into one line on stderr and its exit code.

Library code raises `UserError` (under the name `TripleGenError` here and `SemClipError` in
`semclip_train`) for anything the user can fix: a missing file, a bad column name, an unusable
template, a server that is down. Everything else is a bug and keeps its traceback.

Exit codes: 2 for bad input or usage; 3 when a run stopped because its backend (a server or the
engine) was unavailable, and the same command resumes it later; 1 when a training run diverged.
"""


class UserError(Exception):
    """A problem with the user's input or set-up, reported as one line."""

    exit_code = 2


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
