"""CLI subcommands of the training stage."""


def register(subparsers):
    """Add this stage's subcommands to the `webdet` parser."""
