"""The export's default threshold: max F1 at IoU 0.5 on the test split, by pycocotools' matching."""
import numpy as np
import pytest

from webdet.errors import WebdetError
from webdet.export.calibration import calibrate, configured_threshold

LABELS = {1: "cat", 2: "dog"}
GTS = [{"image_id": 1, "height": 100, "width": 100, "boxes": np.array([[10, 10, 40, 40]]), "classes": np.array([1])},
       {"image_id": 2, "height": 100, "width": 100, "boxes": np.array([[50, 50, 90, 90]]), "classes": np.array([2])}]


def _preds(rows):
    """rows: (image_id, box, score, class)."""
    preds = []
    for image_id in (1, 2):
        mine = [r for r in rows if r[0] == image_id]
        preds.append({"image_id": image_id, "boxes": np.array([r[1] for r in mine], float).reshape(-1, 4),
                      "scores": np.array([r[2] for r in mine], float),
                      "classes": np.array([r[3] for r in mine], int)})
    return preds


RIGHT_CAT, RIGHT_DOG, WRONG = [11, 11, 40, 40], [50, 50, 88, 90], [60, 0, 99, 30]
# By score: 0.9 right (P 1, R .5, F1 .67), 0.8 wrong (.5, .5, .5), 0.64 right (.67, 1, .8), 0.4 wrong (.5, 1, .67).
ROWS = [(1, RIGHT_CAT, 0.9, 1), (1, WRONG, 0.8, 1), (2, RIGHT_DOG, 0.648, 2), (2, WRONG, 0.4, 2)]


def test_the_threshold_maximises_f1_over_all_classes():
    result = calibrate(GTS, _preds(ROWS), LABELS)
    assert result["method"] == "max_f1" and result["score_threshold"] == 0.64  # floored to the slider's 0.01
    assert (result["precision"], result["recall"], result["f1"]) == (0.6667, 1.0, 0.8)
    assert result["images"] == 2 and result["ground_truth_boxes"] == 2


def test_a_box_of_the_wrong_class_or_place_is_not_a_hit():
    rows = [(1, RIGHT_CAT, 0.9, 2), (2, WRONG, 0.7, 2), (2, RIGHT_DOG, 0.2, 2)]
    result = calibrate(GTS, _preds(rows), LABELS)
    assert result["score_threshold"] == 0.2 and result["recall"] == 0.5 and result["precision"] == pytest.approx(1 / 3, abs=1e-4)


def test_never_below_the_minimum():
    rows = [(1, RIGHT_CAT, 0.05, 1), (2, RIGHT_DOG, 0.06, 2)]
    assert calibrate(GTS, _preds(rows), LABELS, minimum=0.07)["score_threshold"] == 0.07


def test_a_model_that_finds_nothing_right_keeps_the_fallback_and_says_why():
    result = calibrate(GTS, _preds([(1, WRONG, 0.9, 1)]), LABELS)
    assert result["method"] == "fixed" and result["score_threshold"] == 0.3
    assert "no detection matches" in result["reason"] and result["precision"] == 0.0


def test_a_configured_threshold_is_kept_with_its_precision_and_recall():
    result = calibrate(GTS, _preds(ROWS), LABELS, configured=0.85)
    assert result["method"] == "fixed" and result["score_threshold"] == 0.85 and "config" in result["reason"]
    assert (result["precision"], result["recall"]) == (1.0, 0.5)


@pytest.mark.parametrize("value", ["nan", "0", "1.5", "high", None, -0.2])
def test_a_bad_configured_threshold_names_the_key(value):
    with pytest.raises(WebdetError, match="export.score_threshold="):
        configured_threshold(value)


def test_auto_and_numbers_are_accepted():
    assert configured_threshold("auto") == "auto" and configured_threshold(0.4) == 0.4
