"""CLI subcommand `webdet train`."""
from webdet.training.config import DEFAULT_CONFIG, STRATEGIES


def register(subparsers):
    """Add `train` to the `webdet` parser."""
    p = subparsers.add_parser(
        "train", help="train the detector on a prepared data/ folder (resumes when run again)",
        description="Fine-tune SSD MobileNet v2 FPNLite (TF Model Garden) on data written by `webdet prepare`. "
                    "Running the same command again resumes from the last checkpoint.")
    p.add_argument("--data", required=True, help="folder written by `webdet prepare`")
    p.add_argument("--run", required=True, help="run folder: config, checkpoints, logs, plots")
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"config name in configs/ or a YAML path (default: {DEFAULT_CONFIG})")
    p.add_argument("--epochs", type=int, help="train for this many epochs (sets train.epochs)")
    p.add_argument("--steps", type=int, help="train for exactly this many steps (sets train.steps)")
    p.add_argument("--batch-size", type=int, help="global batch size (sets train.batch_size)")
    p.add_argument("--patience", type=int, help="stop after N evaluations without AP improvement")
    p.add_argument("--init-checkpoint", help="coco (default), none, or a checkpoint dir / ckpt-N prefix / .tar.gz")
    p.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy (default: auto)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any config key, e.g. --set train.learning_rate=0.02 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines only)")
    p.set_defaults(func=run)


def run(args) -> int:
    from webdet.training.config import apply_overrides, load_config
    from webdet.training.train import train

    overrides = list(args.set)
    for flag, key in (("epochs", "train.epochs"), ("steps", "train.steps"), ("batch_size", "train.batch_size"),
                      ("patience", "train.patience"), ("init_checkpoint", "train.init_checkpoint"),
                      ("strategy", "train.strategy")):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.epochs is not None and args.steps is None:
        overrides.append("train.steps=null")
    config = apply_overrides(load_config(args.config), overrides)
    train(args.data, args.run, config, progress=not args.no_progress, overrides=overrides)
    return 0
