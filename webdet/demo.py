"""`webdet demo`: the whole pipeline on the built-in synthetic dataset, ending with the app served.

synth → prepare → train (tiny config) → evaluate → export → serve; every stage is the same library
call the CLI and the notebook use, so a passing demo means the pipeline works on this machine.
"""
import time
from pathlib import Path


def register(subparsers):
    """Add `demo` to the `webdet` parser."""
    p = subparsers.add_parser("demo", help="run the whole pipeline on synthetic data and serve the web app")
    p.add_argument("--out", default="demo", help="folder for the dataset, data/, the run and the export")
    p.add_argument("--images", type=int, default=160, help="synthetic images to make (default 160)")
    p.add_argument("--steps", type=int, default=600, help="training steps (default 600, a few minutes on a CPU)")
    p.add_argument("--config", default="tiny", help="model config (default: tiny)")
    p.add_argument("--no-serve", action="store_true", help="stop after the export instead of serving the app")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=run)


def stage(name: str):
    print(f"\n== {name} ==", flush=True)
    return time.time()


def run(args) -> int:
    from webdet.data_prep.prepare import prepare
    from webdet.data_prep.synth import make_dataset
    from webdet.export.exporter import export_run
    from webdet.training.config import apply_overrides, load_config
    from webdet.training.detector import load_checkpoint_detector
    from webdet.training.evaluate import evaluate_detector, format_metrics_table
    from webdet.training.train import train

    out = Path(args.out)
    started = stage(f"synth: {args.images} synthetic LabelImg images → {out / 'synth'}")
    make_dataset(out / "synth", images=args.images, seed=0)
    stage(f"prepare → {out / 'data'}")
    report = prepare([out / "synth"], out / "data", seed=0)
    print(f"{report['images']['read']} images read, {report['boxes']['read']} boxes; "
          f"train {report['splits']['train']['images']} / test {report['splits']['test']['images']} images")
    stage(f"train ({args.config}, {args.steps} steps) → {out / 'runs' / 'synth'}")
    config = apply_overrides(load_config(args.config), [f"train.steps={args.steps}", "train.init_checkpoint=none"])
    run_dir = out / "runs" / "synth"
    train(out / "data", run_dir, config)
    stage(f"evaluate → {run_dir / 'eval'}")
    metrics = evaluate_detector(load_checkpoint_detector(run_dir, "best"), out / "data", run_dir / "eval")
    print(format_metrics_table(metrics))
    stage(f"export → {out / 'export'}")
    export_run(run_dir, out / "export", data_dir=out / "data", overwrite=True)
    print(f"\nDemo pipeline finished in {(time.time() - started) / 60:.1f} min: "
          f"AP50 on the synthetic test split {metrics['AP50']:.3f}.")
    if args.no_serve:
        return 0
    from webdet.service.server import run_service
    from webdet.service.settings import ServiceSettings, check_settings

    stage("serve")
    run_service(check_settings(ServiceSettings(str(out / "export"), host=args.host, port=args.port)))
    return 0
