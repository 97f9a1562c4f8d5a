"""COCO metrics from arrays: answers worked out by hand from COCO's definitions."""
import json

import numpy as np
import pytest

from webdet.training.coco_metrics import STAT_NAMES, compute_coco_metrics

LABELS = {1: "cat", 2: "dog"}


def gt(image_id, boxes, classes, size=(200, 200)):
    return {"image_id": image_id, "width": size[0], "height": size[1],
            "boxes": np.array(boxes, float).reshape(-1, 4), "classes": np.array(classes, int)}


def pred(image_id, boxes, classes, scores=None):
    boxes = np.array(boxes, float).reshape(-1, 4)
    return {"image_id": image_id, "boxes": boxes, "classes": np.array(classes, int),
            "scores": np.array(scores if scores is not None else [0.9] * len(boxes), float)}


# Three medium-sized boxes (COCO: 32² ≤ area < 96²) on two images.
GTS = [gt(1, [[10, 10, 60, 60], [100, 100, 180, 190]], [1, 2]), gt(2, [[20, 30, 120, 90]], [1])]


def echo(groundtruths):
    """Predictions identical to the ground truth."""
    return [pred(g["image_id"], g["boxes"], g["classes"]) for g in groundtruths]


def shift_to_iou(box, iou):
    """The box moved right so that its IoU with the original is `iou`: (w - dx) / (w + dx) = iou."""
    x0, y0, x1, y1 = box
    dx = (x1 - x0) * (1 - iou) / (1 + iou)
    return [x0 + dx, y0, x1 + dx, y1]


def test_identical_boxes_score_one_everywhere_defined():
    metrics = compute_coco_metrics(GTS, echo(GTS), LABELS)
    for name in ("AP", "AP50", "AP75", "APm", "AR1", "AR10", "AR100", "ARm"):
        assert metrics[name] == pytest.approx(1.0), name
    assert metrics["per_class"]["cat"]["AP"] == pytest.approx(1.0)
    assert metrics["per_class"]["dog"]["AP50"] == pytest.approx(1.0)
    assert (metrics["images"], metrics["ground_truth_boxes"], metrics["detections"]) == (2, 3, 3)


def test_boxes_at_iou_06_pass_ap50_and_fail_ap75():
    preds = [pred(g["image_id"], [shift_to_iou(b, 0.6) for b in g["boxes"]], g["classes"]) for g in GTS]
    metrics = compute_coco_metrics(GTS, preds, LABELS)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert metrics["AP75"] == pytest.approx(0.0)
    assert metrics["per_class"]["cat"]["AP75"] == pytest.approx(0.0)


def test_ap_averages_the_ten_iou_thresholds():
    # IoU 0.62 passes the thresholds 0.50, 0.55 and 0.60 and fails the other seven.
    preds = [pred(g["image_id"], [shift_to_iou(b, 0.62) for b in g["boxes"]], g["classes"]) for g in GTS]
    metrics = compute_coco_metrics(GTS, preds, LABELS)
    assert metrics["AP"] == pytest.approx(0.3)
    assert metrics["per_class"]["dog"]["AP"] == pytest.approx(0.3)


def test_a_class_without_ground_truth_is_undefined_not_zero():
    labels = {**LABELS, 3: "emu"}
    metrics = compute_coco_metrics(GTS, echo(GTS), labels)
    emu = metrics["per_class"]["emu"]
    assert emu["AP"] is None and emu["AP50"] is None and emu["ground_truth"] == 0
    assert metrics["AP"] == pytest.approx(1.0), "an absent class does not drag the mean down"
    assert json.loads(json.dumps(metrics))["per_class"]["emu"]["AP"] is None, "written as JSON null"


def test_image_without_ground_truth_only_costs_its_false_positives():
    gts = GTS + [gt(3, [], [])]
    assert compute_coco_metrics(gts, echo(GTS), LABELS)["AP"] == pytest.approx(1.0)
    # A cat on the empty image scored above both true cats: precision 1/2 at recall 1/2 and 2/3 at
    # recall 1, so COCO's interpolated precision is 2/3 at every recall point.
    noisy = compute_coco_metrics(gts, echo(GTS) + [pred(3, [[0, 0, 50, 50]], [1], [0.95])], LABELS)
    assert noisy["per_class"]["cat"]["AP"] == pytest.approx(2 / 3)
    assert noisy["per_class"]["dog"]["AP"] == pytest.approx(1.0)
    # Scored below the true cats it costs nothing: every cat was found before it.
    late = compute_coco_metrics(gts, echo(GTS) + [pred(3, [[0, 0, 50, 50]], [1], [0.1])], LABELS)
    assert late["per_class"]["cat"]["AP"] == pytest.approx(1.0)


def test_empty_predictions_score_zero_where_ground_truth_exists():
    metrics = compute_coco_metrics(GTS, [], LABELS)
    assert metrics["AP"] == 0.0 and metrics["AR100"] == 0.0 and metrics["APm"] == 0.0
    assert metrics["per_class"]["dog"]["AP"] == 0.0 and metrics["detections"] == 0
    assert metrics["APs"] is None and metrics["APl"] is None, "no small or large ground truth: undefined"


def test_no_ground_truth_at_all_leaves_every_number_undefined():
    metrics = compute_coco_metrics([gt(1, [], [])], [pred(1, [[0, 0, 40, 40]], [1])], LABELS)
    assert all(metrics[name] is None for name in STAT_NAMES)
    assert metrics["per_class"]["cat"]["detections"] == 1


def test_object_sizes_follow_coco_areas():
    # A 20x20 (small) cat is found, a 150x150 (large) dog is missed.
    gts = [gt(1, [[10, 10, 30, 30], [40, 40, 190, 190]], [1, 2])]
    metrics = compute_coco_metrics(gts, [pred(1, [[10, 10, 30, 30]], [1])], LABELS)
    assert metrics["APs"] == pytest.approx(1.0) and metrics["APl"] == pytest.approx(0.0)
    assert metrics["APm"] is None


def test_ar1_allows_one_detection_per_image_and_class():
    gts = [gt(1, [[10, 10, 60, 60], [100, 100, 160, 160]], [1, 1])]
    metrics = compute_coco_metrics(gts, echo(gts), LABELS)
    assert metrics["AR1"] == pytest.approx(0.5) and metrics["AR10"] == pytest.approx(1.0)


def test_wrong_class_is_a_miss_and_a_false_positive():
    # The cat on image 1 is called a dog, more confidently than the real dog.
    preds = [pred(1, [[10, 10, 60, 60], [100, 100, 180, 190]], [2, 2], [0.95, 0.9]),
             pred(2, [[20, 30, 120, 90]], [1])]
    metrics = compute_coco_metrics(GTS, preds, LABELS)
    cat, dog = metrics["per_class"]["cat"], metrics["per_class"]["dog"]
    assert cat["AR100"] == pytest.approx(0.5)
    assert cat["AP"] == pytest.approx(51 / 101), "precision 1 at the 51 recall points 0.00..0.50, 0 beyond"
    assert dog["AP"] == pytest.approx(0.5), "false positive first: precision 1/2 when the dog is found"


def test_pycocotools_output_is_silenced(capsys):
    compute_coco_metrics(GTS, echo(GTS), LABELS)
    compute_coco_metrics(GTS, [], LABELS)
    assert capsys.readouterr().out == ""


def test_inputs_pycocotools_would_choke_on_are_named():
    with pytest.raises(ValueError, match="image_id 9 has no ground-truth entry"):
        compute_coco_metrics(GTS, [pred(9, [[0, 0, 5, 5]], [1])], LABELS)
    with pytest.raises(ValueError, match=r"class ids \[7\] are not in the label map"):
        compute_coco_metrics(GTS, [pred(1, [[0, 0, 5, 5]], [7])], LABELS)
    with pytest.raises(ValueError, match="image_id values must be unique"):
        compute_coco_metrics(GTS + GTS, [], LABELS)
