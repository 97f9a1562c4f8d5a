"""`webdet export`: a run's checkpoint → SavedModel (OD API signature) + TF.js web model + metadata,
with the browser model proven equal to the SavedModel before the export is called done."""
import json
import shutil
import time
from pathlib import Path

import tensorflow as tf

from webdet.contract import LabelMap
from webdet.data_prep.label_map import read_label_map
from webdet.export import calibration, parity as parity_check, web_model
from webdet.export.detector import WebModelDetector, load_saved_model_detector
from webdet.export.graphs import DetectionModule
from webdet.export.metadata import build_metadata, evaluation_from_run, web_model_version, write_metadata
from webdet.training.config import read_run_config
from webdet.training.detector import find_checkpoint
from webdet.training.model import build_model
from webdet.errors import WebdetError



def resolve_data_dir(data_dir, config: dict):
    """The prepared data whose test split calibrates and checks the export: --data (same classes as
    the run), else the run's own data if it is still there, else None."""
    if data_dir:
        label_map = Path(data_dir, "label_map.pbtxt")
        if not label_map.is_file():
            raise WebdetError(f"--data {data_dir}: not a prepared data folder (no label_map.pbtxt)")
        model_labels = LabelMap.of(config["data"]["labels"])
        if read_label_map(label_map) != model_labels:
            raise WebdetError(f"{label_map}: classes {sorted(read_label_map(label_map).items())} differ from "
                              f"the run's {sorted(model_labels.items())}")
        if not parity_check.has_test_split(data_dir):
            raise WebdetError(f"--data {data_dir}: no test split (test-*.tfrecord); run `webdet prepare` again")
        return Path(data_dir)
    own = config.get("data", {}).get("dir")
    return Path(own) if own and parity_check.has_test_split(own) else None


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty folder unless asked to replace it."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        if not overwrite:
            raise WebdetError(f"{out_dir}: already exists; pass --overwrite to replace it")
        if out_dir.is_dir():
            shutil.rmtree(out_dir)
        else:
            out_dir.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)


def save_saved_model(model, config: dict, out_dir: Path, label_map: Path) -> Path:
    """`saved_model/` with the OD API signature, and the same as a TF Serving version directory."""
    module = DetectionModule(model, config)
    path = out_dir / "saved_model"
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    (path / "assets").mkdir(exist_ok=True)
    shutil.copy(label_map, path / "assets" / "label_map.pbtxt")
    shutil.copytree(path, out_dir / "serving" / out_dir.name / "1")
    return path


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def load_run_model(run_dir: Path, config: dict, checkpoint: str):
    """The run's model with one checkpoint's weights; returns (model, checkpoint prefix)."""
    prefix = find_checkpoint(run_dir, checkpoint)
    label_map = run_dir / "label_map.pbtxt"
    if not label_map.is_file():
        raise WebdetError(f"{label_map}: missing; the run folder is incomplete")
    model = build_model(config, len(config["data"]["labels"]))
    tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    return model, prefix


def export_run(run_dir, out_dir, *, checkpoint="best", quantize=None, data_dir=None, overwrite=False,
               parity=True, name=None, log=print) -> dict:
    """Export one checkpoint of a run; returns the report (also written as `export_report.json`).

    `name` is the model's name in metadata.json (what the web app's title and the service show); by
    default the run folder's name, e.g. "kangaroo" for runs/kangaroo.

    On the run's test split (or --data's) the export measures the SavedModel, calibrates the
    default score threshold and, with `parity`, proves the web model gives the same detections.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    name = (name or "").strip() or run_dir.resolve().name
    started = time.time()
    if quantize not in web_model.QUANTIZATION:
        raise WebdetError(f"--quantize {quantize}: choose uint8, float16 or none")
    config = read_run_config(run_dir)
    configured = calibration.configured_threshold(config["export"].get("score_threshold", calibration.AUTO))
    model, prefix = load_run_model(run_dir, config, checkpoint)
    data = resolve_data_dir(data_dir, config)
    if data is None and parity:
        raise WebdetError(f"{run_dir}: the run's test images ({config.get('data', {}).get('dir')}) are gone, and "
                          "parity needs them; pass --data DIR (prepared, same classes) or --no-parity")
    prepare_out_dir(out_dir, overwrite)
    log(f"Exporting {prefix}")
    saved = save_saved_model(model, config, out_dir, run_dir / "label_map.pbtxt")
    web_dir = out_dir / "web_model"
    facts = web_model.convert(model, config, web_dir, quantize)
    shutil.copy(run_dir / "label_map.pbtxt", out_dir / "label_map.pbtxt")
    detector = load_saved_model_detector(saved)
    quantization = quantize or "none"
    version = web_model_version(web_dir)
    report = {"run": str(run_dir), "name": name, "version": version, "checkpoint": prefix, "quantization": quantization,
              "saved_model_bytes": _size(saved), "web_model_bytes": _size(web_dir),
              "shards": facts["shards"], "shard_count": len(facts["shards"]),
              "max_shard_bytes": max((web_dir / s).stat().st_size for s in facts["shards"]),
              "num_anchors": facts["num_anchors"], "graph_ops": facts["ops"],
              "graph_fixes": {k: facts[k] for k in ("shared_batch_norms_unfolded", "residual_adds_protected")}}
    evaluation = evaluation_from_run(run_dir, config, checkpoint)
    threshold = calibration.FALLBACK if configured == calibration.AUTO else configured
    if data:
        items = measure_saved_model(detector, saved, data, out_dir, config, configured, report, log)
        threshold, evaluation = report["calibration"]["score_threshold"], report["evaluation"]["saved_model"]
    metadata = build_metadata(config, name, facts["num_anchors"], quantization, evaluation,
                              threshold, report.get("calibration"), version)
    write_metadata(web_dir / "metadata.json", metadata)
    if data and parity:
        check_web_model(web_dir, items, config, quantization, report, log)
        metadata["evaluation"] = report["evaluation"]["web_model"]
        write_metadata(web_dir / "metadata.json", metadata)
    report["seconds"] = round(time.time() - started, 1)
    (out_dir / "export_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(f"Wrote {saved}, {out_dir / 'serving'} and {web_dir} ({name!r} version {version}, {report['shard_count']} "
        f"shard(s), {report['web_model_bytes'] / 1e6:.2f} MB, quantization {quantization}); report: "
        f"{out_dir / 'export_report.json'}")
    return report


def measure_saved_model(detector, saved: Path, data_dir: Path, out_dir: Path, config: dict, configured,
                        report: dict, log) -> list[dict]:
    """The SavedModel's AP and calibrated threshold on the test split, into `report`; returns the
    test items (images, ground truth, SavedModel predictions) for the web model's check."""
    from webdet.training.evaluate import evaluate_detector, run_detector

    items, _ = run_detector(detector, data_dir, detector.label_map)
    calibrated = calibration.calibrate([it["gt"] for it in items], [it["pred"] for it in items], detector.label_map,
                                       configured,
                                       minimum=float(config["eval"]["score_threshold"]) + parity_check.SCORE_TOLERANCE)
    log(calibration.describe(calibrated))
    metrics = evaluate_detector(detector, data_dir, out_dir / "eval", title=f"SavedModel {saved}")
    log(f"SavedModel on {data_dir}: AP {_fmt(metrics['AP'])}, AP50 {_fmt(metrics['AP50'])}")
    report["calibration"] = {**calibrated, "source": "exported SavedModel"}
    report["evaluation"] = {"saved_model": {**{k: metrics[k] for k in ("AP", "AP50", "AR100", "images",
                                                                        "ms_per_image")},
                                            "split": "test", "source": "exported SavedModel"}}
    return items


def check_web_model(web_dir: Path, items: list[dict], config: dict, quantization: str, report: dict, log) -> None:
    """Parity with the SavedModel and the web model's AP, from one run of it in Node on the test
    images, into `report`."""
    threshold, eval_threshold = report["calibration"]["score_threshold"], float(config["eval"]["score_threshold"])
    web_model = WebModelDetector(web_dir, "wasm")
    images = [parity_check.decode_rgb(it["encoded"]) for it in items]
    web = web_model.detect_many(images, parity_check.lowest_needed(threshold, eval_threshold))
    p = report["parity"] = {"backend": web_model.backend_used, **parity_check.check_parity(
        [it["detections"] for it in items], web, threshold, strict=quantization == "none", web_dir=web_dir)}
    log(f"Parity ({p['backend']}, {p['images']} test images, {p['detections']} SavedModel and "
        f"{p['web_detections']} web detections ≥ {threshold:.2f}): min IoU {p['min_iou']}, max score "
        f"difference {p['max_score_diff']} ({'passed' if p['passed'] else 'differences reported'})")
    web_metrics = parity_check.web_model_metrics([it["gt"] for it in items], web, web_model.label_map, eval_threshold)
    evaluation = report["evaluation"]
    evaluation["web_model"] = {**web_metrics, "backend": web_model.backend_used, "split": "test",
                               "source": "web model in TF.js"}
    saved_ap, web_ap = evaluation["saved_model"]["AP"], web_metrics["AP"]
    evaluation["AP_change"] = round(web_ap - saved_ap, 4) if None not in (saved_ap, web_ap) else None
    log(f"Web model ({web_model.backend_used}): AP {_fmt(web_ap)}, AP50 {_fmt(web_metrics['AP50'])}, change in AP "
        f"{_fmt(evaluation['AP_change'])}")


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
