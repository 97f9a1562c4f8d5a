"""doctor."""


def register(subparsers):
    """Add this subcommand to the `webdet` parser."""
