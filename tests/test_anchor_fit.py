"""The anchor check a run starts with: how many train boxes have an anchor the labeler will match them to."""
import json

import numpy as np

from webdet.training.anchor_fit import POOR_FIT, anchor_fit, describe, iou_with_anchors, model_anchors, train_boxes
from webdet.training.config import apply_overrides, load_config
from webdet.data_prep.tfrecords import data_files, iter_examples


def tiny_model(*overrides):
    return apply_overrides(load_config("tiny"), list(overrides))["model"]


def test_a_box_is_matched_by_the_anchors_that_overlap_it_enough():
    anchors = np.array([[0, 0, 40, 40], [0, 0, 40, 80], [100, 100, 120, 120]], np.float64)
    boxes = np.array([[0, 0, 40, 40],     # the first anchor exactly, half of the second
                      [0, 0, 40, 20],     # half of the first anchor, a quarter of the second
                      [60, 60, 70, 70]])  # touches none
    best, positives = iou_with_anchors(boxes, anchors)
    np.testing.assert_allclose(best, [1.0, 0.5, 0.0])
    assert positives.tolist() == [2, 1, 0]


def test_train_boxes_are_measured_in_input_pixels_after_the_letterbox(prepared_dir):
    example = next(iter_examples(data_files(prepared_dir, "train")))
    h, w = example["height"], example["width"]
    box = train_boxes(prepared_dir, 128)[0]
    scale = 128 / max(h, w)
    ymin, xmin, ymax, xmax = example["boxes"][0]
    np.testing.assert_allclose(box, [ymin * h * scale, xmin * w * scale, ymax * h * scale, xmax * w * scale],
                               rtol=1e-5)
    assert model_anchors(tiny_model()).shape == (sum((128 // 2 ** level) ** 2 for level in range(3, 7)) * 2 * 3, 4)


def test_the_tiny_anchors_fit_the_synthetic_shapes_and_a_poor_set_is_named(prepared_dir):
    fit = anchor_fit(prepared_dir, tiny_model())
    assert fit["best_possible_recall"] >= POOR_FIT and fit["positives_per_box"] > 3
    assert describe(fit).startswith(f"Anchors: {fit['covered']}/{fit['boxes']} train boxes have an anchor at IoU ≥ 0.5")
    assert "poor fit" not in describe(fit)

    poor = anchor_fit(prepared_dir, tiny_model("model.aspect_ratios=[6.0]", "model.anchor_size=1.0"))
    assert poor["best_possible_recall"] < 0.5
    assert "poor fit" in describe(poor) and "model.anchor_size (1)" in describe(poor)
    assert "model.aspect_ratios ([6.0])" in describe(poor)


def test_a_new_run_reports_the_anchor_fit_and_saves_it(tiny_run):
    fit = json.loads((tiny_run / "anchor_fit.json").read_text())
    assert fit["boxes"] > 100 and 0.0 <= fit["best_possible_recall"] <= 1.0
    assert fit["anchor_size"] == load_config("tiny")["model"]["anchor_size"]
