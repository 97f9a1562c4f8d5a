"""Accuracy on the real kangaroo set: prepare with the default split, train from scratch for a fixed
step budget, evaluate the best checkpoint with COCO metrics. Skips when ../shared is absent.

    python benchmarks/accuracy_kangaroo.py                      # default recipe, 320 model
    python benchmarks/accuracy_kangaroo.py --steps 600 --config ssd_mobilenet_v2_256 --work /tmp/kangaroo
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
KANGAROO = REPO.parent / "shared" / "datasets" / "kangaroo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="ssd_mobilenet_v2_320_scratch.yaml")
    parser.add_argument("--steps", type=int, default=1600, help="training step budget")
    parser.add_argument("--work", default="/tmp/webdet-kangaroo", help="where data/, the run and eval go")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if not KANGAROO.is_dir():
        print(f"skipped: {KANGAROO} is not present")
        return 0

    from webdet.data_prep.prepare import prepare
    from webdet.training.config import apply_overrides, load_config
    from webdet.training.detector import load_checkpoint_detector
    from webdet.training.evaluate import evaluate_detector, format_metrics_table
    from webdet.training.train import train

    work = Path(args.work)
    data = work / "data"
    if not (data / "label_map.pbtxt").is_file():
        prepare([KANGAROO], data)
    run = work / f"run-{Path(args.config).stem}-{args.steps}"
    config = apply_overrides(load_config(args.config),
                             [f"train.steps={args.steps}", "train.init_checkpoint=none", *args.set])
    start = time.time()
    summary = train(data, run, config, progress=sys.stderr.isatty())
    minutes = (time.time() - start) / 60
    metrics = evaluate_detector(load_checkpoint_detector(run, "best"), data, run / "eval")
    print(format_metrics_table(metrics))
    result = {"config": args.config, "overrides": args.set, "steps": summary["steps"],
              "train_minutes": round(minutes, 1), "images_per_sec": summary["images_per_sec"],
              **{k: round(metrics[k], 3) for k in ("AP", "AP50", "AR100")}}
    print(json.dumps(result))
    print(f"kangaroo, from scratch, {summary['steps']} steps in {minutes:.0f} min on this machine: "
          f"AP {metrics['AP']:.3f}  AP50 {metrics['AP50']:.3f}  AR100 {metrics['AR100']:.3f} "
          f"(TF.js tutorial, COCO weights, 4 h Colab GPU: AP 0.222, AP50 0.405, AR100 0.514)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
