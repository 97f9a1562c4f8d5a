"""CLI subcommand `webdet evaluate`."""


def register(subparsers):
    """Add `evaluate` to the `webdet` parser."""
