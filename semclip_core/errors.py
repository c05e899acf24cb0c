"""The one error type for problems the user can fix, shared by `triplegen`, `semclip-train` and
`semclip-eval`; `semclip_core.cli_errors` turns it into one line on stderr and its exit code.

Library code raises `UserError` (under the name `TripleGenError` in `triplegen` and `SemClipError` in
`semclip_train`) for anything the user can fix: a missing file, a bad column name, an unusable
template, a server that is down. Everything else is a bug and keeps its traceback.

Exit codes: 2 for bad input or usage; 3 when a run stopped because its backend (a server or the
engine) was unavailable, and the same command resumes it later; 1 when a training run diverged.
"""


class UserError(Exception):
    """A problem with the user's input or set-up, reported as one line."""

    exit_code = 2
