"""The one error type `semclip-train` turns into a one-line message and exit code 2.

Library code raises `SemClipError` for anything the user can fix (a missing file, an image path
outside `--image-root`, an option that contradicts another); everything else is a bug and keeps its
traceback.
"""


class SemClipError(Exception):
    """A problem with the user's input or set-up, reported as one line."""

    exit_code = 2
