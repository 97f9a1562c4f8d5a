"""TFRecords with the OD API feature keys: sharded, read back exactly, and readable by Model Garden's decoder."""
import io
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from webdet.contract import LabelMap
from webdet.data_prep.scan import ImageRecord
from webdet.data_prep.tfrecords import ShardedWriter, data_files, iter_examples, make_example
from webdet.data_prep.voc import Box

LABELS = LabelMap({1: "cat", 2: "dog"})


def jpeg(width, height) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 160, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def record(name, boxes, width=200, height=100) -> ImageRecord:
    return ImageRecord(f"src/{name}", "src", name, Path("src") / name, boxes, width=width, height=height)


RECORDS = [
    record("images/a.jpg", [Box("cat", 20, 10, 120, 90), Box("dog", 0, 0, 200, 100, difficult=1, truncated=1)]),
    record("images/empty.jpg", []),
    record("images/ü.jpg", [Box("dog", 50, 25, 150, 75)], width=300, height=100),
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("records")
    writer = ShardedWriter(out, "train", 2)
    for source_id, r in enumerate(RECORDS, start=1):
        writer.write(make_example(r, jpeg(r.width, r.height), source_id, LABELS))
    writer.close()
    return out


def test_shards_are_named_and_listed_per_split(shards):
    assert [Path(p).name for p in data_files(shards, "train")] == ["train-00000-of-00002.tfrecord",
                                                                   "train-00001-of-00002.tfrecord"]
    assert data_files(shards, "test") == []


def test_records_read_back_to_the_same_boxes_labels_and_image(shards):
    examples = {e["filename"]: e for e in iter_examples(data_files(shards, "train"))}
    assert set(examples) == {"images/a.jpg", "images/empty.jpg", "images/ü.jpg"}
    a = examples["images/a.jpg"]
    assert (a["width"], a["height"], a["source_id"]) == (200, 100, "1")
    np.testing.assert_allclose(a["boxes"], [[0.1, 0.1, 0.9, 0.6], [0, 0, 1, 1]], atol=1e-6)
    assert a["boxes"].dtype == np.float32 and a["classes"].dtype == np.int64
    assert list(a["classes"]) == [1, 2] and a["class_names"] == ["cat", "dog"]
    assert Image.open(io.BytesIO(a["encoded"])).size == (200, 100)
    np.testing.assert_allclose(examples["images/ü.jpg"]["boxes"], [[0.25, 50 / 300, 0.75, 0.5]], atol=1e-6)


def test_an_image_without_objects_reads_back_with_empty_arrays(shards):
    empty = next(e for e in iter_examples(str(shards / "train-*.tfrecord")) if e["filename"] == "images/empty.jpg")
    assert empty["boxes"].shape == (0, 4) and empty["classes"].shape == (0,) and empty["class_names"] == []


def test_od_api_feature_keys_and_flags(shards):
    raw = next(iter(tf.data.TFRecordDataset(data_files(shards, "train"))))
    feature = tf.train.Example.FromString(raw.numpy()).features.feature
    assert feature["image/format"].bytes_list.value == [b"jpeg"]
    assert list(feature["image/object/difficult"].int64_list.value) == [0, 1]
    assert list(feature["image/object/truncated"].int64_list.value) == [0, 1]
    assert list(feature["image/object/class/text"].bytes_list.value) == [b"cat", b"dog"]


def test_model_garden_decoder_reads_boxes_classes_and_pixels(shards):
    from official.vision.dataloaders.tf_example_decoder import TfExampleDecoder

    decoder = TfExampleDecoder()
    decoded = {}
    for raw in tf.data.TFRecordDataset(data_files(shards, "train")):
        example = decoder.decode(raw)
        decoded[int(tf.strings.to_number(example["source_id"], tf.int64))] = example
    first = decoded[1]
    assert tuple(first["image"].shape) == (100, 200, 3)
    np.testing.assert_allclose(first["groundtruth_boxes"].numpy(), [[0.1, 0.1, 0.9, 0.6], [0, 0, 1, 1]], atol=1e-6)
    assert list(first["groundtruth_classes"].numpy()) == [1, 2]
    assert list(first["groundtruth_is_crowd"].numpy()) == [False, False]
    assert decoded[2]["groundtruth_boxes"].shape[0] == 0


def test_rewriting_a_split_removes_shards_of_an_earlier_run(tmp_path):
    for count in (3, 1):
        writer = ShardedWriter(tmp_path, "test", count)
        for source_id, r in enumerate(RECORDS, start=1):
            writer.write(make_example(r, jpeg(r.width, r.height), source_id, LABELS))
        writer.close()
    assert [Path(p).name for p in data_files(tmp_path, "test")] == ["test-00000-of-00001.tfrecord"]
    assert len(list(iter_examples(data_files(tmp_path, "test")))) == 3
