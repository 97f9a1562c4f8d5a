"""The one exception type the CLI turns into a one-line error instead of a traceback."""


class WebdetError(Exception):
    """A problem the user can act on: the message names the file or field at fault."""
