"""`prepare` on good and flawed LabelImg folders: every image and box accounted for, every problem named."""
import io
import json
import struct

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from webdet.data_prep.label_map import read_label_map, write_label_map
from webdet.data_prep.prepare import prepare
from webdet.data_prep.tfrecords import data_files, iter_examples
from webdet.data_prep.voc import Box, write_annotation
from webdet.errors import WebdetError


# ---- small LabelImg folders made by the tests -------------------------------------------------------------

def make_image(path, size=(120, 90), fmt=None, **options):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 40, 40)).save(path, fmt, **options)
    return path


def annotate(folder, stem, boxes, size=(120, 90), image_name=None, xml_folder=None, with_image=True):
    """An image and its LabelImg XML (beside it, or in `xml_folder`)."""
    name = image_name or f"{stem}.jpg"
    if with_image:
        make_image(folder / name, size=size)
    xml_dir = xml_folder or folder
    xml_dir.mkdir(parents=True, exist_ok=True)
    write_annotation(xml_dir / f"{stem}.xml", folder=folder.name, filename=name, image_path=str(folder / name),
                     width=size[0], height=size[1], boxes=[Box(*b) for b in boxes])
    return xml_dir / f"{stem}.xml"


def clean_folder(folder, n=6):
    """`n` flawless images alternating cat / dog, so both classes can reach both splits."""
    for i in range(n):
        annotate(folder, f"img{i}", [("cat" if i % 2 else "dog", 10, 10, 60, 60)])
    return folder


def edit(path, old, new):
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def run(folder, out, **kwargs):
    return prepare([folder], out, workers=kwargs.pop("workers", 1), **kwargs)


def written_examples(out) -> dict:
    return {e["filename"]: e for split in ("train", "test") for e in iter_examples(data_files(out, split))}


def assert_counts_add_up(report):
    images, boxes = report["images"], report["boxes"]
    assert images["read"] == images["written"] + sum(images["skipped"].values())
    assert boxes["read"] == boxes["written"] + sum(boxes["dropped"].values())
    assert sum(s["images"] for s in report["splits"].values()) == images["written"]
    assert sum(s["boxes"] for s in report["splits"].values()) == boxes["written"]
    for kind, files in report["skipped"].items():
        assert len(files) == images["skipped"][kind]


def only_entry(report, section, kind) -> str:
    entries = report[section][kind]
    assert len(entries) == 1, entries
    return entries[0]


# ---- the synthetic dataset, end to end ----------------------------------------------------------------------

def test_synthetic_dataset_is_written_whole_with_negatives_and_every_class_on_both_sides(prepared_dir):
    report = json.loads((prepared_dir / "prepare_report.json").read_text())
    assert report["images"]["skipped"] == {} and report["warnings"] == {}
    assert_counts_add_up(report)
    assert set(read_label_map(prepared_dir / "label_map.pbtxt").values()) == {"circle", "square", "triangle"}
    for split in ("train", "test"):
        assert report["splits"][split]["negatives"] > 0
        assert set(report["splits"][split]["classes"]) == {"circle", "square", "triangle"}


def test_negatives_are_one_csv_row_with_empty_class_and_coordinates(prepared_dir):
    report = json.loads((prepared_dir / "prepare_report.json").read_text())
    for split in ("train", "test"):
        csv = pd.read_csv(prepared_dir / f"{split}.csv", keep_default_na=False)
        negatives = csv[csv["class"] == ""]
        assert len(negatives) == report["splits"][split]["negatives"]
        assert (negatives[["xmin", "ymin", "xmax", "ymax"]] == "").all().all()
        assert csv["filename"].nunique() == report["splits"][split]["images"]
        assert len(csv) - len(negatives) == report["splits"][split]["boxes"]


def test_records_hold_the_csv_boxes_normalised(prepared_dir):
    labels = {name: i for i, name in read_label_map(prepared_dir / "label_map.pbtxt").items()}
    for split in ("train", "test"):
        csv = pd.read_csv(prepared_dir / f"{split}.csv", keep_default_na=False)
        examples = list(iter_examples(data_files(prepared_dir, split)))
        assert {e["filename"] for e in examples} == set(csv["filename"])
        for example in examples:
            rows = csv[(csv.filename == example["filename"]) & (csv["class"] != "")]
            scale = [example["height"], example["width"]] * 2
            expected = rows[["ymin", "xmin", "ymax", "xmax"]].to_numpy(float) / scale
            np.testing.assert_allclose(example["boxes"], expected.reshape(-1, 4), atol=1e-6)
            assert list(example["classes"]) == [labels[c] for c in rows["class"]]


def test_split_is_by_image_and_seeded(synth_dir, tmp_path):
    first = prepare([synth_dir], tmp_path / "a", seed=7, write_records=False)
    again = prepare([synth_dir], tmp_path / "b", seed=7, write_records=False)
    other = prepare([synth_dir], tmp_path / "c", seed=8, write_records=False)
    test_files = {name: set(pd.read_csv(tmp_path / name / "test.csv")["filename"]) for name in "abc"}
    train_files = set(pd.read_csv(tmp_path / "a" / "train.csv")["filename"])
    assert test_files["a"] == test_files["b"] != test_files["c"]
    assert train_files.isdisjoint(test_files["a"])
    assert first["splits"] == again["splits"] and abs(first["splits"]["test"]["images"] - 24) <= 2
    assert other["images"]["written"] == 120


def test_parallel_and_serial_runs_agree_even_with_broken_files(tmp_path):
    folder = clean_folder(tmp_path / "src", n=20)
    (folder / "img3.jpg").write_bytes(b"not an image")
    annotate(folder, "outside", [("cat", 500, 500, 600, 600)])
    serial, parallel = run(folder, tmp_path / "one", workers=1), run(folder, tmp_path / "two", workers=2)
    for key in ("images", "boxes", "splits", "skipped", "warnings"):
        assert serial[key] == parallel[key]
    assert "img3.jpg" in only_entry(parallel, "skipped", "image_undecodable")
    for name in ("one", "two"):
        assert len(written_examples(tmp_path / name)) == 20


# ---- folder layouts ------------------------------------------------------------------------------------------

def test_xml_beside_images_subfolders_and_several_sources(tmp_path):
    clean_folder(tmp_path / "flat")
    nested = tmp_path / "nested"
    for i in range(4):
        annotate(nested / "images", f"n{i}", [("dog", 5, 5, 50, 50)], xml_folder=nested / "annotations")
    report = prepare([tmp_path / "flat", nested], tmp_path / "out", workers=1)
    assert report["images"]["written"] == 10 and report["skipped"] == {}
    assert "images/n0.jpg" in written_examples(tmp_path / "out")
    assert_counts_add_up(report)


def test_empty_folder_and_missing_folder_are_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(WebdetError, match=r"empty: no LabelImg annotations \(\*\.xml\) found"):
        run(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(WebdetError, match="absent: no such folder"):
        run(tmp_path / "absent", tmp_path / "out")


def test_nothing_usable_is_an_error_after_the_report_is_written(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a.xml").write_text("<annotation>")
    with pytest.raises(WebdetError, match="no usable annotated images") as caught:
        run(folder, tmp_path / "out")
    assert caught.value.report["skipped"]["xml_unparseable"]
    assert json.loads((tmp_path / "out" / "prepare_report.json").read_text())["images"]["read"] == 1


# ---- flawed XML ----------------------------------------------------------------------------------------------

def test_unparseable_xml_and_missing_or_non_numeric_fields(tmp_path):
    folder = clean_folder(tmp_path / "src")
    (folder / "broken.xml").write_text("<annotation><size>")
    make_image(folder / "broken.jpg")
    edit(annotate(folder, "nobox", [("dog", 10, 10, 50, 50)]), "bndbox>", "bndbx>")
    nosize = annotate(folder, "nosize", [("cat", 10, 10, 50, 50)])
    text = nosize.read_text()
    nosize.write_text(text[:text.index("\t<size>")] + text[text.index("</size>") + 8:])
    edit(annotate(folder, "words", [("dog", 10, 10, 50, 50), ("cat", 5, 5, 40, 40)]), "<xmax>50<", "<xmax>fifty<")
    report = run(folder, tmp_path / "out")
    assert "broken.xml" in only_entry(report, "skipped", "xml_unparseable")
    assert "nosize.xml" in only_entry(report, "warnings", "missing_size")
    # An object that cannot be placed is still in the picture: the image is skipped, not kept as background.
    assert "nobox.xml: object 1 (dog): no <bndbox>" in only_entry(report, "skipped", "missing_bndbox")
    bad = only_entry(report, "skipped", "bad_coordinate")
    assert "words.xml: object 1 (dog): <xmax> is 'fifty'" in bad
    assert report["boxes"]["dropped"] == {"bad_coordinate": 1, "missing_bndbox": 1, "image_skipped:bad_coordinate": 1}
    examples = written_examples(tmp_path / "out")
    assert examples["nosize.jpg"]["width"] == 120, "without <size> the image's own size is used"
    assert "words.jpg" not in examples and "nobox.jpg" not in examples and "broken.jpg" not in examples
    assert report["images"]["read"] == 10 and report["images"]["written"] == 7
    assert_counts_add_up(report)


def test_boxes_partly_outside_are_clipped_wholly_outside_or_empty_are_dropped(tmp_path):
    folder = clean_folder(tmp_path / "src")
    annotate(folder, "edge", [("dog", -5, 10, 130, 50), ("dog", 200, 200, 250, 250), ("cat", 30, 30, 30, 60),
                              ("cat", 10.5, 10.25, 40.75, 40), ("dog", 80, 70, 40, 20)])
    report = run(folder, tmp_path / "out")
    assert "edge.jpg" in only_entry(report, "warnings", "box_clipped")
    assert "edge.xml" in only_entry(report, "warnings", "float_coordinates")
    assert "edge.jpg" in only_entry(report, "warnings", "box_swapped_corners")
    assert report["boxes"]["dropped"] == {"box_outside_image": 1, "box_zero_area": 1}
    edge = written_examples(tmp_path / "out")["edge.jpg"]
    np.testing.assert_allclose(edge["boxes"], [[10 / 90, 0, 50 / 90, 1], [10.25 / 90, 10.5 / 120, 40 / 90, 40.75 / 120],
                                               [20 / 90, 40 / 120, 70 / 90, 80 / 120]], atol=1e-6)
    assert_counts_add_up(report)


def test_xml_filename_disagreeing_with_its_own_name_is_resolved_by_the_xml_stem(tmp_path):
    folder = clean_folder(tmp_path / "src")
    edit(annotate(folder, "raccoon-12", [("dog", 10, 10, 50, 50)]), "<filename>raccoon-12.jpg<",
         "<filename>raccoon-120.jpg<")
    make_image(folder / "raccoon-120.jpg", size=(300, 200))  # a real, different image the field points to
    annotate(folder, "raccoon-120", [("cat", 20, 20, 90, 90)], size=(300, 200), with_image=False)
    report = run(folder, tmp_path / "out")
    mismatch = only_entry(report, "warnings", "filename_mismatch")
    assert "raccoon-12.xml" in mismatch and "'raccoon-120.jpg'" in mismatch
    examples = written_examples(tmp_path / "out")
    assert examples["raccoon-12.jpg"]["width"] == 120 and examples["raccoon-12.jpg"]["class_names"] == ["dog"]
    assert examples["raccoon-120.jpg"]["class_names"] == ["cat"]


def test_duplicate_stems_images_without_xml_and_two_xml_for_one_image(tmp_path):
    folder = clean_folder(tmp_path / "src")
    annotate(folder, "twice", [("cat", 10, 10, 50, 50)])
    make_image(folder / "twice.png", fmt="PNG")
    make_image(folder / "lonely.jpg")
    annotate(folder, "img0", [("dog", 5, 5, 20, 20)], xml_folder=folder / "copies", with_image=False)
    report = run(folder, tmp_path / "out")
    assert "twice.xml" in only_entry(report, "warnings", "duplicate_stem")
    assert "twice.png" in only_entry(report, "skipped", "duplicate_stem")
    assert "lonely.jpg" in only_entry(report, "skipped", "image_without_xml")
    assert "copies/img0.xml" in only_entry(report, "skipped", "duplicate_annotation")
    assert report["images"]["written"] == 7 and report["images"]["read"] == 10
    assert report["boxes"]["dropped"] == {"image_skipped:duplicate_annotation": 1}
    assert_counts_add_up(report)


def test_non_ascii_file_and_folder_names(tmp_path):
    folder = clean_folder(tmp_path / "données")
    annotate(folder, "känguru_日本", [("dog", 10, 10, 50, 50)])
    report = run(folder, tmp_path / "sortie")
    assert report["images"]["written"] == 7
    assert "känguru_日本.jpg" in written_examples(tmp_path / "sortie")
    csv_names = set(pd.read_csv(tmp_path / "sortie" / "train.csv")["filename"]) | \
        set(pd.read_csv(tmp_path / "sortie" / "test.csv")["filename"])
    assert "känguru_日本.jpg" in csv_names


# ---- flawed images -------------------------------------------------------------------------------------------

def test_missing_truncated_and_undecodable_images(tmp_path):
    folder = clean_folder(tmp_path / "src")
    annotate(folder, "gone", [("dog", 10, 10, 50, 50)], with_image=False)
    annotate(folder, "junk", [("dog", 10, 10, 50, 50), ("cat", 1, 1, 9, 9)])
    (folder / "junk.jpg").write_bytes(b"this is not a jpeg")
    annotate(folder, "cut", [("cat", 10, 10, 50, 50)])
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 120, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    noisy.save(buffer, "JPEG")
    (folder / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) * 2 // 3])
    report = run(folder, tmp_path / "out")
    assert "gone.xml" in only_entry(report, "skipped", "image_missing")
    assert "junk.jpg" in only_entry(report, "skipped", "image_undecodable")
    assert "cut.jpg" in only_entry(report, "warnings", "image_truncated")
    assert report["boxes"]["dropped"] == {"image_skipped:image_missing": 1, "image_skipped:image_undecodable": 2}
    assert report["reencoded"] == {"truncated": 1}
    assert written_examples(tmp_path / "out")["cut.jpg"]["width"] == 120
    assert_counts_add_up(report)


def test_xml_size_disagreeing_with_the_image_uses_the_real_pixels(tmp_path):
    folder = clean_folder(tmp_path / "src")
    annotate(folder, "resized", [("dog", 10, 10, 110, 80)], size=(240, 180))
    make_image(folder / "resized.jpg", size=(100, 75))
    report = run(folder, tmp_path / "out")
    assert "XML <size> 240x180 but the image is 100x75" in only_entry(report, "warnings", "size_mismatch")
    resized = written_examples(tmp_path / "out")["resized.jpg"]
    assert (resized["width"], resized["height"]) == (100, 75)
    np.testing.assert_allclose(resized["boxes"], [[10 / 75, 0.1, 1, 1]], atol=1e-6)


def test_phone_photo_annotated_on_its_exif_rotated_view_keeps_boxes_on_the_object(tmp_path):
    folder = clean_folder(tmp_path / "src")
    # Stored 120x90 with EXIF orientation 6; the annotator saw it upright as 90x120 and boxed the marked block.
    pixels = np.full((90, 120, 3), 128, np.uint8)
    pixels[0:30, 10:40] = (255, 0, 0)      # stored: rows 0-30, columns 10-40 → upright: x 60-90, y 10-40
    entry = struct.pack("<HHII", 0x0112, 3, 1, 6)
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    Image.fromarray(pixels).save(folder / "phone.jpg", exif=exif, quality=95)
    write_annotation(folder / "phone.xml", folder="src", filename="phone.jpg", image_path="phone.jpg",
                     width=90, height=120, boxes=[Box("cat", 60, 10, 90, 40)])
    report = run(folder, tmp_path / "out")
    assert "phone.jpg" in only_entry(report, "warnings", "exif_rotated")
    phone = written_examples(tmp_path / "out")["phone.jpg"]
    assert (phone["width"], phone["height"]) == (90, 120)
    stored = np.asarray(Image.open(io.BytesIO(phone["encoded"])))
    ymin, xmin, ymax, xmax = (phone["boxes"][0] * [120, 90, 120, 90]).round().astype(int)
    inside = stored[ymin + 3:ymax - 3, xmin + 3:xmax - 3]
    assert inside[..., 0].min() > 200 and inside[..., 2].max() < 60, "the box still frames the red block"


def test_malformed_exif_is_reported_and_the_image_kept(tmp_path):
    folder = clean_folder(tmp_path / "src")
    annotate(folder, "odd", [("dog", 10, 10, 50, 50)])
    entry = struct.pack("<HHII", 0x0112, 4, 1, 65537)
    exif = b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1) + entry + struct.pack("<I", 0)
    make_image(folder / "odd.jpg", exif=exif)
    report = run(folder, tmp_path / "out")
    assert "Orientation is 65537" in only_entry(report, "warnings", "exif_malformed")
    assert written_examples(tmp_path / "out")["odd.jpg"]["encoded"] == (folder / "odd.jpg").read_bytes()


def test_non_baseline_images_are_stored_as_rgb_jpeg_and_counted(tmp_path):
    folder = clean_folder(tmp_path / "src")
    annotate(folder, "drawing", [("dog", 10, 10, 50, 50)], image_name="drawing.png")
    Image.new("RGBA", (120, 90), (0, 0, 255, 255)).save(folder / "drawing.png")
    report = run(folder, tmp_path / "out")
    assert report["reencoded"] == {"PNG file": 1}
    stored = Image.open(io.BytesIO(written_examples(tmp_path / "out")["drawing.png"]["encoded"]))
    assert stored.format == "JPEG" and stored.mode == "RGB"
    kept = written_examples(tmp_path / "out")["img0.jpg"]["encoded"]
    assert kept == (folder / "img0.jpg").read_bytes(), "baseline JPEGs are stored byte for byte"


# ---- label maps, strictness, tiny datasets --------------------------------------------------------------------

def test_imposed_label_map_keeps_its_ids(tmp_path):
    folder = clean_folder(tmp_path / "src")
    write_label_map(tmp_path / "map.pbtxt", ["zebra", "dog", "cat"])
    run(folder, tmp_path / "out", label_map=tmp_path / "map.pbtxt")
    for example in written_examples(tmp_path / "out").values():
        assert [{"dog": 2, "cat": 3}[n] for n in example["class_names"]] == list(example["classes"])
    assert read_label_map(tmp_path / "out" / "label_map.pbtxt") == {1: "zebra", 2: "dog", 3: "cat"}


def test_class_missing_from_an_imposed_label_map_lists_the_class_and_files(tmp_path):
    folder = clean_folder(tmp_path / "src")
    write_label_map(tmp_path / "dogs.pbtxt", ["dog"])
    with pytest.raises(WebdetError, match=r"dogs\.pbtxt: class\(es\) cat .*not in the label map.*img1\.jpg, img3\.jpg"):
        run(folder, tmp_path / "out", label_map=tmp_path / "dogs.pbtxt")


def test_strict_fails_after_writing_everything_when_anything_was_reported(tmp_path):
    folder = clean_folder(tmp_path / "src")
    make_image(folder / "lonely.jpg")
    with pytest.raises(WebdetError, match=r"--strict: 1 warning\(s\) or skipped image\(s\) \(image_without_xml\)"):
        run(folder, tmp_path / "out", strict=True)
    assert (tmp_path / "out" / "prepare_report.json").is_file() and data_files(tmp_path / "out", "train")
    clean = clean_folder(tmp_path / "clean")
    assert run(clean, tmp_path / "ok", strict=True)["warnings"] == {}


def test_a_dataset_too_small_to_split_warns_that_test_is_empty(tmp_path):
    folder = tmp_path / "src"
    annotate(folder, "only", [("dog", 10, 10, 50, 50)])
    report = run(folder, tmp_path / "out")
    assert report["splits"]["test"]["images"] == 0 and "test" in only_entry(report, "warnings", "split_empty")


def test_images_without_any_object_are_written_but_warned_about(tmp_path):
    folder = tmp_path / "src"
    for i in range(5):
        annotate(folder, f"empty{i}", [])
    report = run(folder, tmp_path / "out")
    assert report["images"]["written"] == 5 and report["label_map"] == {}
    assert "nothing to train on" in only_entry(report, "warnings", "no_objects")


def test_test_fraction_out_of_range_is_named(tmp_path):
    with pytest.raises(WebdetError, match=r"--test-fraction: 1\.0 is not in \[0, 1\)"):
        run(clean_folder(tmp_path / "src"), tmp_path / "out", test_fraction=1.0)


def test_shards_split_the_records_without_losing_any(tmp_path):
    folder = clean_folder(tmp_path / "src", n=10)
    report = run(folder, tmp_path / "out", num_shards=3)
    assert len(data_files(tmp_path / "out", "train")) == 3 and report["shards_per_split"] == 3
    assert len(written_examples(tmp_path / "out")) == 10
