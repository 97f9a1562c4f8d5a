"""Accuracy on the real kangaroo set: prepare with the default split, train from scratch for a fixed
step budget, evaluate the best checkpoint with COCO metrics, then export it and measure, side by
side, the AP of the exported SavedModel and of the web model (TF.js in Node, wasm), the calibrated
threshold and parity. Skips when ../shared is absent.

    python benchmarks/accuracy_kangaroo.py                      # default recipe, 320 model
    python benchmarks/accuracy_kangaroo.py --steps 600 --config ssd_mobilenet_v2_256 --work /tmp/kangaroo
    python benchmarks/accuracy_kangaroo.py --export-only        # re-export an existing run
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
    parser.add_argument("--export-only", action="store_true", help="skip training: export the run already there")
    args = parser.parse_args()
    if not KANGAROO.is_dir():
        print(f"skipped: {KANGAROO} is not present")
        return 0

    from webdet.data_prep.prepare import prepare
    from webdet.export.exporter import export_run
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
    if args.export_only:
        summary = json.loads((run / "summary.json").read_text())
    else:
        summary = train(data, run, config, progress=sys.stderr.isatty())
    minutes = (time.time() - start) / 60
    metrics = evaluate_detector(load_checkpoint_detector(run, "best"), data, run / "eval")
    print(format_metrics_table(metrics))
    report = export_run(run, work / f"export-{run.name}", overwrite=True)
    saved, web = report["evaluation"]["saved_model"], report["evaluation"]["web_model"]
    result = {"config": args.config, "overrides": args.set, "steps": summary["steps"],
              "train_minutes": round(minutes, 1), "images_per_sec": summary["images_per_sec"],
              **{k: round(metrics[k], 3) for k in ("AP", "AP50", "AR100")},
              "logged_best_AP": summary.get("best_AP"), "saved_model_AP": saved["AP"], "web_model_AP": web["AP"],
              "AP_change": report["evaluation"]["AP_change"], "calibration": report["calibration"],
              "parity": {k: report["parity"][k] for k in ("images", "detections", "web_detections", "min_iou",
                                                          "max_score_diff", "passed")}}
    print(json.dumps(result))
    print(f"kangaroo, from scratch, {summary['steps']} steps in {minutes:.0f} min on this machine: "
          f"AP {metrics['AP']:.3f}  AP50 {metrics['AP50']:.3f}  AR100 {metrics['AR100']:.3f} "
          f"(TF.js tutorial, COCO weights, 4 h Colab GPU: AP 0.222, AP50 0.405, AR100 0.514)")
    logged = "n/a" if summary.get("best_AP") is None else f"{summary['best_AP']:.4f}"
    print(f"AP logged in training {logged} vs webdet evaluate {metrics['AP']:.4f}; exported "
          f"SavedModel {saved['AP']:.4f} vs web model {web['AP']:.4f} (change {report['evaluation']['AP_change']:+.4f}); "
          f"calibrated threshold {report['calibration']['score_threshold']:.2f} (precision "
          f"{report['calibration']['precision']:.3f}, recall {report['calibration']['recall']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
