"""`webdet export`: a run's checkpoint → SavedModel (OD API signature) + TF.js web model + metadata,
with the browser model proven equal to the SavedModel before the export is called done."""
import io
import json
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from export import parity as parity_check, web_model
from export.detector import load_saved_model_detector
from export.graphs import DetectionModule
from export.metadata import build_metadata, write_metadata
from training.config import read_run_config
from training.detector import find_checkpoint
from training.model import build_model
from webdet.errors import WebdetError

PARITY_IMAGES = 6


def sample_images(data_dir, count: int, seed: int = 0) -> list[np.ndarray]:
    """Test-split images when a data folder is given, else synthetic scenes."""
    if data_dir:
        from data_prep.tfrecords import data_files, iter_examples

        images = []
        for example in iter_examples(data_files(data_dir, "test")):
            images.append(np.asarray(Image.open(io.BytesIO(example["encoded"])).convert("RGB")))
            if len(images) == count:
                return images
        if images:
            return images
    from data_prep.synth import make_image

    rng = np.random.default_rng(seed)
    return [np.asarray(make_image(rng, 320, 240)[0]) for _ in range(count)]


def prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise WebdetError(f"{out_dir}: already exists; pass --overwrite to replace it")
        shutil.rmtree(out_dir)
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


def export_run(run_dir, out_dir, *, checkpoint="best", quantize=None, data_dir=None, overwrite=False,
               parity=True, log=print) -> dict:
    """Export one checkpoint of a run; returns the report (also `export_report.json`)."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    started = time.time()
    config = read_run_config(run_dir)
    prefix = find_checkpoint(run_dir, checkpoint)
    if quantize not in web_model.QUANTIZATION:
        raise WebdetError(f"--quantize {quantize}: choose uint8, float16 or none")
    prepare_out_dir(out_dir, overwrite)
    model = build_model(config, len(config["data"]["labels"]))
    tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    log(f"Exporting {prefix}")
    saved = save_saved_model(model, config, out_dir, run_dir / "label_map.pbtxt")
    web_dir = out_dir / "web_model"
    facts = web_model.convert(model, config, web_dir, quantize)
    summary = json.loads((run_dir / "summary.json").read_text()) if (run_dir / "summary.json").is_file() else {}
    evaluation = {k: summary.get(f"best_{k}") for k in ("AP", "AP50", "AR100")} if summary else {}
    quantization = quantize or "none"
    metadata = build_metadata(config, out_dir.name, facts["num_anchors"], quantization,
                              {**evaluation, "split": "test", "source": "training run"} if evaluation else {})
    write_metadata(web_dir / "metadata.json", metadata)
    shutil.copy(run_dir / "label_map.pbtxt", out_dir / "label_map.pbtxt")
    detector = load_saved_model_detector(saved)
    report = {"run": str(run_dir), "checkpoint": prefix, "quantization": quantization,
              "saved_model_bytes": _size(saved), "web_model_bytes": _size(web_dir),
              "shards": facts["shards"], "shard_count": len(facts["shards"]),
              "max_shard_bytes": max((web_dir / s).stat().st_size for s in facts["shards"]),
              "graph_ops": facts["ops"], "graph_fixes": {k: facts[k] for k in
                                                          ("shared_batch_norms_unfolded", "residual_adds_split")}}
    if parity:
        report["parity"] = parity_module_check(detector, web_dir, data_dir, metadata, strict=quantization == "none")
        log(f"Parity on {report['parity']['images']} images: min IoU {report['parity']['min_iou']}, "
            f"max score difference {report['parity']['max_score_diff']} "
            f"({'passed' if report['parity']['passed'] else 'differences reported'})")
    if data_dir:
        from training.evaluate import evaluate_detector

        metrics = evaluate_detector(detector, data_dir, out_dir / "eval", title=f"SavedModel {saved}")
        report["evaluation"] = {k: metrics[k] for k in ("AP", "AP50", "AR100", "images", "ms_per_image")}
        metadata["evaluation"] = {**{k: metrics[k] for k in ("AP", "AP50", "AR100")}, "split": "test",
                                  "images": metrics["images"], "source": "exported SavedModel"}
        write_metadata(web_dir / "metadata.json", metadata)
    report["seconds"] = round(time.time() - started, 1)
    (out_dir / "export_report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    log(f"Wrote {saved} and {web_dir} ({report['shard_count']} shard(s), {report['web_model_bytes'] / 1e6:.1f} MB)")
    return report


def parity_module_check(detector, web_dir: Path, data_dir, metadata: dict, strict: bool) -> dict:
    images = sample_images(data_dir, PARITY_IMAGES)
    return parity_check.check_parity(detector, web_dir, images, metadata["score_threshold"], strict)
