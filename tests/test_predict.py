"""`webdet predict` and the export's detector API, on the tiny run's export."""
import io
import json

import numpy as np
from PIL import Image

from webdet.export.detector import load_detector
from webdet.cli import main


def test_detector_returns_documented_detections_in_frame_pixels(exported_dir, synth_dir):
    detector = load_detector(exported_dir)
    path = sorted((synth_dir / "images").glob("*.jpg"))[0]
    image = np.asarray(Image.open(path).convert("RGB"))
    detections = detector.detect(image)
    assert detections, "the tiny model finds nothing on a training-style image"
    h, w = image.shape[:2]
    for d in detections:
        assert set(d) == {"box", "score", "label_id", "label"}
        x0, y0, x1, y1 = d["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert d["score"] >= detector.score_threshold and d["label"] == {1: "circle", 2: "square", 3: "triangle"}[d["label_id"]]
    assert [d["score"] for d in detections] == sorted((d["score"] for d in detections), reverse=True)


def test_predict_annotates_images_and_keeps_going_past_bad_files(exported_dir, synth_dir, tmp_path, capsys):
    good = sorted((synth_dir / "images").glob("*.jpg"))[:2]
    (tmp_path / "notes.jpg").write_text("not a picture")
    truncated = good[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(truncated[: len(truncated) // 3])
    code = main(["predict", "--model", str(exported_dir), *map(str, good), str(tmp_path / "notes.jpg"),
                 str(tmp_path / "cut.jpg"), str(tmp_path / "absent.png"), "--out", str(tmp_path / "preds")])
    out = capsys.readouterr().out
    assert code == 0
    assert "notes.jpg: error: not a readable image" in out
    assert "cut.jpg: error: not a readable image" in out and "absent.png: error: no such file" in out
    assert "5 file(s): 2 predicted, 3 skipped" in out
    predictions = json.loads((tmp_path / "preds" / "predictions.json").read_text())
    assert sorted(predictions) == sorted(map(str, good))
    annotated = Image.open(tmp_path / "preds" / f"{good[0].stem}.png")
    original = Image.open(good[0])
    assert annotated.size == original.size
    if predictions[str(good[0])]:
        assert np.abs(np.asarray(annotated, int) - np.asarray(original.convert("RGB"), int)).max() > 50


def test_predict_applies_exif_orientation(exported_dir, synth_dir, tmp_path, capsys):
    source = Image.open(sorted((synth_dir / "images").glob("*.jpg"))[0]).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways; viewers rotate it 90° clockwise
    buffer = io.BytesIO()
    source.save(buffer, "JPEG", exif=exif.tobytes())
    (tmp_path / "phone.jpg").write_bytes(buffer.getvalue())
    assert main(["predict", "--model", str(exported_dir), str(tmp_path / "phone.jpg"),
                 "--out", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    annotated = Image.open(tmp_path / "p" / "phone.png")
    assert annotated.size == (source.height, source.width)
    for d in json.loads((tmp_path / "p" / "predictions.json").read_text())[str(tmp_path / "phone.jpg")]:
        assert d["box"][2] <= source.height and d["box"][3] <= source.width


def test_predict_without_an_export_is_a_one_line_error(tmp_path, capsys):
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    assert main(["predict", "--model", str(tmp_path), str(tmp_path / "a.png"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "not a SavedModel" in err and err.count("\n") == 1
