"""The web app's loader on a TF2 Object Detection API export: a tiny SavedModel with the OD API serving
signature, converted with the real tensorflowjs converter and run in Node through detector.js load().

The graph finds the white and the red pixels of a frame and proposes a box around each, plus a grown copy of
the white one that non-max suppression (in the graph, as OD API exports have it) must drop. NMS is a dynamic op
in TF.js, so the graph runs with executeAsync only; the test checks that model.execute() refuses it, so it
cannot pass on a graph that would not exercise the OD API path. The records must match what TensorFlow's own
SavedModel signature gives for the same frames.
"""
import json
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf
from tensorflowjs.converters import tf_saved_model_conversion_v2 as tfjs_conversion

from webdet.contract import box_iou

from conftest import REPO

RUNNER = REPO / "webapp" / "tools" / "run_model.mjs"
MAX_DETECTIONS = 10
HEIGHT, WIDTH = 96, 128
WHITE_SCORE, RED_SCORE = 0.9, 0.35  # red fills half its box: 0.2 + 0.3 * 0.5
LABELS = [{"id": 1, "name": "white"}, {"id": 2, "name": "red"}]


def extent(mask):
    """Normalised [ymin, xmin, ymax, xmax] around a [H, W] mask's pixels, the share of the box they fill,
    and 1.0 when there are any (0.0 otherwise)."""
    h, w = tf.shape(mask)[0], tf.shape(mask)[1]
    rows = tf.reduce_max(tf.cast(mask, tf.int32), axis=1) > 0
    cols = tf.reduce_max(tf.cast(mask, tf.int32), axis=0) > 0
    ys, xs = tf.range(h), tf.range(w)
    y0 = tf.reduce_min(tf.where(rows, ys, h))
    y1 = tf.reduce_max(tf.where(rows, ys + 1, 0))
    x0 = tf.reduce_min(tf.where(cols, xs, w))
    x1 = tf.reduce_max(tf.where(cols, xs + 1, 0))
    count = tf.reduce_sum(tf.cast(mask, tf.float32))
    area = tf.maximum(tf.cast((y1 - y0) * (x1 - x0), tf.float32), 1.0)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    box = tf.stack([tf.cast(y0, tf.float32) / hf, tf.cast(x0, tf.float32) / wf,
                    tf.cast(y1, tf.float32) / hf, tf.cast(x1, tf.float32) / wf])
    return box, count / area, tf.cast(count > 0, tf.float32)


class TinyOdApiModel(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.uint8, name="input_tensor")])
    def serve(self, input_tensor):
        image = tf.cast(input_tensor[0], tf.int32)
        white = tf.reduce_min(image, axis=-1) > 200
        red = (image[..., 0] > 150) & (image[..., 1] < 100) & (image[..., 2] < 100)
        white_box, white_fill, white_any = extent(white)
        red_box, red_fill, red_any = extent(red)
        grown = tf.clip_by_value(white_box + [-0.03, -0.03, 0.03, 0.03], 0.0, 1.0)
        white_score = white_any * (0.6 + 0.3 * white_fill)
        boxes = tf.stack([red_box, grown, white_box])
        scores = tf.stack([red_any * (0.2 + 0.3 * red_fill), 0.5 * white_score, white_score])
        classes = tf.constant([2.0, 1.0, 1.0])
        # NMS with a data-dependent output size (NonMaxSuppressionV5), then padded to the export's fixed count.
        keep, kept_scores = tf.image.non_max_suppression_with_scores(
            boxes, scores, MAX_DETECTIONS, iou_threshold=0.5, score_threshold=0.05)
        count = tf.size(keep)

        def padded(values, shape):
            values = tf.pad(values, [[0, MAX_DETECTIONS - count]] + [[0, 0]] * (len(shape) - 1))
            values.set_shape(shape)  # as in OD API exports: [1, N] scores and classes, alike in dtype and shape
            return values[None]

        return {
            "detection_boxes": padded(tf.gather(boxes, keep), [MAX_DETECTIONS, 4]),
            "detection_scores": padded(kept_scores, [MAX_DETECTIONS]),
            "detection_classes": padded(tf.gather(classes, keep), [MAX_DETECTIONS]),
            "num_detections": tf.cast(count, tf.float32)[None],
        }


def crafted_frame():
    """Grey 96x128 frame: a solid white block (rows 20-49, columns 30-69) and a red checkerboard of rows
    60-89, columns 90-119 (half its box), so the boxes and scores are known exactly."""
    frame = np.full((HEIGHT, WIDTH, 3), 80, np.uint8)
    frame[20:50, 30:70] = 255
    ys, xs = np.mgrid[60:90, 90:120]
    checker = (ys + xs) % 2 == 0
    frame[ys[checker], xs[checker]] = [220, 30, 40]
    return frame


@pytest.fixture(scope="module")
def od_api_export(tmp_path_factory):
    """{saved_model, web (no metadata.json), labelled (labels-only metadata.json)}."""
    root = tmp_path_factory.mktemp("od_api")
    module = TinyOdApiModel()
    tf.saved_model.save(module, str(root / "saved_model"), signatures={"serving_default": module.serve})
    tfjs_conversion.convert_tf_saved_model(str(root / "saved_model"), str(root / "web"),
                                           signature_def="serving_default", saved_model_tags="serve")
    shutil.copytree(root / "web", root / "labelled")
    (root / "labelled" / "metadata.json").write_text(json.dumps({"labels": LABELS}))
    return root


def python_detections(saved_model_dir, frame, score_threshold, labels=None):
    """What TensorFlow's SavedModel signature gives for the frame, as the app's records (pixel boxes)."""
    serve = tf.saved_model.load(str(saved_model_dir)).signatures["serving_default"]
    out = {k: v.numpy()[0] for k, v in serve(input_tensor=tf.constant(frame[None])).items()}
    h, w = frame.shape[:2]
    names = {label["id"]: label["name"] for label in labels or []}
    found = []
    for i in range(int(out["num_detections"])):
        if out["detection_scores"][i] < score_threshold:
            continue
        y0, x0, y1, x1 = out["detection_boxes"][i]
        label_id = int(out["detection_classes"][i])
        found.append({"box": [x0 * w, y0 * h, x1 * w, y1 * h], "score": float(out["detection_scores"][i]),
                      "label_id": label_id, "label": names.get(label_id, f"class {label_id}")})
    return found


def run_in_node(model_dir, frames, tmp_path, backend, repeats=1, score_threshold=None, check_execute=False):
    job = {"model_dir": str(model_dir), "backend": backend, "repeats": repeats, "images": [],
           "check_execute": check_execute}
    if score_threshold is not None:
        job["score_threshold"] = score_threshold
    for i, frame in enumerate(frames):
        path = tmp_path / f"{backend}-{i}.rgb"
        np.ascontiguousarray(frame, np.uint8).tofile(path)
        job["images"].append({"path": str(path), "width": frame.shape[1], "height": frame.shape[0]})
    (tmp_path / "job.json").write_text(json.dumps(job))
    result = subprocess.run(["node", str(RUNNER), str(tmp_path / "job.json")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_same(got, want):
    assert len(got) == len(want), (got, want)
    for g, w in zip(got, want):
        assert set(g) == {"box", "score", "label_id", "label"}
        assert (g["label_id"], g["label"]) == (w["label_id"], w["label"])
        assert box_iou(g["box"], w["box"]) > 0.99, (g["box"], w["box"])
        assert abs(g["score"] - w["score"]) < 1e-4


def test_the_tiny_export_has_the_od_api_signature_and_known_detections(od_api_export):
    serve = tf.saved_model.load(str(od_api_export / "saved_model")).signatures["serving_default"]
    spec = serve.structured_input_signature[1]["input_tensor"]
    assert (spec.dtype, spec.shape.as_list()) == (tf.uint8, [1, None, None, 3])
    assert set(serve.structured_outputs) == {"detection_boxes", "detection_scores", "detection_classes",
                                             "num_detections"}
    found = python_detections(od_api_export / "saved_model", crafted_frame(), 0.0)
    # The grown white box overlaps the white one at IoU 0.7: NMS keeps the white and the red box only.
    assert [(d["label_id"], round(d["score"], 4)) for d in found] == [(1, WHITE_SCORE), (2, RED_SCORE)]
    np.testing.assert_allclose(found[0]["box"], [30, 20, 70, 50], atol=1e-4)
    np.testing.assert_allclose(found[1]["box"], [90, 60, 120, 90], atol=1e-4)
    model_json = json.loads((od_api_export / "web" / "model.json").read_text())
    outputs = model_json["signature"]["outputs"]
    # The converter keeps a signature name only where dtype and shape single the output out: scores and classes
    # (both float [1, N]) come under their tensor names, and the loader has to tell them apart.
    assert {"detection_boxes", "num_detections"} <= set(outputs)
    assert not {"detection_scores", "detection_classes"} & set(outputs), "the converter now keeps these names"
    assert "NonMaxSuppressionV5" in {node["op"] for node in model_json["modelTopology"]["node"]}


@pytest.mark.parametrize("backend", ["wasm", "cpu"])
def test_od_api_export_without_metadata_runs_through_the_app_loader(od_api_export, tmp_path, backend):
    frames = [crafted_frame(), np.full((HEIGHT, WIDTH, 3), 80, np.uint8)]
    out = run_in_node(od_api_export / "web", frames, tmp_path, backend, repeats=4, check_execute=True)
    assert (out["backend"], out["kind"]) == (backend, "od_api")
    # The graph really needs executeAsync: model.execute() refuses its NMS.
    assert "NonMaxSuppressionV5" in out["execute_error"] and "executeAsync" in out["execute_error"]
    crafted, blank = out["results"]
    # The OD API default threshold (0.5) keeps the white box only; labels are "class N" without metadata.
    want = python_detections(od_api_export / "saved_model", frames[0], 0.5)
    assert [d["label"] for d in want] == ["class 1"]
    assert_same(crafted["detections"], want)
    assert blank["detections"] == []
    tensors = crafted["tensors"] + blank["tensors"]
    assert len(set(tensors)) == 1 and out["tensors"] == tensors[0], tensors


def test_score_threshold_and_labels_only_metadata(od_api_export, tmp_path):
    frame = crafted_frame()
    out = run_in_node(od_api_export / "web", [frame], tmp_path, "wasm", score_threshold=0.3)
    want = python_detections(od_api_export / "saved_model", frame, 0.3)
    assert [d["label"] for d in want] == ["class 1", "class 2"]
    assert_same(out["results"][0]["detections"], want)

    out = run_in_node(od_api_export / "labelled", [frame], tmp_path, "wasm", repeats=3, score_threshold=0.3)
    assert out["kind"] == "od_api"
    want = python_detections(od_api_export / "saved_model", frame, 0.3, LABELS)
    assert [d["label"] for d in want] == ["white", "red"]
    assert_same(out["results"][0]["detections"], want)
    assert len(set(out["results"][0]["tensors"])) == 1

    out = run_in_node(od_api_export / "labelled", [frame], tmp_path, "wasm", score_threshold=0.95)
    assert out["results"][0]["detections"] == []
