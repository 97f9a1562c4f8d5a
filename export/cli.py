"""CLI subcommands of the export stage."""


def register(subparsers):
    """Add this stage's subcommands to the `webdet` parser."""
