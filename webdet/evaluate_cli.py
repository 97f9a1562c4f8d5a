"""CLI subcommand `webdet evaluate`: flags in, `webdet.training.evaluate.evaluate_detector` does the work."""
from pathlib import Path


def register(subparsers):
    """Add `evaluate` to the `webdet` parser."""
    p = subparsers.add_parser("evaluate", help="COCO AP/AR, per-class AP and pictures on the test split",
                              description="Evaluate a run's checkpoint or an exported SavedModel on the test split.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run folder (evaluates its best checkpoint by default)")
    source.add_argument("--saved-model", help="an exported saved_model/ folder (the artefact you deploy)")
    p.add_argument("--checkpoint", help="with --run: best (default), last, or a checkpoint prefix such as "
                                        "runs/NAME/checkpoints/ckpt-600")
    p.add_argument("--data", help="prepared data/ folder (default with --run: the data the run trained on)")
    p.add_argument("--out", help="output folder (default: RUN/eval, or eval/ beside the saved_model folder)")
    p.add_argument("--max-images", type=int, help="evaluate only the first N test images")
    p.add_argument("--score-threshold", type=float, default=0.0,
                   help="drop detections below this before scoring (default 0: COCO scores them all)")
    p.set_defaults(func=run)


def check_args(args) -> None:
    """Flag combinations and ranges argparse cannot check, as one-line errors."""
    from webdet.errors import WebdetError

    if args.saved_model and args.checkpoint:
        raise WebdetError("--checkpoint: only with --run (a SavedModel holds one set of weights)")
    if args.saved_model and not args.data:
        raise WebdetError("--saved-model needs --data (the prepared data/ folder to evaluate on)")
    if args.max_images is not None and args.max_images < 1:
        raise WebdetError(f"--max-images {args.max_images}: must be at least 1")
    if not 0.0 <= args.score_threshold <= 1.0:
        raise WebdetError(f"--score-threshold {args.score_threshold}: must be between 0 and 1")


def load_detector(args):
    """(detector, data folder, output folder, title) for the flags given; loaders raise WebdetError."""
    if args.run:
        from webdet.training.config import read_run_config
        from webdet.training.detector import load_checkpoint_detector

        config = read_run_config(args.run)
        detector = load_checkpoint_detector(args.run, args.checkpoint or "best")
        data = args.data or config["data"]["dir"]
        return detector, data, args.out or str(Path(args.run) / "eval"), f"checkpoint {detector.prefix}"
    from webdet.export.detector import load_saved_model_detector

    detector = load_saved_model_detector(args.saved_model)
    out = args.out or str(Path(args.saved_model).resolve().parent / "eval")
    return detector, args.data, out, f"SavedModel {args.saved_model}"


def run(args) -> int:
    from webdet.training.evaluate import evaluate_detector, format_metrics_table

    check_args(args)
    detector, data, out, title = load_detector(args)
    metrics = evaluate_detector(detector, data, out, max_images=args.max_images,
                                score_threshold=args.score_threshold, title=title)
    print(format_metrics_table(metrics))
    print(f"Wrote {', '.join(metrics['files'])} to {out}")
    return 0
