"""TFRecords with the TF Object Detection API feature keys, so OD API and Model Garden readers load them."""
import glob
from pathlib import Path

import numpy as np
import tensorflow as tf

from webdet.contract import LabelMap


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def make_example(record, encoded: bytes, source_id: int, labels: LabelMap) -> tf.train.Example:
    """One image: JPEG bytes, size, and its boxes normalised to [0, 1] with label-map ids."""
    label_ids = labels.ids()
    w, h = float(record.width), float(record.height)
    boxes = record.boxes
    feature = {
        "image/encoded": _bytes([encoded]),
        "image/format": _bytes([b"jpeg"]),
        "image/filename": _bytes([record.filename.encode("utf-8")]),
        # A numeric id per image, as COCO-style evaluators (Model Garden's among them) expect.
        "image/source_id": _bytes([str(source_id).encode()]),
        "image/height": _ints([record.height]),
        "image/width": _ints([record.width]),
        "image/object/bbox/xmin": _floats([b.xmin / w for b in boxes]),
        "image/object/bbox/ymin": _floats([b.ymin / h for b in boxes]),
        "image/object/bbox/xmax": _floats([b.xmax / w for b in boxes]),
        "image/object/bbox/ymax": _floats([b.ymax / h for b in boxes]),
        "image/object/class/text": _bytes([b.name.encode("utf-8") for b in boxes]),
        "image/object/class/label": _ints([label_ids[b.name] for b in boxes]),
        "image/object/difficult": _ints([b.difficult for b in boxes]),
        "image/object/truncated": _ints([b.truncated for b in boxes]),
        "image/object/is_crowd": _ints([0 for _ in boxes]),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def shard_paths(out_dir, split: str, shards: int) -> list[Path]:
    """`SPLIT-0000i-of-0000n.tfrecord` for i in 0..n-1."""
    return [Path(out_dir) / f"{split}-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]


class ShardedWriter:
    """Round-robin writer over `split-0000i-of-0000n.tfrecord` files."""

    def __init__(self, out_dir, split: str, shards: int):
        for old in Path(out_dir).glob(f"{split}-*.tfrecord"):
            old.unlink()
        self.paths = shard_paths(out_dir, split, shards)
        self.writers = [tf.io.TFRecordWriter(str(p)) for p in self.paths]
        self.count = 0

    def write(self, example: tf.train.Example) -> None:
        self.writers[self.count % len(self.writers)].write(example.SerializeToString())
        self.count += 1

    def close(self) -> None:
        for writer in self.writers:
            writer.close()


def data_files(data_dir, split: str) -> list[str]:
    """The shards of one split of a prepared data folder."""
    return sorted(glob.glob(str(Path(data_dir) / f"{split}-*.tfrecord")))


def _parse(serialized: bytes) -> dict:
    f = tf.train.Example.FromString(serialized).features.feature
    coords = [np.array(f[f"image/object/bbox/{k}"].float_list.value, np.float32)
              for k in ("ymin", "xmin", "ymax", "xmax")]
    return {
        "filename": f["image/filename"].bytes_list.value[0].decode("utf-8"),
        "source_id": f["image/source_id"].bytes_list.value[0].decode("utf-8"),
        "height": int(f["image/height"].int64_list.value[0]),
        "width": int(f["image/width"].int64_list.value[0]),
        "encoded": f["image/encoded"].bytes_list.value[0],
        "boxes": np.stack(coords, axis=1) if len(coords[0]) else np.zeros((0, 4), np.float32),
        "classes": np.array(f["image/object/class/label"].int64_list.value, np.int64),
        "class_names": [v.decode("utf-8") for v in f["image/object/class/text"].bytes_list.value],
    }


def iter_examples(paths_or_glob):
    """Read records back as dicts: filename, source_id, height, width, encoded (JPEG bytes),
    boxes (float32 [n, 4] normalised ymin, xmin, ymax, xmax), classes (int64 [n] label ids), class_names.

    Takes a glob pattern (str or Path) or a list of paths, e.g. `data_files(data_dir, "test")`.
    """
    paths = sorted(glob.glob(paths_or_glob)) if isinstance(paths_or_glob, (str, Path)) else list(paths_or_glob)
    for raw in tf.data.TFRecordDataset([str(p) for p in paths]):
        yield _parse(raw.numpy())
