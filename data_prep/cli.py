"""CLI subcommands of the data_prep stage."""


def register(subparsers):
    """Add this stage's subcommands to the `webdet` parser."""
