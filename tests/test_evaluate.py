"""COCO metrics with known answers, and `webdet evaluate` end to end on synthetic data."""
import json

import numpy as np
import pytest
from PIL import Image

from training.coco_metrics import compute_coco_metrics
from training.evaluate import evaluate_detector, format_metrics_table
from webdet.errors import WebdetError

LABELS = {1: "cat", 2: "dog"}


def gt(image_id, boxes, classes, size=(200, 200)):
    return {"image_id": image_id, "width": size[0], "height": size[1], "boxes": np.array(boxes, float).reshape(-1, 4),
            "classes": np.array(classes)}


def pred(image_id, boxes, classes, scores=None):
    boxes = np.array(boxes, float).reshape(-1, 4)
    return {"image_id": image_id, "boxes": boxes, "classes": np.array(classes),
            "scores": np.array(scores if scores is not None else [0.9] * len(boxes))}


GTS = [gt(1, [[10, 10, 60, 60], [100, 100, 180, 190]], [1, 2]), gt(2, [[20, 30, 120, 90]], [1])]


def test_identical_boxes_score_one():
    metrics = compute_coco_metrics(GTS, [pred(g["image_id"], g["boxes"], g["classes"]) for g in GTS], LABELS)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR100"] == pytest.approx(1.0)
    assert metrics["per_class"]["cat"]["AP"] == pytest.approx(1.0)


def shift_to_iou(box, iou):
    """Shift a box right so its IoU with the original is `iou`."""
    x0, y0, x1, y1 = box
    w = x1 - x0
    dx = w * (1 - iou) / (1 + iou)
    return [x0 + dx, y0, x1 + dx, y1]


def test_boxes_at_iou_06_pass_ap50_and_fail_ap75():
    preds = [pred(g["image_id"], [shift_to_iou(b, 0.6) for b in g["boxes"]], g["classes"]) for g in GTS]
    metrics = compute_coco_metrics(GTS, preds, LABELS)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == pytest.approx(0.0)


def test_a_class_without_ground_truth_is_undefined_not_zero():
    labels = {**LABELS, 3: "emu"}
    metrics = compute_coco_metrics(GTS, [pred(g["image_id"], g["boxes"], g["classes"]) for g in GTS], labels)
    assert metrics["per_class"]["emu"]["AP"] is None
    assert metrics["AP"] == pytest.approx(1.0), "an absent class does not drag the mean down"


def test_image_without_ground_truth_only_costs_its_false_positives():
    gts = GTS + [gt(3, [], [])]
    clean = compute_coco_metrics(gts, [pred(g["image_id"], g["boxes"], g["classes"]) for g in GTS], LABELS)
    assert clean["AP"] == pytest.approx(1.0)
    noisy = compute_coco_metrics(gts, [pred(g["image_id"], g["boxes"], g["classes"]) for g in GTS]
                                 + [pred(3, [[0, 0, 50, 50]], [1], [0.95])], LABELS)
    assert noisy["per_class"]["cat"]["AP"] < 1.0 and noisy["per_class"]["dog"]["AP"] == pytest.approx(1.0)


def test_empty_predictions_score_zero_without_crashing():
    metrics = compute_coco_metrics(GTS, [], LABELS)
    assert metrics["AP"] == 0.0 and metrics["per_class"]["dog"]["AP"] == 0.0


class GroundTruthDetector:
    """Answers with the test split's own boxes: a perfect model, optionally blind to one class."""

    def __init__(self, data_dir, drop_class=None, shift=0.0):
        from data_prep.label_map import read_label_map
        from data_prep.tfrecords import data_files, iter_examples

        self.label_map = read_label_map(data_dir / "label_map.pbtxt")
        self.answers = {(e["height"], e["width"], e["encoded"][-64:]): e for e in
                        iter_examples(data_files(data_dir, "test"))}
        self.drop_class, self.shift = drop_class, shift

    def __call__(self, image):
        import io

        for (h, w, _), e in self.answers.items():
            if (h, w) == image.shape[:2] and np.array_equal(np.asarray(Image.open(io.BytesIO(e["encoded"])).convert("RGB")), image):
                keep = e["classes"] != self.drop_class
                boxes = e["boxes"][keep] + [0, self.shift, 0, self.shift]
                return {"boxes": boxes, "scores": np.full(keep.sum(), 0.9), "classes": e["classes"][keep]}
        raise AssertionError("unknown image")


def test_evaluate_writes_metrics_tables_and_pictures(prepared_dir, tmp_path):
    metrics = evaluate_detector(GroundTruthDetector(prepared_dir), prepared_dir, tmp_path / "eval")
    assert metrics["AP"] == pytest.approx(1.0)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"} <= saved.keys()
    assert saved["ms_per_image"] >= 0 and saved["images"] == metrics["images"]
    for name in ("pr_curve.png", "confusion.png", "samples.png"):
        with Image.open(tmp_path / "eval" / name) as image:
            assert image.width > 300 and image.height > 200
    assert (tmp_path / "eval" / "per_class.csv").read_text().count("\n") == 4
    assert "AP50" in format_metrics_table(metrics)


def test_a_blind_class_shows_in_the_per_class_numbers(prepared_dir, tmp_path):
    metrics = evaluate_detector(GroundTruthDetector(prepared_dir, drop_class=2), prepared_dir, tmp_path / "eval")
    assert metrics["per_class"]["square"]["AP"] == 0.0
    assert metrics["per_class"]["circle"]["AP"] == pytest.approx(1.0)


def test_boxes_compared_in_original_pixels(prepared_dir, tmp_path):
    metrics = evaluate_detector(GroundTruthDetector(prepared_dir, shift=0.05), prepared_dir, tmp_path / "eval")
    assert metrics["AP50"] > 0.5 and metrics["AP"] < 0.9


def test_other_label_map_is_refused(prepared_dir, tmp_path):
    detector = GroundTruthDetector(prepared_dir)
    detector.label_map = {1: "kangaroo"}
    with pytest.raises(WebdetError, match="differ from the model"):
        evaluate_detector(detector, prepared_dir, tmp_path / "eval")


def test_checkpoint_and_exported_model_agree(tiny_run, exported_dir, prepared_dir, tmp_path):
    from export.detector import load_saved_model_detector
    from training.detector import load_checkpoint_detector

    checkpoint = evaluate_detector(load_checkpoint_detector(tiny_run), prepared_dir, tmp_path / "ckpt")
    exported = evaluate_detector(load_saved_model_detector(exported_dir / "saved_model"), prepared_dir,
                                 tmp_path / "saved")
    assert abs(checkpoint["AP"] - exported["AP"]) <= 0.005


def test_evaluate_cli_errors_are_one_line(tmp_path, capsys):
    from webdet.cli import main

    (tmp_path / "run").mkdir()
    assert main(["evaluate", "--run", str(tmp_path / "run")]) == 2
    assert "not a training run" in capsys.readouterr().err
    assert main(["evaluate", "--saved-model", str(tmp_path), "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a SavedModel" in err and err.count("\n") == 1
