"""`webdet synth`: a deterministic LabelImg dataset of large, solid shapes on clutter, some images empty."""
import itertools

import numpy as np
import pytest
from PIL import Image

from webdet.data_prep.synth import CLASSES, make_dataset
from webdet.data_prep.voc import labelimg_truncated, read_annotation
from webdet.errors import WebdetError


@pytest.fixture(scope="module")
def synth48(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("synth48"), images=48, seed=0)


@pytest.fixture(scope="module")
def annotations(synth48):
    return [read_annotation(p) for p in sorted((synth48 / "annotations").glob("*.xml"))]


def test_labelimg_layout_with_one_xml_per_image(synth48, annotations):
    images = sorted(p.name for p in (synth48 / "images").iterdir())
    assert len(images) == 48 and [a.filename for a in annotations] == images
    for ann in annotations:
        assert Image.open(synth48 / "images" / ann.filename).size == (ann.width, ann.height)
        assert ann.warnings == []


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, b, c = (make_dataset(tmp_path / name, images=3, seed=seed) for name, seed in (("a", 5), ("b", 5), ("c", 6)))
    for image in sorted((a / "images").iterdir()):
        twin, other = (b / "images" / image.name).read_bytes(), (c / "images" / image.name).read_bytes()
        assert image.read_bytes() == twin != other
    for xml in sorted((a / "annotations").iterdir()):
        assert read_annotation(xml).boxes == read_annotation(b / "annotations" / xml.name).boxes


def test_all_classes_some_empty_images_and_one_to_four_objects(annotations):
    counts = [len(a.boxes) for a in annotations]
    assert {b.name for a in annotations for b in a.boxes} == set(CLASSES)
    assert 1 <= counts.count(0) <= 12, "about one image in ten has no objects"
    assert max(counts) <= 4 and sum(counts) >= 48


def test_images_are_around_320_by_240(annotations):
    assert all(280 <= a.width <= 360 and 200 <= a.height <= 280 for a in annotations)
    assert len({(a.width, a.height) for a in annotations}) > 10, "sizes vary"


def test_objects_are_large_inside_the_image_and_overlap_little(annotations):
    for ann in annotations:
        short_side = min(ann.width, ann.height)
        for box in ann.boxes:
            assert 1 <= box.xmin < box.xmax <= ann.width and 1 <= box.ymin < box.ymax <= ann.height
            assert 0.14 * short_side <= box.ymax - box.ymin <= 0.51 * short_side
        for one, two in itertools.combinations(ann.boxes, 2):
            inter = max(0, min(one.xmax, two.xmax) - max(one.xmin, two.xmin)) * \
                    max(0, min(one.ymax, two.ymax) - max(one.ymin, two.ymin))
            smaller = min((b.xmax - b.xmin) * (b.ymax - b.ymin) for b in (one, two))
            assert inter <= 0.25 * smaller


def test_objects_stand_out_from_their_surroundings(synth48, annotations):
    """The shape's centre differs clearly from the ring of background around its box."""
    contrasts = []
    for ann in annotations:
        pixels = np.asarray(Image.open(synth48 / "images" / ann.filename), np.float32)
        for box in ann.boxes:
            x0, y0, x1, y1 = int(box.xmin), int(box.ymin), int(box.xmax), int(box.ymax)
            cx, cy = (x0 + x1) // 2, (y0 + 2 * y1) // 3  # low centre: inside triangles too
            centre = pixels[cy - 2:cy + 3, cx - 2:cx + 3].reshape(-1, 3).mean(0)
            ring = np.concatenate([pixels[max(0, y0 - 6):y0, x0:x1].reshape(-1, 3),
                                   pixels[y1:y1 + 6, x0:x1].reshape(-1, 3)])
            if len(ring):
                contrasts.append(np.abs(centre - ring.mean(0)).max())
    assert np.median(contrasts) > 40


def test_truncated_flags_follow_labelimg(annotations):
    for ann in annotations:
        assert all(b.truncated == labelimg_truncated(b, ann.width, ann.height) for b in ann.boxes)


def test_zero_images_is_refused(tmp_path):
    with pytest.raises(WebdetError, match="--images: 0"):
        make_dataset(tmp_path, images=0)
