"""The user-error type of `semclip-train` and `semclip-eval`: the shared `UserError`, one type
for the three commands, turned into one line and an exit code by `semclip_core.cli_errors`.

Library code raises `SemClipError` for anything the user can fix (a missing file, an image path
outside `--image-root`, an option that contradicts another); everything else is a bug and keeps its
traceback.
"""

from semclip_core.errors import UserError

SemClipError = UserError


class TrainingDiverged(UserError):
    """The loss, a gradient, a weight or the embeddings stopped being finite: the run stops instead of
    saving a model that would evaluate to NaN."""

    exit_code = 1
