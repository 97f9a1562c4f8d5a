"""`webdet evaluate` end to end on the synthetic prepared data, with detectors whose answers are known."""
import csv
import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from webdet.contract import from_od_api
from webdet.data_prep.label_map import read_label_map, write_label_map
from webdet.data_prep.tfrecords import data_files, iter_examples
from webdet.training.coco_metrics import STAT_NAMES
from webdet.training.evaluate import evaluate_detector, format_metrics_table
from webdet.cli import main
from webdet.errors import WebdetError


def pixels_key(image: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()


class GroundTruthDetector:
    """Answers each test image with its own ground truth: a perfect model, unless told to degrade.

    drop_class: never reports this label id. shift: moves boxes right by this fraction of the width.
    letterbox_bug: reports boxes relative to a square canvas instead of the image (a classic
    post-processing mistake). false_positives: adds this many boxes in a corner of each image,
    scored `false_positive_score` (true boxes score 0.9).
    """

    def __init__(self, data_dir, drop_class=None, shift=0.0, letterbox_bug=False, false_positives=0,
                 false_positive_score=0.95):
        self.label_map = read_label_map(data_dir / "label_map.pbtxt")
        self.answers = {}
        for example in iter_examples(data_files(data_dir, "test")):
            image = np.asarray(Image.open(io.BytesIO(example["encoded"])).convert("RGB"))
            self.answers[pixels_key(image)] = example
        self.drop_class, self.shift = drop_class, shift
        self.letterbox_bug, self.false_positives = letterbox_bug, false_positives
        self.false_positive_score = false_positive_score
        self.calls = 0

    source = "ground truth"

    def detect(self, image, score_threshold=0.0):
        return from_od_api(**self.raw(image), label_map=self.label_map, width=image.shape[1], height=image.shape[0],
                           score_threshold=score_threshold)

    def raw(self, image):
        """The OD API-style answer: normalised yxyx boxes, scores and class ids."""
        self.calls += 1
        example = self.answers[pixels_key(image)]
        keep = example["classes"] != self.drop_class
        boxes, classes = example["boxes"][keep] + [0, self.shift, 0, self.shift], example["classes"][keep]
        if self.letterbox_bug:
            h, w = image.shape[:2]
            boxes = boxes * [h / max(h, w), w / max(h, w), h / max(h, w), w / max(h, w)]
        scores = np.full(len(boxes), 0.9, np.float32)
        if self.false_positives:
            noise = np.tile([[0.0, 0.0, 0.05, 0.05]], (self.false_positives, 1))
            boxes = np.concatenate([boxes, noise])
            scores = np.concatenate([scores, np.full(self.false_positives, self.false_positive_score, np.float32)])
            classes = np.concatenate([classes, np.full(self.false_positives, min(self.label_map))])
        return {"boxes": boxes.astype(np.float32), "scores": scores, "classes": classes}


def class_id(labels, name):
    return next(i for i, n in labels.items() if n == name)


@pytest.fixture(scope="module")
def perfect(prepared_dir, tmp_path_factory):
    """A perfect detector's evaluation: (metrics, output folder)."""
    out = tmp_path_factory.mktemp("eval") / "perfect"
    return evaluate_detector(GroundTruthDetector(prepared_dir), prepared_dir, out, title="ground truth"), out


def test_a_perfect_detector_scores_one(perfect, prepared_dir):
    metrics, _ = perfect
    test_images = sum(1 for _ in iter_examples(data_files(prepared_dir, "test")))
    assert metrics["images"] == test_images > 0
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR100"] == pytest.approx(1.0)
    assert all(row["AP"] == pytest.approx(1.0) for row in metrics["per_class"].values())


def test_metrics_json_holds_what_a_user_needs(perfect, prepared_dir):
    metrics, out = perfect
    saved = json.loads((out / "metrics.json").read_text())
    assert list(saved)[:12] == list(STAT_NAMES)
    assert saved["images"] == metrics["images"] and saved["evaluated"] == "ground truth"
    assert saved["data"] == str(prepared_dir.resolve()) and saved["split"] == "test"
    assert saved["ms_per_image"] > 0
    assert set(saved["per_class"]) == set(read_label_map(prepared_dir / "label_map.pbtxt").values())
    assert saved["ground_truth_boxes"] == sum(row["ground_truth"] for row in saved["per_class"].values())


def test_a_perfect_detector_confuses_nothing(perfect):
    metrics, _ = perfect
    matrix = np.array(metrics["confusion"]["matrix"])
    assert np.trace(matrix) == metrics["ground_truth_boxes"] and matrix.sum() == np.trace(matrix)
    assert metrics["confusion"]["rows"][-1] == "(background)" and metrics["confusion"]["columns"][-1] == "(missed)"


def test_per_class_csv_has_one_row_per_class(perfect, prepared_dir):
    _, out = perfect
    with open(out / "per_class.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    labels = read_label_map(prepared_dir / "label_map.pbtxt")
    assert [row["class"] for row in rows] == [labels[i] for i in sorted(labels)]
    assert all(float(row["AP"]) == pytest.approx(1.0) and int(row["ground_truth"]) > 0 for row in rows)


def test_pictures_are_written_as_valid_pngs(perfect):
    _, out = perfect
    for name, min_width in (("pr_curve.png", 400), ("confusion.png", 400), ("samples.png", 1000)):
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width >= min_width and image.height >= 300, name


def test_printed_table_shows_every_number_and_the_speed(perfect):
    metrics, _ = perfect
    table = format_metrics_table(metrics)
    assert all(name in table for name in STAT_NAMES)
    assert all(name in table for name in metrics["per_class"])
    assert f"{metrics['ms_per_image']:.1f} ms per image" in table


def test_a_blind_class_shows_in_the_per_class_numbers(prepared_dir, tmp_path):
    labels = read_label_map(prepared_dir / "label_map.pbtxt")
    detector = GroundTruthDetector(prepared_dir, drop_class=class_id(labels, "square"))
    metrics = evaluate_detector(detector, prepared_dir, tmp_path / "eval")
    assert metrics["per_class"]["square"]["AP"] == 0.0 and metrics["per_class"]["square"]["detections"] == 0
    assert metrics["per_class"]["circle"]["AP"] == pytest.approx(1.0)
    assert metrics["AP"] == pytest.approx(2 / 3), "the mean over three classes loses one"
    confusion = metrics["confusion"]
    square_row = confusion["matrix"][confusion["rows"].index("square")]
    assert square_row[-1] == metrics["per_class"]["square"]["ground_truth"] and sum(square_row[:-1]) == 0


def test_shifted_boxes_lose_the_strict_thresholds_first(prepared_dir, tmp_path):
    metrics = evaluate_detector(GroundTruthDetector(prepared_dir, shift=0.03), prepared_dir, tmp_path / "eval")
    assert metrics["AP50"] > 0.9 and metrics["AP75"] < metrics["AP50"] and metrics["AP"] < 0.9


def test_boxes_are_compared_in_original_pixels(prepared_dir, tmp_path):
    """Boxes normalised to a letterboxed square instead of the (non-square) image must cost AP."""
    metrics = evaluate_detector(GroundTruthDetector(prepared_dir, letterbox_bug=True), prepared_dir, tmp_path / "e")
    assert metrics["AP"] < 0.5


def test_confident_false_positives_cost_ap(prepared_dir, tmp_path):
    noisy = GroundTruthDetector(prepared_dir, false_positives=2, false_positive_score=0.95)
    assert evaluate_detector(noisy, prepared_dir, tmp_path / "eval")["AP"] < 0.9


def test_score_threshold_drops_detections_before_scoring(prepared_dir, tmp_path):
    noisy = GroundTruthDetector(prepared_dir, false_positives=2, false_positive_score=0.5)
    scored_all = evaluate_detector(noisy, prepared_dir, tmp_path / "all")
    assert scored_all["detections"] == scored_all["ground_truth_boxes"] + 2 * scored_all["images"]
    assert scored_all["AP"] == pytest.approx(1.0), "COCO: false positives ranked below every hit cost nothing"
    confident = evaluate_detector(noisy, prepared_dir, tmp_path / "cut", score_threshold=0.6)
    assert confident["detections"] == confident["ground_truth_boxes"] and confident["score_threshold"] == 0.6


def test_max_images_limits_the_run_and_the_timing_call_is_extra(prepared_dir, tmp_path):
    detector = GroundTruthDetector(prepared_dir)
    metrics = evaluate_detector(detector, prepared_dir, tmp_path / "eval", max_images=3)
    assert metrics["images"] == 3 and metrics["max_images"] == 3
    assert detector.calls == 4, "one warm-up call, then one timed call per image"


def test_a_data_folder_with_another_label_map_is_refused(prepared_dir, tmp_path):
    detector = GroundTruthDetector(prepared_dir)
    detector.label_map = {1: "kangaroo"}
    with pytest.raises(WebdetError, match=r"label_map.pbtxt: classes .*circle.* differ from the model's .*kangaroo"):
        evaluate_detector(detector, prepared_dir, tmp_path / "eval")


class UnknownClassDetector(GroundTruthDetector):
    """Right boxes, but labelled with an id its label map does not have."""
    source = "models/wrong"

    def raw(self, image):
        answer = super().raw(image)
        return {**answer, "classes": np.full(len(answer["scores"]), 9)}


def test_a_detector_answering_with_unknown_classes_is_refused(prepared_dir, tmp_path):
    with pytest.raises(WebdetError, match=r"models/wrong: on .* returned class ids \[9\]"):
        evaluate_detector(UnknownClassDetector(prepared_dir), prepared_dir, tmp_path / "eval")


class NaNBoxDetector(GroundTruthDetector):
    """Right classes and scores, but the boxes of a model whose weights went to NaN."""
    source = "models/diverged"

    def raw(self, image):
        answer = super().raw(image)
        return {**answer, "boxes": np.full_like(np.asarray(answer["boxes"], np.float64), np.nan)}


def test_a_detector_answering_with_nan_boxes_is_refused_not_scored(prepared_dir, tmp_path):
    with pytest.raises(WebdetError, match=r"models/diverged: on .* returned a box or score that is not a finite"):
        evaluate_detector(NaNBoxDetector(prepared_dir), prepared_dir, tmp_path / "eval")
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_a_folder_without_test_records_is_named(prepared_dir, tmp_path):
    shutil.copy(prepared_dir / "label_map.pbtxt", tmp_path / "label_map.pbtxt")
    with pytest.raises(WebdetError, match="no test-.*tfrecord shards"):
        evaluate_detector(GroundTruthDetector(prepared_dir), tmp_path, tmp_path / "eval")


def one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


def test_cli_bad_input_gives_one_line_errors(tmp_path, capsys):
    from webdet.training.config import load_config, save_config

    (tmp_path / "empty").mkdir()
    assert "not a training run" in one_line_error(capsys, ["evaluate", "--run", str(tmp_path / "empty")])
    (tmp_path / "run").mkdir()
    save_config(load_config("tiny"), tmp_path / "run" / "config.yaml")
    assert "no checkpoint yet" in one_line_error(capsys, ["evaluate", "--run", str(tmp_path / "run")])
    err = one_line_error(capsys, ["evaluate", "--saved-model", str(tmp_path), "--data", str(tmp_path)])
    assert "not a SavedModel" in err
    err = one_line_error(capsys, ["evaluate", "--saved-model", str(tmp_path), "--checkpoint", "last"])
    assert "--checkpoint: only with --run" in err
    assert "--max-images 0" in one_line_error(capsys, ["evaluate", "--run", str(tmp_path), "--max-images", "0"])


def test_cli_refuses_a_saved_model_that_is_not_a_detector(tmp_path, capsys):
    import tensorflow as tf

    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "saved_model"), signatures={"serving_default": module.double})
    err = one_line_error(capsys, ["evaluate", "--saved-model", str(tmp_path / "saved_model"), "--data", str(tmp_path)])
    assert "not a detection model" in err


def test_checkpoint_and_exported_model_agree_through_the_cli(tiny_run, exported_dir, prepared_dir, tmp_path, capsys):
    """The export relies on this: the deployed SavedModel scores what its checkpoint scored."""
    assert main(["evaluate", "--run", str(tiny_run), "--out", str(tmp_path / "ckpt")]) == 0
    printed = capsys.readouterr().out
    assert "AP50" in printed and "ms per image" in printed
    lines = printed.splitlines()
    first = lines[next(i for i, line in enumerate(lines) if line.split() == list(STAT_NAMES[:6])) + 1].split()
    second = lines[next(i for i, line in enumerate(lines) if line.split() == list(STAT_NAMES[6:])) + 1].split()
    summary = json.loads((tiny_run / "summary.json").read_text())
    recorded = tuple(f"{summary[k]:.3f}" for k in ("best_AP", "best_AP50", "best_AR100"))
    assert (first[0], first[1], second[2]) == recorded, "`webdet evaluate --run` prints what training recorded"
    assert main(["evaluate", "--saved-model", str(exported_dir / "saved_model"), "--data", str(prepared_dir),
                 "--out", str(tmp_path / "saved")]) == 0
    checkpoint = json.loads((tmp_path / "ckpt" / "metrics.json").read_text())
    exported = json.loads((tmp_path / "saved" / "metrics.json").read_text())
    assert checkpoint["detections"] > 0 and checkpoint["images"] == exported["images"]
    assert (checkpoint["AP"], checkpoint["AP50"], checkpoint["AR100"]) == \
        (summary["best_AP"], summary["best_AP50"], summary["best_AR100"])
    assert checkpoint["evaluated"].startswith("checkpoint ") and exported["evaluated"].startswith("SavedModel ")
    assert abs(checkpoint["AP"] - exported["AP"]) <= 0.005
    assert abs(checkpoint["AP50"] - exported["AP50"]) <= 0.005


def test_cli_data_with_another_label_map_is_refused(exported_dir, prepared_dir, tmp_path, capsys):
    other = tmp_path / "other_data"
    other.mkdir()
    for shard in data_files(prepared_dir, "test"):
        shutil.copy(shard, other)
    write_label_map(other / "label_map.pbtxt", ["kangaroo"])
    err = one_line_error(capsys, ["evaluate", "--saved-model", str(exported_dir / "saved_model"),
                                  "--data", str(other)])
    assert "other_data/label_map.pbtxt" in err and "kangaroo" in err and "circle" in err


def test_cli_last_checkpoint_on_a_few_images(tiny_run, tmp_path, capsys):
    assert main(["evaluate", "--run", str(tiny_run), "--checkpoint", "last", "--max-images", "4",
                 "--out", str(tmp_path / "last")]) == 0
    saved = json.loads((tmp_path / "last" / "metrics.json").read_text())
    assert saved["images"] == 4 and "ckpt-" in saved["model"]
    assert sorted(p.name for p in (tmp_path / "last").iterdir()) == sorted(saved["files"])
