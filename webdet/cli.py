"""The `webdet` command: parses flags and hands them to the stage libraries."""
import argparse
import importlib
import sys

from webdet import __version__
from webdet.errors import WebdetError
from webdet.quiet import import_tensorflow

# Each stage registers its own subcommands; the CLI only routes.
STAGE_MODULES = (
    "webdet.data_prep.cli",
    "webdet.training.cli",
    "webdet.evaluate_cli",
    "webdet.export.cli",
    "webdet.serve_cli",
    "webdet.doctor",
    "webdet.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webdet",
        description="LabelImg annotations to an object detector that runs live in the browser.",
    )
    parser.add_argument("--version", action="version", version=f"webdet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGE_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "needs_tensorflow", True):
        import_tensorflow()
    try:
        result = args.func(args)
    except WebdetError as exc:
        print(f"webdet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"webdet {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
