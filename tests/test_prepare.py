"""`webdet prepare` on good and bad LabelImg folders: counts add up, every problem is named, no traceback."""
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from data_prep.label_map import read_label_map, write_label_map
from data_prep.prepare import prepare
from data_prep.split import split_images
from data_prep.tfrecords import data_files, iter_examples
from data_prep.voc import Box, read_annotation, write_annotation
from webdet.cli import main
from webdet.errors import WebdetError


def make_image(path, size=(120, 90), mode="RGB", fmt=None, exif=None, colour=(200, 40, 40)):
    image = Image.new(mode, size, colour if mode == "RGB" else 128)
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(path, fmt, **kwargs)
    return path


def annotate(folder, stem, boxes, size=(120, 90), image_name=None, image=True, **image_kwargs):
    """An image plus its LabelImg XML side by side."""
    folder.mkdir(parents=True, exist_ok=True)
    name = image_name or f"{stem}.jpg"
    if image:
        make_image(folder / name, size=size, **image_kwargs)
    write_annotation(folder / f"{stem}.xml", folder=folder.name, filename=name, image_path=str(folder / name),
                     width=size[0], height=size[1], boxes=[Box(*b) for b in boxes])


def balanced(folder, n=6):
    for i in range(n):
        annotate(folder, f"img{i}", [("cat" if i % 2 else "dog", 10, 10, 60, 60)])


def run(folder, out, **kwargs):
    return prepare([folder], out, workers=1, **kwargs)


def assert_counts_add_up(report):
    images, boxes = report["images"], report["boxes"]
    assert images["read"] == images["written"] + sum(images["skipped"].values())
    assert boxes["read"] == boxes["written"] + sum(boxes["dropped"].values())
    assert report["splits"]["train"]["images"] + report["splits"]["test"]["images"] == images["written"]


def test_synthetic_dataset_prepares_into_readable_records(synth_dir, prepared_dir):
    report = json.loads((prepared_dir / "prepare_report.json").read_text())
    assert report["images"]["read"] == 120 and report["images"]["written"] == 120
    assert set(read_label_map(prepared_dir / "label_map.pbtxt").values()) == {"circle", "square", "triangle"}
    assert_counts_add_up(report)
    negatives = report["splits"]["train"]["negatives"] + report["splits"]["test"]["negatives"]
    assert negatives > 0, "images without objects are kept"
    for split in ("train", "test"):
        for name, count in report["splits"][split]["classes"].items():
            assert count > 0, f"{name} appears in {split}"


def test_records_read_back_to_the_csv_boxes(prepared_dir):
    import pandas as pd

    csv = pd.read_csv(prepared_dir / "test.csv", keep_default_na=False)
    labels = {v: k for k, v in read_label_map(prepared_dir / "label_map.pbtxt").items()}
    for example in iter_examples(data_files(prepared_dir, "test")):
        rows = csv[(csv.filename == example["filename"]) & (csv["class"] != "")]
        expected = rows[["ymin", "xmin", "ymax", "xmax"]].to_numpy(float) / [
            example["height"], example["width"], example["height"], example["width"]]
        np.testing.assert_allclose(example["boxes"], expected, atol=1e-6)
        assert list(example["classes"]) == [labels[c] for c in rows["class"]]


def test_model_garden_decoder_reads_the_records(prepared_dir):
    import tensorflow as tf
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    raw = next(iter(tf.data.TFRecordDataset(data_files(prepared_dir, "train"))))
    decoded = TfExampleDecoder().decode(raw)
    assert decoded["image"].shape[-1] == 3
    assert decoded["groundtruth_boxes"].shape[-1] == 4
    assert int(tf.strings.to_number(decoded["source_id"], tf.int64)) > 0


def test_split_is_by_image_seeded_and_stratified():
    images = {f"i{k}": ({"rare"} if k < 3 else {"common"}) | ({"common"} if k % 2 else set()) for k in range(30)}
    train, test = split_images(images, 0.2, seed=1)
    assert set(train).isdisjoint(test) and len(train) + len(test) == 30
    assert split_images(images, 0.2, seed=1) == (train, test)
    assert split_images(images, 0.2, seed=2) != (train, test)
    for name in ("rare", "common"):
        assert any(name in images[k] for k in train) and any(name in images[k] for k in test)


def test_labelimg_xml_round_trip_is_byte_compatible(tmp_path, kangaroo_dir):
    original = kangaroo_dir / "annotations" / "00001.xml"
    ann = read_annotation(original)
    copy = tmp_path / "00001.xml"
    write_annotation(copy, folder="Kangaroo", filename=ann.filename,
                     image_path="/home/andy/Desktop/Kangaroo/stock-photo-two-kids-in-the-zoo-feeding-kangaroo-296180786.jpg",
                     width=ann.width, height=ann.height, boxes=ann.boxes)
    assert copy.read_bytes().strip() == original.read_bytes().strip()


def test_both_layouts_and_several_folders(tmp_path):
    balanced(tmp_path / "flat")
    nested = tmp_path / "nested"
    for i in range(4):
        make_image((nested / "images").mkdir(parents=True, exist_ok=True) or nested / "images" / f"n{i}.jpg")
        (nested / "annotations").mkdir(exist_ok=True)
        write_annotation(nested / "annotations" / f"n{i}.xml", folder="images", filename=f"n{i}.jpg",
                         image_path="x", width=120, height=90, boxes=[Box("dog", 5, 5, 50, 50)])
    report = prepare([tmp_path / "flat", nested], tmp_path / "out", workers=1)
    assert report["images"]["written"] == 10
    assert_counts_add_up(report)


def test_unparseable_xml_and_missing_fields_are_reported(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    (folder / "broken.xml").write_text("<annotation><size>")
    make_image(folder / "broken.jpg")
    annotate(folder, "nobox", [("dog", 10, 10, 50, 50)])
    text = (folder / "nobox.xml").read_text().replace("<bndbox>", "<bndbx>").replace("</bndbox>", "</bndbx>")
    (folder / "nobox.xml").write_text(text)
    annotate(folder, "nosize", [("cat", 10, 10, 50, 50)])
    text = (folder / "nosize.xml").read_text()
    (folder / "nosize.xml").write_text(text[:text.index("<size>")] + text[text.index("</size>") + 7:])
    annotate(folder, "words", [("dog", 10, 10, 50, 50)])
    (folder / "words.xml").write_text((folder / "words.xml").read_text().replace("<xmax>50<", "<xmax>fifty<"))
    report = run(folder, tmp_path / "out")
    assert "broken.xml" in report["skipped"]["xml_unparseable"][0]
    assert "nobox.xml" in report["warnings"]["missing_bndbox"][0]
    assert "nosize.xml" in report["warnings"]["missing_size"][0]
    assert "'fifty'" in report["warnings"]["bad_coordinate"][0] and "xmax" in report["warnings"]["bad_coordinate"][0]
    assert report["boxes"]["dropped"] == {"bad_coordinate": 1, "missing_bndbox": 1}
    assert_counts_add_up(report)


def test_boxes_outside_the_image_are_clipped_or_dropped(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    annotate(folder, "edge", [("dog", -5, 10, 130, 50), ("dog", 200, 200, 250, 250), ("cat", 30, 30, 30, 60),
                              ("cat", 10.5, 10.25, 40.75, 40)])
    report = run(folder, tmp_path / "out")
    assert len(report["warnings"]["box_clipped"]) == 1
    assert report["boxes"]["dropped"] == {"box_outside_image": 1, "box_zero_area": 1}
    assert "float_coordinates" in report["warnings"]
    examples = {e["filename"]: e for split in ("train", "test")
                for e in iter_examples(data_files(tmp_path / "out", split))}
    boxes = examples["edge.jpg"]["boxes"]
    assert len(boxes) == 2 and boxes.min() >= 0 and boxes.max() <= 1
    assert_counts_add_up(report)


def test_size_mismatch_uses_real_pixels_and_exif_rotation_is_followed(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    annotate(folder, "wrongsize", [("dog", 10, 10, 50, 50)], size=(120, 90))
    make_image(folder / "wrongsize.jpg", size=(100, 80))
    # A phone photo stored 120x90 with EXIF orientation 6; the annotator saw it rotated (90x120).
    exif = Image.Exif()
    exif[0x0112] = 6
    make_image(folder / "phone.jpg", size=(120, 90), exif=exif)
    write_annotation(folder / "phone.xml", folder="src", filename="phone.jpg", image_path="x", width=90, height=120,
                     boxes=[Box("cat", 10, 70, 80, 115)])
    report = run(folder, tmp_path / "out")
    assert "wrongsize.jpg" in report["warnings"]["size_mismatch"][0]
    assert "phone.jpg" in report["warnings"]["exif_rotated"][0]
    examples = {e["filename"]: e for split in ("train", "test")
                for e in iter_examples(data_files(tmp_path / "out", split))}
    phone = examples["phone.jpg"]
    assert (phone["width"], phone["height"]) == (90, 120)
    assert Image.open(io.BytesIO(phone["encoded"])).size == (90, 120)
    np.testing.assert_allclose(phone["boxes"][0], [70 / 120, 10 / 90, 115 / 120, 80 / 90], atol=1e-6)
    assert (examples["wrongsize.jpg"]["width"], examples["wrongsize.jpg"]["height"]) == (100, 80)


def test_missing_truncated_and_undecodable_images(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    annotate(folder, "gone", [("dog", 10, 10, 50, 50)], image=False)
    annotate(folder, "junk", [("dog", 10, 10, 50, 50)])
    (folder / "junk.jpg").write_bytes(b"this is not a jpeg")
    annotate(folder, "cut", [("cat", 10, 10, 50, 50)])
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG")
    (folder / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    report = run(folder, tmp_path / "out")
    assert "gone.xml" in report["skipped"]["image_missing"][0]
    assert "junk.jpg" in report["skipped"]["image_undecodable"][0]
    assert "cut.jpg" in report["warnings"]["image_truncated"][0]
    assert report["boxes"]["dropped"] == {"image_skipped:image_missing": 1, "image_skipped:image_undecodable": 1}
    assert_counts_add_up(report)


@pytest.mark.parametrize("mode, fmt, suffix", [("L", "JPEG", ".jpg"), ("CMYK", "JPEG", ".jpg"), ("RGBA", "PNG", ".png"),
                                               ("RGB", "BMP", ".bmp"), ("RGB", "WEBP", ".webp")])
def test_non_baseline_images_are_reencoded_to_rgb_jpeg(tmp_path, mode, fmt, suffix):
    folder = tmp_path / "src"
    balanced(folder)
    annotate(folder, "odd", [("dog", 10, 10, 50, 50)], image_name=f"odd{suffix}", mode=mode, fmt=fmt)
    run(folder, tmp_path / "out")
    examples = {e["filename"]: e for split in ("train", "test")
                for e in iter_examples(data_files(tmp_path / "out", split))}
    decoded = Image.open(io.BytesIO(examples[f"odd{suffix}"]["encoded"]))
    assert decoded.format == "JPEG" and decoded.mode == "RGB"


def test_baseline_jpeg_bytes_are_kept(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    run(folder, tmp_path / "out")
    example = next(iter_examples(data_files(tmp_path / "out", "train")))
    assert example["encoded"] == (folder / example["filename"]).read_bytes()


def test_filename_field_disagreeing_with_the_xml_and_duplicate_stems(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    annotate(folder, "renamed", [("dog", 10, 10, 50, 50)])
    (folder / "renamed.xml").write_text((folder / "renamed.xml").read_text().replace(
        "<filename>renamed.jpg</filename>", "<filename>IMG_0001.jpg</filename>"))
    annotate(folder, "twice", [("cat", 10, 10, 50, 50)])
    make_image(folder / "twice.png", fmt="PNG")
    report = run(folder, tmp_path / "out")
    assert "IMG_0001.jpg" in report["warnings"]["filename_mismatch"][0]
    assert "twice.xml" in report["warnings"]["duplicate_stem"][0]
    assert report["images"]["written"] == 8


def test_non_ascii_file_names(tmp_path):
    folder = tmp_path / "données"
    balanced(folder)
    annotate(folder, "känguru_日本", [("dog", 10, 10, 50, 50)])
    report = run(folder, tmp_path / "out")
    names = [e["filename"] for s in ("train", "test") for e in iter_examples(data_files(tmp_path / "out", s))]
    assert "känguru_日本.jpg" in names and report["images"]["written"] == 7


def test_imposed_label_map(tmp_path):
    folder = tmp_path / "src"
    balanced(folder)
    write_label_map(tmp_path / "map.pbtxt", ["zebra", "dog", "cat"])
    run(folder, tmp_path / "out", label_map=tmp_path / "map.pbtxt")
    example = next(iter_examples(data_files(tmp_path / "out", "train")))
    assert {"dog": 2, "cat": 3}[example["class_names"][0]] == example["classes"][0]
    write_label_map(tmp_path / "small.pbtxt", ["dog"])
    with pytest.raises(WebdetError, match=r"cat.*not in the label map.*img1\.jpg"):
        run(folder, tmp_path / "out2", label_map=tmp_path / "small.pbtxt")


def test_empty_folder_and_strict_mode_via_the_cli(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "no LabelImg annotations" in err and err.count("\n") == 1
    folder = tmp_path / "src"
    balanced(folder)
    annotate(folder, "edge", [("dog", -5, 10, 130, 50)])
    assert main(["prepare", str(folder), "--out", str(tmp_path / "o1")]) == 0
    assert "warning box_clipped: 1" in capsys.readouterr().out
    assert main(["prepare", str(folder), "--out", str(tmp_path / "o2"), "--strict"]) == 2
    captured = capsys.readouterr()
    assert "--strict: 1 warning(s)" in captured.err and "Traceback" not in captured.err


def test_csv_round_trip_rebuilds_the_records(prepared_dir, tmp_path):
    assert main(["csv-to-tfrecord", str(prepared_dir / "train.csv"), str(prepared_dir / "test.csv"),
                 "--out", str(tmp_path / "rebuilt")]) == 0
    original = {e["filename"]: e for e in iter_examples(data_files(prepared_dir, "test"))}
    rebuilt = {e["filename"]: e for e in iter_examples(data_files(tmp_path / "rebuilt", "test"))}
    assert original.keys() == rebuilt.keys()
    for name, example in original.items():
        np.testing.assert_allclose(rebuilt[name]["boxes"], example["boxes"], atol=1e-6)


def test_edited_csv_with_a_bad_number_names_row_and_field(prepared_dir, tmp_path, capsys):
    text = (prepared_dir / "train.csv").read_text().splitlines()
    fields = text[1].split(",")
    fields[4] = "12px"
    text[1] = ",".join(fields)
    (tmp_path / "train.csv").write_text("\n".join(text))
    assert main(["csv-to-tfrecord", str(tmp_path / "train.csv"), "--out", str(tmp_path / "o")]) == 2
    assert "row 2: field 'xmin' is '12px'" in capsys.readouterr().err


def test_kaggle_without_credentials_says_how_to_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.delenv("KAGGLE_KEY", raising=False)
    monkeypatch.delenv("KAGGLE_CONFIG_DIR", raising=False)
    assert main(["kaggle", "someone/kangaroos", "--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert "kaggle.json" in err and err.count("\n") == 1


def test_synth_is_deterministic(tmp_path):
    from data_prep.synth import make_dataset

    make_dataset(tmp_path / "a", images=4, seed=3)
    make_dataset(tmp_path / "b", images=4, seed=3)
    for xml in (tmp_path / "a" / "annotations").glob("*.xml"):
        a = read_annotation(xml)
        b = read_annotation(tmp_path / "b" / "annotations" / xml.name)
        assert a.boxes == b.boxes
    shutil.rmtree(tmp_path / "b")
