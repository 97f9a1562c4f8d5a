"""Merge-NMS (`eval.merge_boxes`): the TensorFlow side agrees with the contract's worked case, the detectors
built from a run move boxes and nothing else, and the setting is checked."""
import copy
import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from webdet.errors import WebdetError
from webdet.training.box_merge import merge_boxes

FIXTURE = Path(__file__).parent / "fixtures" / "postprocess_cases.json"


def merge_case() -> dict:
    return next(c for c in json.loads(FIXTURE.read_text())["cases"] if c["metadata"].get("merge_boxes"))


def test_tensorflow_merge_gives_the_worked_case_of_the_web_contract():
    """The SavedModel's merge (TF, input pixels) and the web app's (docs/metadata.md) move a box to the same place."""
    case = merge_case()
    meta, size = case["metadata"], 320
    candidates = tf.constant(case["boxes"], tf.float32)[tf.newaxis, :, tf.newaxis, :] * size
    # What NMS kept: the cat of anchor 0 and the dog of anchor 4, then a padding row.
    kept = tf.constant([[case["boxes"][0], case["boxes"][4], [0.0] * 4]], tf.float32) * size
    outputs = {"detection_boxes": kept, "detection_classes": tf.constant([[1, 2, 0]]),
               "decoded_boxes": candidates, "decoded_box_scores": tf.constant([case["scores"]], tf.float32)}
    merged = merge_boxes(outputs, meta["iou_threshold"], meta["min_score"]).numpy()[0]
    scale = 0.5  # the 640x480 frame letterboxed into 320x320
    for row, expected in zip(merged, case["expected"]):
        y0, x0, y1, x1 = row / scale
        assert [x0, y0, x1, y1] == pytest.approx(expected["box"], abs=1e-3)
    assert merged[2].tolist() == [0.0] * 4


def test_merge_boxes_moves_boxes_and_keeps_which_and_how_sure(tiny_run):
    """A checkpoint scored with merge-NMS finds the same objects with the same scores, in places that differ."""
    from webdet.training.config import read_run_config
    from webdet.training.detector import CheckpointDetector, find_checkpoint
    from webdet.export.parity import read_test_split

    config = read_run_config(tiny_run)
    assert config["eval"]["merge_boxes"] is True  # the default
    plain = copy.deepcopy(config)
    plain["eval"]["merge_boxes"] = False
    prefix = find_checkpoint(tiny_run)
    merged_detector, plain_detector = CheckpointDetector(config, prefix), CheckpointDetector(plain, prefix)
    moved = 0
    for item in read_test_split(config["data"]["dir"])[:6]:
        image = item["image"]
        with_merge, without = merged_detector.detect(image), plain_detector.detect(image)
        assert [(d["score"], d["label_id"]) for d in with_merge] == [(d["score"], d["label_id"]) for d in without]
        h, w = image.shape[:2]
        for m, p in zip(with_merge, without):
            assert 0 <= m["box"][0] <= m["box"][2] <= w and 0 <= m["box"][1] <= m["box"][3] <= h
            moved += not np.allclose(m["box"], p["box"], atol=0.5)
    assert moved > 0


def test_export_tells_the_web_app_to_merge(exported_dir):
    metadata = json.loads((exported_dir / "web_model" / "metadata.json").read_text())
    assert metadata["merge_boxes"] is True and metadata["nms"] == "per_class"


@pytest.mark.parametrize("value", ["1", "0.5", "yes_please", "null"])
def test_config_rejects_a_merge_boxes_that_is_not_true_or_false(value):
    from webdet.training.config import apply_overrides, load_config, validate

    with pytest.raises(WebdetError, match=r"eval.merge_boxes=.*: must be true \(merge-NMS\) or false"):
        validate(apply_overrides(load_config("tiny"), [f"eval.merge_boxes={value}"]))
