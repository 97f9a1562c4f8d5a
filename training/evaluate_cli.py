"""CLI subcommand `webdet evaluate`."""
from pathlib import Path


def register(subparsers):
    """Add `evaluate` to the `webdet` parser."""
    p = subparsers.add_parser("evaluate", help="COCO AP/AR, per-class AP and pictures on the test split",
                              description="Evaluate a run's checkpoint or an exported SavedModel on the test split.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a run folder (evaluates its best checkpoint by default)")
    source.add_argument("--saved-model", help="an exported saved_model/ folder (the artefact you deploy)")
    p.add_argument("--checkpoint", default="best", help="best (default), last, or a ckpt-N prefix (with --run)")
    p.add_argument("--data", help="prepared data/ folder (default: the run's own data)")
    p.add_argument("--out", help="output folder (default: RUN/eval, or eval/ beside the saved model)")
    p.add_argument("--max-images", type=int, help="evaluate only the first N test images")
    p.add_argument("--score-threshold", type=float, default=0.0,
                   help="drop detections below this before scoring (default 0: COCO scores them all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from training.evaluate import evaluate_detector, format_metrics_table
    from webdet.errors import WebdetError

    if args.run:
        from training.config import read_run_config
        from training.detector import load_checkpoint_detector

        config = read_run_config(args.run)
        detector = load_checkpoint_detector(args.run, args.checkpoint)
        data = args.data or config["data"]["dir"]
        out = args.out or str(Path(args.run) / "eval")
        title = f"checkpoint {detector.prefix}"
    else:
        from export.detector import load_saved_model_detector

        if not args.data:
            raise WebdetError("--saved-model needs --data (the prepared data/ folder to evaluate on)")
        detector = load_saved_model_detector(args.saved_model)
        data = args.data
        out = args.out or str(Path(args.saved_model).resolve().parent / "eval")
        title = f"SavedModel {args.saved_model}"
    metrics = evaluate_detector(detector, data, out, max_images=args.max_images,
                                score_threshold=args.score_threshold, title=title)
    print(format_metrics_table(metrics))
    print(f"Wrote {out}/metrics.json, per_class.csv, pr_curve.png, samples.png"
          + (", confusion.png" if len(metrics["per_class"]) > 1 else ""))
    return 0
