"""Evaluation pictures: matching and confusion counts with known answers, and PNGs that show them."""
import io

import numpy as np
import pytest
from matplotlib.colors import to_rgb
from PIL import Image

from webdet.training import eval_plots
from webdet.training.coco_metrics import run_cocoeval

LABELS = {1: "cat", 2: "dog"}


def gt(image_id, boxes, classes):
    return {"image_id": image_id, "width": 160, "height": 120, "boxes": np.array(boxes, float).reshape(-1, 4),
            "classes": np.array(classes, int)}


def pred(image_id, boxes, classes, scores):
    return {"image_id": image_id, "boxes": np.array(boxes, float).reshape(-1, 4), "classes": np.array(classes, int),
            "scores": np.array(scores, float)}


# Image 1: cat found, dog called a cat, one false dog, and a low-score dog under the threshold.
# Image 2: its only cat missed. Image 3: everything right.
GTS = [gt(1, [[10, 10, 50, 50], [80, 20, 140, 90]], [1, 2]), gt(2, [[30, 30, 90, 90]], [1]),
       gt(3, [[20, 20, 70, 70]], [2])]
PREDS = [pred(1, [[12, 10, 50, 52], [80, 22, 140, 90], [0, 90, 30, 118], [80, 20, 140, 90]], [1, 1, 2, 2],
              [0.9, 0.8, 0.7, 0.1]),
         pred(2, [], [], []),
         pred(3, [[20, 20, 70, 70]], [2], [0.95])]


def test_iou_matrix_by_pycocotools():
    ious = eval_plots.iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    assert ious == pytest.approx(np.array([[1 / 3, 1.0, 0.0]]))
    assert eval_plots.iou_matrix(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_iou_matrix_does_not_depend_on_memory_layout():
    # Fancy indexing (yxyx → xyxy) returns column-major arrays; pycocotools' C code reads raw memory.
    yxyx = np.array([[10, 10, 50, 50], [20, 80, 90, 140], [0, 0, 30, 30]], float)
    xyxy = yxyx[:, [1, 0, 3, 2]]
    assert xyxy.flags["F_CONTIGUOUS"] and not xyxy.flags["C_CONTIGUOUS"]
    assert eval_plots.iou_matrix(xyxy, xyxy) == pytest.approx(eval_plots.iou_matrix(xyxy.copy(order="C"),
                                                                                     xyxy.copy(order="C")))
    assert np.diag(eval_plots.iou_matrix(xyxy, xyxy)) == pytest.approx(1.0)


def test_match_counts_hits_confusions_misses_and_false_positives():
    match = eval_plots.match_image(GTS[0], PREDS[0], score_threshold=0.3)
    assert [(t, g) for t, g, _ in match.pairs] == [(1, 1), (2, 1)]
    assert match.false_positives == [2] and match.missed == [] and match.wrong_class == 1
    assert match.errors == 2
    # At threshold 0.05 the low-score dog joins, but the dog box is taken: one more false positive.
    assert eval_plots.match_image(GTS[0], PREDS[0], score_threshold=0.05).false_positives == [2, 2]


def test_confusion_matrix_rows_true_columns_predicted():
    matrix = eval_plots.confusion_matrix(GTS, PREDS, LABELS, score_threshold=0.3)
    #                 cat dog missed
    expected = np.array([[1, 0, 1],   # cat
                         [1, 1, 0],   # dog
                         [0, 1, 0]])  # background
    assert matrix.tolist() == expected.tolist()


def test_worst_images_come_first():
    items = [{"gt": g, "pred": p} for g, p in zip(GTS, PREDS)]
    ranked = eval_plots.worst_first(items, score_threshold=0.3)
    assert [item["gt"]["image_id"] for item, _ in ranked] == [1, 2, 3]
    assert [match.errors for _, match in ranked] == [2, 1, 0]


def jpeg(width=160, height=120, grey=128) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (grey, grey, grey)).save(out, "JPEG")
    return out.getvalue()


def colour_pixels(path, colour, tolerance=40) -> int:
    """How many pixels of the PNG are close to a matplotlib colour."""
    pixels = np.asarray(Image.open(path).convert("RGB"), np.int32)
    target = np.array(to_rgb(colour)) * 255
    return int(np.sum(np.all(np.abs(pixels - target) < tolerance, axis=-1)))


@pytest.fixture(scope="module")
def plots_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots")
    evaluator = run_cocoeval(GTS, PREDS, LABELS)
    eval_plots.pr_curve_plot(evaluator, {**LABELS}, out / "pr_curve.png")
    matrix = eval_plots.confusion_matrix(GTS, PREDS, LABELS, 0.3)
    eval_plots.confusion_plot(matrix, LABELS, out / "confusion.png", 0.3)
    items = [{"filename": f"image{g['image_id']}.jpg", "encoded": jpeg(), "gt": g, "pred": p}
             for g, p in zip(GTS, PREDS)]
    eval_plots.samples_plot(items, LABELS, out / "samples.png", 0.3)
    return out


@pytest.mark.parametrize("name", ["pr_curve.png", "confusion.png", "samples.png"])
def test_plots_are_valid_pngs_of_a_readable_size(plots_dir, name):
    with Image.open(plots_dir / name) as image:
        image.verify()
    with Image.open(plots_dir / name) as image:
        assert image.format == "PNG" and image.width >= 400 and image.height >= 300
        assert np.asarray(image.convert("L")).std() > 5, "not a blank canvas"


def test_samples_draw_ground_truth_and_predictions_in_their_own_colours(plots_dir):
    assert colour_pixels(plots_dir / "samples.png", eval_plots.GROUND_TRUTH_COLOUR) > 200
    cat_colour = eval_plots.PREDICTION_COLOURS[1 % len(eval_plots.PREDICTION_COLOURS)]
    dog_colour = eval_plots.PREDICTION_COLOURS[2 % len(eval_plots.PREDICTION_COLOURS)]
    assert colour_pixels(plots_dir / "samples.png", cat_colour) > 100
    assert colour_pixels(plots_dir / "samples.png", dog_colour) > 100


def test_pr_curve_draws_one_line_per_class_with_ground_truth(plots_dir):
    curve_colours = ("tab:blue", "tab:orange")  # matplotlib's first two cycle colours: cat, dog
    assert all(colour_pixels(plots_dir / "pr_curve.png", c, tolerance=25) > 100 for c in curve_colours)


def test_pr_curve_draws_no_curve_for_a_class_without_ground_truth(tmp_path):
    labels = {**LABELS, 3: "emu"}
    eval_plots.pr_curve_plot(run_cocoeval(GTS, PREDS, labels), labels, tmp_path / "pr.png")
    assert colour_pixels(tmp_path / "pr.png", "tab:green", tolerance=25) < 20, "no curve for emu"
