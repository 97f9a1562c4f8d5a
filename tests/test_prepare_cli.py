"""The data commands as a user types them: printed summaries, exit codes, one-line errors, the CSV round trip."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from webdet.data_prep.label_map import read_label_map
from webdet.data_prep.tfrecords import data_files, iter_examples
from webdet.data_prep.voc import Box, write_annotation
from webdet.cli import main


def annotate(folder, stem, boxes, size=(120, 90)):
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (40, 90, 200)).save(folder / f"{stem}.jpg")
    write_annotation(folder / f"{stem}.xml", folder=folder.name, filename=f"{stem}.jpg", image_path=f"{stem}.jpg",
                     width=size[0], height=size[1], boxes=[Box(*b) for b in boxes])


def labelimg_folder(folder, n=8):
    for i in range(n):
        annotate(folder, f"img{i}", [("cat" if i % 2 else "dog", 10, 10, 60, 60)])
    return folder


def examples(out, split) -> dict:
    return {e["filename"]: e for e in iter_examples(data_files(out, split))}


def test_prepare_prints_counts_splits_classes_and_grouped_warnings(tmp_path, capsys):
    folder = labelimg_folder(tmp_path / "src")
    annotate(folder, "edge", [("dog", -5, 10, 130, 50)])
    (folder / "img3.jpg").write_bytes(b"garbage")
    assert main(["prepare", str(folder), "--out", str(tmp_path / "data")]) == 0
    out = capsys.readouterr().out
    assert "Images: 9 read = 8 written + 1 skipped (image_undecodable 1)" in out
    assert "Boxes:  9 read = 8 written + 1 dropped (image_skipped:image_undecodable 1)" in out
    assert "  train: " in out and "  test : " in out and "cat " in out and "dog " in out
    assert "Label map: 1 cat, 2 dog" in out
    lines = out.splitlines()
    skipped = lines.index("  skipped image_undecodable: 1")
    assert "img3.jpg" in lines[skipped + 1]
    clipped = lines.index("  warning box_clipped: 1")
    assert "edge.jpg" in lines[clipped + 1]


def test_strict_exits_non_zero_with_one_error_line_after_the_summary(tmp_path, capsys):
    folder = labelimg_folder(tmp_path / "src")
    annotate(folder, "edge", [("dog", -5, 10, 130, 50)])
    assert main(["prepare", str(folder), "--out", str(tmp_path / "data"), "--strict"]) == 2
    captured = capsys.readouterr()
    assert "warning box_clipped: 1" in captured.out
    assert captured.err.count("\n") == 1 and "--strict: 1 warning(s)" in captured.err


def test_empty_folder_is_one_line_without_traceback(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["prepare", str(tmp_path / "empty"), "--out", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.splitlines() == [f"webdet prepare: error: {tmp_path / 'empty'}: "
                                                    "no LabelImg annotations (*.xml) found; is this the right folder?"]


def test_prepare_help_names_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    out = capsys.readouterr().out
    for option in ("--out", "--test-fraction", "--seed", "--label-map", "--shards", "--workers", "--strict"):
        assert option in out


def test_voc_to_csv_then_edited_csv_rebuilds_the_records(tmp_path, capsys):
    folder = labelimg_folder(tmp_path / "src")
    assert main(["voc-to-csv", str(folder), "--out", str(tmp_path / "data"), "--seed", "3"]) == 0
    assert "CSVs only" in capsys.readouterr().out
    assert data_files(tmp_path / "data", "train") == [] and not (tmp_path / "data" / "label_map.pbtxt").exists()
    train = pd.read_csv(tmp_path / "data" / "train.csv", dtype=str, keep_default_na=False)
    renamed = train.filename.iloc[0]
    train.loc[0, "class"] = "lynx"                                    # relabel one box by hand
    train.loc[1, ["class", "xmin", "ymin", "xmax", "ymax"]] = ""      # turn one image into a negative
    emptied = train.filename.iloc[1]
    train.to_csv(tmp_path / "data" / "train.csv", index=False)
    assert main(["csv-to-tfrecord", str(tmp_path / "data" / "train.csv"), str(tmp_path / "data" / "test.csv"),
                 "--out", str(tmp_path / "data")]) == 0
    rebuilt = examples(tmp_path / "data", "train")
    assert rebuilt[renamed]["class_names"] == ["lynx"] and len(rebuilt[emptied]["boxes"]) == 0
    assert set(read_label_map(tmp_path / "data" / "label_map.pbtxt").values()) == {"cat", "dog", "lynx"}
    assert len(rebuilt) == len(set(train.filename))


def test_csv_round_trip_gives_the_same_records(prepared_dir, tmp_path):
    assert main(["csv-to-tfrecord", str(prepared_dir / "train.csv"), str(prepared_dir / "test.csv"),
                 "--out", str(tmp_path / "rebuilt")]) == 0
    for split in ("train", "test"):
        original, rebuilt = examples(prepared_dir, split), examples(tmp_path / "rebuilt", split)
        assert original.keys() == rebuilt.keys()
        for name, example in original.items():
            np.testing.assert_allclose(rebuilt[name]["boxes"], example["boxes"], atol=1e-6)
            assert list(rebuilt[name]["classes"]) == list(example["classes"])
            assert rebuilt[name]["encoded"] == example["encoded"]


def test_csv_sources_are_relative_to_the_csv_so_any_working_directory_works(tmp_path, monkeypatch):
    labelimg_folder(tmp_path / "project" / "photos")
    monkeypatch.chdir(tmp_path / "project")
    assert main(["prepare", "photos", "--out", "data"]) == 0
    assert set(pd.read_csv("data/train.csv")["source"]) == {"../photos"}
    monkeypatch.chdir(tmp_path)
    assert main(["csv-to-tfrecord", "project/data/train.csv", "--out", "rebuilt"]) == 0
    assert len(examples(tmp_path / "rebuilt", "train")) == len(set(pd.read_csv("project/data/train.csv").filename))


def test_csv_source_is_absolute_when_only_the_root_is_shared(tmp_path, monkeypatch):
    from webdet.data_prep.csv_io import source_for_csv

    monkeypatch.chdir(tmp_path)
    assert source_for_csv("photos", tmp_path / "data") == "../photos"
    assert source_for_csv("photos", "/") == str(tmp_path / "photos")
    assert source_for_csv("/srv/photos", tmp_path / "data") == "/srv/photos"


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(xmin=f.xmin.astype(str).where(f.index != 0, "12px")), "row 2: field 'xmin' is '12px'"),
    (lambda f: f.assign(width=f.width.astype(str).where(f.index != 0, "wide")), "row 2: field 'width' is 'wide'"),
    (lambda f: f.assign(**{"class": f["class"].where(f.index != 0, "")}), "row 2: field 'class' is empty"),
    (lambda f: f.drop(columns=["source"]), "missing column(s) source"),
])
def test_hand_edited_csv_errors_name_the_row_and_field(prepared_dir, tmp_path, capsys, change, message):
    frame = pd.read_csv(prepared_dir / "train.csv", keep_default_na=False)
    frame = frame[frame["class"] != ""].reset_index(drop=True)
    change(frame).to_csv(tmp_path / "train.csv", index=False)
    assert main(["csv-to-tfrecord", str(tmp_path / "train.csv"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "train.csv" in err


def test_an_image_in_two_split_csvs_is_refused(prepared_dir, tmp_path, capsys):
    frame = pd.read_csv(prepared_dir / "train.csv", keep_default_na=False)
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.head(3).to_csv(tmp_path / "test.csv", index=False)
    assert main(["csv-to-tfrecord", str(tmp_path / "train.csv"), str(tmp_path / "test.csv"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "an image belongs to one split" in capsys.readouterr().err


def test_synth_command_writes_the_requested_images(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--images", "5", "--seed", "2"]) == 0
    assert "Wrote 5 synthetic LabelImg images" in capsys.readouterr().out
    assert len(list((tmp_path / "s" / "images").glob("*.jpg"))) == 5
    assert len(list((tmp_path / "s" / "annotations").glob("*.xml"))) == 5


def test_data_commands_without_tensorflow_start_fast_paths(tmp_path):
    """synth and kaggle do not import TensorFlow (checked in a fresh interpreter)."""
    code = ("import sys; from webdet.cli import main; main(['synth', '--out', sys.argv[1], '--images', '1']); "
            "print('tensorflow' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], capture_output=True, text=True,
                            timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0 and result.stdout.strip().endswith("False")
