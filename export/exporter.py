"""`webdet export`: a run's checkpoint → SavedModel (OD API signature) + TF.js web model + metadata,
with the browser model proven equal to the SavedModel before the export is called done."""
import json
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from webdet.data_prep.label_map import read_label_map
from webdet.export import parity as parity_check, web_model
from webdet.export.detector import load_saved_model_detector
from webdet.export.graphs import DetectionModule
from webdet.export.metadata import build_metadata, evaluation_from_run, write_metadata
from webdet.training.config import read_run_config
from webdet.training.detector import find_checkpoint
from webdet.training.model import build_model
from webdet.errors import WebdetError

PARITY_IMAGES = 6
SYNTHETIC_SIZE = (240, 320)  # height, width: a landscape frame, so the letterbox padding is exercised


def resolve_data_dir(data_dir, config: dict):
    """The data folder for parity images: --data, else the run's own data if it is still there."""
    if data_dir:
        label_map = Path(data_dir, "label_map.pbtxt")
        if not label_map.is_file():
            raise WebdetError(f"--data {data_dir}: not a prepared data folder (no label_map.pbtxt)")
        model_labels = {int(k): v for k, v in config["data"]["labels"].items()}
        if read_label_map(label_map) != model_labels:
            raise WebdetError(f"{label_map}: classes {sorted(read_label_map(label_map).items())} differ from "
                              f"the run's {sorted(model_labels.items())}")
        return Path(data_dir)
    own = config.get("data", {}).get("dir")
    return Path(own) if own and parity_check.has_test_split(own) else None


def sample_images(data_dir, count: int, seed: int = 0) -> list[np.ndarray]:
    """Test-split images when a data folder is given, else synthetic scenes."""
    if data_dir and parity_check.has_test_split(data_dir):
        return [item["image"] for item in parity_check.read_test_split(data_dir)[:count]]
    from webdet.data_prep.synth import make_image

    rng = np.random.default_rng(seed)
    height, width = SYNTHETIC_SIZE
    return [np.asarray(make_image(rng, width, height)[0]) for _ in range(count)]


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
    module = DetectionModule(model, int(config["model"]["input_size"]))
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
               parity=True, log=print) -> dict:
    """Export one checkpoint of a run; returns the report (also written as `export_report.json`)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    started = time.time()
    if quantize not in web_model.QUANTIZATION:
        raise WebdetError(f"--quantize {quantize}: choose uint8, float16 or none")
    config = read_run_config(run_dir)
    model, prefix = load_run_model(run_dir, config, checkpoint)
    evaluate_on = resolve_data_dir(data_dir, config) if data_dir else None
    parity_data = evaluate_on or resolve_data_dir(None, config)
    prepare_out_dir(out_dir, overwrite)
    log(f"Exporting {prefix}")
    saved = save_saved_model(model, config, out_dir, run_dir / "label_map.pbtxt")
    web_dir = out_dir / "web_model"
    facts = web_model.convert(model, config, web_dir, quantize)
    quantization = quantize or "none"
    metadata = build_metadata(config, out_dir.name, facts["num_anchors"], quantization,
                              evaluation_from_run(run_dir, config, checkpoint))
    write_metadata(web_dir / "metadata.json", metadata)
    shutil.copy(run_dir / "label_map.pbtxt", out_dir / "label_map.pbtxt")
    detector = load_saved_model_detector(saved)
    shards = facts["shards"]
    report = {"run": str(run_dir), "checkpoint": prefix, "quantization": quantization,
              "saved_model_bytes": _size(saved), "web_model_bytes": _size(web_dir),
              "shards": shards, "shard_count": len(shards),
              "max_shard_bytes": max((web_dir / s).stat().st_size for s in shards),
              "num_anchors": facts["num_anchors"], "graph_ops": facts["ops"],
              "graph_fixes": {k: facts[k] for k in ("shared_batch_norms_unfolded", "residual_adds_protected")}}
    if parity:
        images = sample_images(parity_data, PARITY_IMAGES)
        report["parity"] = parity_check.check_parity(detector, web_dir, images, metadata["score_threshold"],
                                                     strict=quantization == "none")
        report["parity"]["images_from"] = f"{parity_data} (test split)" if parity_data else "synthetic"
        p = report["parity"]
        log(f"Parity ({p['backend']}, {p['images']} images, {p['detections']} detections): min IoU "
            f"{p['min_iou']}, max score difference {p['max_score_diff']} "
            f"({'passed' if p['passed'] else 'differences reported'})")
    if evaluate_on:
        report["evaluation"] = evaluate_export(detector, saved, web_dir, evaluate_on, out_dir, config, parity, log)
        metadata["evaluation"] = report["evaluation"]["web_model" if parity else "saved_model"]
        write_metadata(web_dir / "metadata.json", metadata)
    report["seconds"] = round(time.time() - started, 1)
    (out_dir / "export_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(f"Wrote {saved}, {out_dir / 'serving'} and {web_dir} ({report['shard_count']} shard(s), "
        f"{report['web_model_bytes'] / 1e6:.2f} MB, quantization {quantization}); report: "
        f"{out_dir / 'export_report.json'}")
    return report


def evaluate_export(detector, saved: Path, web_dir: Path, data_dir: Path, out_dir: Path, config: dict,
                    with_web: bool, log) -> dict:
    """AP of the exported SavedModel (through `webdet evaluate`'s code) and of the web model in Node."""
    from webdet.training.evaluate import evaluate_detector

    metrics = evaluate_detector(detector, data_dir, out_dir / "eval", title=f"SavedModel {saved}")
    result = {"saved_model": {**{k: metrics[k] for k in ("AP", "AP50", "AR100", "images", "ms_per_image")},
                              "split": "test", "source": "exported SavedModel"}}
    log(f"SavedModel on {data_dir}: AP {_fmt(metrics['AP'])}, AP50 {_fmt(metrics['AP50'])}")
    if with_web:
        labels = {int(k): v for k, v in config["data"]["labels"].items()}
        web = parity_check.evaluate_web_model(web_dir, data_dir, labels, float(config["eval"]["score_threshold"]))
        result["web_model"] = {**web, "split": "test", "source": "web model in TF.js"}
        both = metrics["AP"] is not None and web["AP"] is not None
        result["AP_change"] = round(web["AP"] - metrics["AP"], 4) if both else None
        log(f"Web model ({web['backend']}): AP {_fmt(web['AP'])}, AP50 {_fmt(web['AP50'])}, change in AP "
            f"{_fmt(result['AP_change'])}")
    return result


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
