"""Acceptance on the shared real LabelImg dataset (skipped when ../shared is absent): 164 images, 266 boxes,
the truncated JPEG and the broken EXIF tag reported by name, records that read back to the XML boxes."""
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from lxml import etree

from webdet.data_prep.prepare import prepare
from webdet.data_prep.tfrecords import data_files
from webdet.data_prep.voc import labelimg_truncated, read_annotation, write_annotation

OD_API_FEATURES = {
    "image/filename": tf.io.FixedLenFeature([], tf.string),
    "image/height": tf.io.FixedLenFeature([], tf.int64),
    "image/width": tf.io.FixedLenFeature([], tf.int64),
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    **{f"image/object/bbox/{k}": tf.io.VarLenFeature(tf.float32) for k in ("xmin", "ymin", "xmax", "ymax")},
    "image/object/class/label": tf.io.VarLenFeature(tf.int64),
    "image/object/class/text": tf.io.VarLenFeature(tf.string),
}


@pytest.fixture(scope="module")
def kangaroo_data(kangaroo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("kangaroo_data")
    prepare([kangaroo_dir], out)
    return out


@pytest.fixture(scope="module")
def report(kangaroo_data):
    return json.loads((kangaroo_data / "prepare_report.json").read_text())


def test_all_164_images_and_266_boxes_are_written(kangaroo_data, report):
    assert report["images"] == {"read": 164, "written": 164, "skipped": {}}
    assert report["boxes"] == {"read": 266, "written": 266, "dropped": {}}
    frames = [pd.read_csv(kangaroo_data / f"{split}.csv") for split in ("train", "test")]
    assert sum(len(f) for f in frames) == 266
    assert sum(f.filename.nunique() for f in frames) == 164
    assert set(frames[0].filename).isdisjoint(frames[1].filename)
    assert abs(report["splits"]["test"]["images"] - 33) <= 1


def test_the_truncated_jpeg_and_the_broken_exif_tag_are_named(report):
    assert [entry.split(":")[0].rsplit("/", 1)[1] for entry in report["warnings"]["image_truncated"]] == ["00090.jpg"]
    assert any("00103.jpg" in entry and "65537" in entry for entry in report["warnings"]["exif_malformed"])
    assert set(report["warnings"]) <= {"image_truncated", "exif_malformed"}


def test_records_read_by_tf_data_hold_the_xml_boxes_normalised(kangaroo_dir, kangaroo_data):
    annotations = map(read_annotation, (kangaroo_dir / "annotations").glob("*.xml"))
    expected = {f"images/{a.xml_path.stem}.jpg": a for a in annotations}
    seen = 0
    for split in ("train", "test"):
        for raw in tf.data.TFRecordDataset(data_files(kangaroo_data, split)):
            example = tf.io.parse_single_example(raw, OD_API_FEATURES)
            ann = expected[example["image/filename"].numpy().decode()]
            assert (int(example["image/width"]), int(example["image/height"])) == (ann.width, ann.height)
            boxes = np.stack([tf.sparse.to_dense(example[f"image/object/bbox/{k}"]).numpy()
                              for k in ("xmin", "ymin", "xmax", "ymax")], axis=1)
            xml_boxes = np.array([[b.xmin, b.ymin, b.xmax, b.ymax] for b in ann.boxes]) / ([ann.width, ann.height] * 2)
            np.testing.assert_allclose(boxes, xml_boxes, atol=1e-6)
            assert set(tf.sparse.to_dense(example["image/object/class/label"]).numpy()) == {1}
            assert set(tf.sparse.to_dense(example["image/object/class/text"]).numpy()) == {b"kangaroo"}
            decoded = tf.io.decode_jpeg(example["image/encoded"])
            assert tuple(decoded.shape) == (ann.height, ann.width, 3)
            seen += 1
    assert seen == 164


def test_labelimg_xml_is_written_back_byte_for_byte(kangaroo_dir, tmp_path):
    for original in sorted((kangaroo_dir / "annotations").glob("*.xml")):
        ann = read_annotation(original)
        root = etree.parse(str(original)).getroot()
        copy = tmp_path / original.name
        write_annotation(copy, folder=root.findtext("folder"), filename=ann.filename, image_path=root.findtext("path"),
                         width=ann.width, height=ann.height, boxes=ann.boxes)
        assert copy.read_bytes().rstrip() == original.read_bytes().rstrip(), original.name


def test_labelimg_truncated_rule_matches_every_annotated_box(kangaroo_dir):
    annotations = [read_annotation(p) for p in (kangaroo_dir / "annotations").glob("*.xml")]
    assert sum(len(a.boxes) for a in annotations) == 266
    for ann in annotations:
        assert [b.truncated for b in ann.boxes] == [labelimg_truncated(b, ann.width, ann.height) for b in ann.boxes]
