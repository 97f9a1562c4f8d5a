"""`webdet export`: the OD API SavedModel, the feed-forward web model, parity, and `webdet predict`."""
import base64
import json

import numpy as np
import pytest
import tensorflow as tf

from export.graph_fixes import split_residual_adds
from export.parity import compare, run_web_model
from export.web_model import FORBIDDEN_OPS, SHARD_BYTES
from webdet.cli import main


def test_saved_model_has_the_od_api_signature(exported_dir):
    loaded = tf.saved_model.load(str(exported_dir / "saved_model"))
    serve = loaded.signatures["serving_default"]
    spec = serve.structured_input_signature[1]["input_tensor"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [1, None, None, 3]
    for size in ((240, 320), (97, 131)):
        out = serve(input_tensor=tf.zeros([1, *size, 3], tf.uint8))
        assert out["detection_boxes"].shape == (1, 100, 4)
        assert out["detection_scores"].shape == (1, 100) and out["num_detections"].shape == (1,)
        n = int(out["num_detections"][0])
        classes = out["detection_classes"][0, :n].numpy()
        assert out["detection_classes"].dtype == tf.float32 and (n == 0 or classes.min() >= 1)
    assert (exported_dir / "serving" / exported_dir.name / "1" / "saved_model.pb").is_file()


def test_web_model_is_feed_forward_sharded_and_described(exported_dir):
    web = exported_dir / "web_model"
    model_json = json.loads((web / "model.json").read_text())
    ops = {node["op"] for node in model_json["modelTopology"]["node"]}
    assert not ops & set(FORBIDDEN_OPS)
    assert all(p.stat().st_size <= SHARD_BYTES for p in web.glob("group*.bin"))
    metadata = json.loads((web / "metadata.json").read_text())
    assert metadata["labels"] == [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}, {"id": 3, "name": "triangle"}]
    assert metadata["input"]["shape"] == [1, 128, 128, 3]
    assert metadata["outputs"]["scores"]["shape"][2] == 3
    assert set(model_json["signature"]["outputs"]) == {"boxes", "scores"}
    report = json.loads((exported_dir / "export_report.json").read_text())
    assert report["parity"]["passed"] and report["parity"]["images"] > 0
    assert "AP" in report["evaluation"]


def test_wasm_and_cpu_backends_agree(exported_dir):
    from export.exporter import sample_images

    images = sample_images(None, 2)
    wasm = run_web_model(exported_dir / "web_model", images, "wasm", score_threshold=0.05)
    cpu = run_web_model(exported_dir / "web_model", images, "cpu", score_threshold=0.05)
    assert wasm["backend"] == "wasm" and cpu["backend"] == "cpu"
    for a, b in zip(wasm["results"], cpu["results"]):
        reference = [{"box": d["box"], "score": d["score"], "label_id": d["labelId"]} for d in a["detections"] if d["score"] > 0.1]
        agreement = compare(reference, b["detections"])
        assert agreement["unmatched"] == 0 and agreement["min_iou"] > 0.95


def test_split_residual_adds_turns_a_rank4_bias_back_into_an_add():
    enc = lambda *ops: {"list": {"s": [base64.b64encode(o.encode()).decode() for o in ops]}}  # noqa: E731
    graph = {"modelTopology": {"node": [
        {"name": "block/conv", "op": "_FusedConv2D", "input": ["x", "w", "b", "residual"],
         "attr": {"fused_ops": enc("BiasAdd", "Add"), "num_args": {"i": "2"}, "T": {"type": "DT_FLOAT"}}},
        {"name": "next", "op": "Relu", "input": ["block/conv"]}]}}
    assert split_residual_adds(graph) == 1
    nodes = {n["name"]: n for n in graph["modelTopology"]["node"]}
    assert nodes["block/conv/conv"]["input"] == ["x", "w", "b"] and nodes["block/conv/conv"]["attr"]["num_args"]["i"] == "1"
    assert nodes["block/conv"]["op"] == "AddV2" and nodes["block/conv"]["input"] == ["block/conv/conv", "residual"]


def test_uint8_export_is_smaller_and_reports_its_difference(tiny_run, exported_dir, tmp_path):
    from export.exporter import export_run

    report = export_run(tiny_run, tmp_path / "q", quantize="uint8", log=lambda *_: None)
    assert report["quantization"] == "uint8"
    assert report["web_model_bytes"] < 0.5 * json.loads((exported_dir / "export_report.json").read_text())["web_model_bytes"]
    assert {"min_iou", "max_score_diff"} <= report["parity"].keys()


def test_export_refuses_an_existing_folder_and_a_run_without_checkpoints(tiny_run, exported_dir, tmp_path, capsys):
    assert main(["export", "--run", str(tiny_run), "--out", str(exported_dir)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "run" / "config.yaml").write_text((tiny_run / "config.yaml").read_text())
    assert main(["export", "--run", str(tmp_path / "run"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint yet" in err and err.count("\n") == 1


def test_predict_annotates_images_and_reports_bad_files(exported_dir, synth_dir, tmp_path, capsys):
    good = sorted((synth_dir / "images").glob("*.jpg"))[:2]
    (tmp_path / "notes.jpg").write_text("not a picture")
    code = main(["predict", "--model", str(exported_dir), *map(str, good), str(tmp_path / "notes.jpg"),
                 "--out", str(tmp_path / "preds")])
    out = capsys.readouterr().out
    assert code == 0
    assert "notes.jpg: error: not a readable image" in out and "3 file(s): 2 predicted, 1 skipped" in out
    predictions = json.loads((tmp_path / "preds" / "predictions.json").read_text())
    assert len(predictions) == 2 and (tmp_path / "preds" / f"{good[0].stem}.png").is_file()
    for detections in predictions.values():
        for d in detections:
            assert d["label"] in {"circle", "square", "triangle"} and len(d["box"]) == 4
