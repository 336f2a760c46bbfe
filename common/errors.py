"""The one exception type whose message is shown to the user as a single line."""


class FacemoodError(Exception):
    """A problem with the user's input or environment, explained in one line.

    `build.py` prints it as `error: <message>` and exits non-zero; no traceback unless --debug.
    """
