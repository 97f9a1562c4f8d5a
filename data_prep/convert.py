"""The tutorial's two steps on their own: `voc-to-csv`, and `csv-to-tfrecord` for hand-edited CSVs.

`csv-to-tfrecord` trusts the CSV for boxes and classes but not for pixels: every image is decoded and
validated again, boxes are fitted to the real image, and the same report as `prepare` is written.
"""
import json
from pathlib import Path

from webdet.data_prep.csv_io import read_csv, source_from_csv
from webdet.data_prep.pool import default_workers
from webdet.data_prep.prepare import PhaseClock, check_images, prepare, resolve_labels, write_labels, write_tfrecords
from webdet.data_prep.report import Report, build_report
from webdet.data_prep.scan import ImageRecord
from webdet.data_prep.split import default_shards
from webdet.data_prep.voc import COORDS, Box
from webdet.errors import WebdetError

REPORT_NAME = "csv_to_tfrecord_report.json"


def voc_to_csv(sources, out_dir, *, test_fraction=0.2, seed=42, workers=None) -> dict:
    """Write only `train.csv`, `test.csv` and the report (images are still validated); returns the report."""
    return prepare(sources, out_dir, test_fraction=test_fraction, seed=seed, workers=workers, write_records=False)


def _number(csv_path, row_number: int, field: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise WebdetError(f"{csv_path}: row {row_number}: field '{field}' is {value!r}, not a number") from None


def _box(csv_path, row_number: int, row: dict) -> Box | None:
    """The box of one CSV row; None for the row of an image without objects (empty class and coordinates)."""
    if row["class"]:
        return Box(row["class"], *(_number(csv_path, row_number, key, row[key]) for key in COORDS))
    if any(str(row[key]).strip() for key in COORDS):
        raise WebdetError(f"{csv_path}: row {row_number}: field 'class' is empty but the row has coordinates "
                          "(an image without objects has empty class and coordinates)")
    return None


def records_from_csv(csv_path) -> list[ImageRecord]:
    """One record per image of a split CSV, boxes in CSV order; `width`/`height` are checked against the image."""
    csv_path = Path(csv_path)
    records: dict[tuple, ImageRecord] = {}
    for row_number, row in enumerate(read_csv(csv_path).to_dict("records"), start=2):
        source, filename = str(row["source"]), str(row["filename"])
        if not filename:
            raise WebdetError(f"{csv_path}: row {row_number}: field 'filename' is empty")
        if (source, filename) not in records:
            size = (int(_number(csv_path, row_number, "width", row["width"])),
                    int(_number(csv_path, row_number, "height", row["height"])))
            folder = source_from_csv(source, csv_path.parent)
            records[(source, filename)] = ImageRecord(f"{folder}/{filename}", str(folder), filename,
                                                      folder / filename, annotated_size=size)
        box = _box(csv_path, row_number, row)
        if box:
            records[(source, filename)].boxes.append(box)
    return list(records.values())


def read_split_csvs(csv_paths) -> dict[str, list[ImageRecord]]:
    """{split name (the CSV's stem): records}; an image may belong to one split only."""
    splits, owner = {}, {}
    for csv_path in map(Path, csv_paths):
        if csv_path.stem in splits:
            raise WebdetError(f"{csv_path}: a second CSV for split '{csv_path.stem}' (the file name is the split)")
        splits[csv_path.stem] = records_from_csv(csv_path)
        for record in splits[csv_path.stem]:
            if record.key in owner:
                raise WebdetError(f"{csv_path}: {record.filename} is also in {owner[record.key]}; "
                                  "an image belongs to one split")
            owner[record.key] = csv_path
    return splits


def csv_to_tfrecord(csv_paths, out_dir, *, label_map=None, num_shards=None, workers=None) -> dict:
    """Rebuild `SPLIT-*.tfrecord` for each CSV (split = the CSV's name) and the label map; returns the report."""
    out_dir, workers = Path(out_dir), workers or default_workers()
    clock, report = PhaseClock(), Report()
    with clock("parse"):
        read = read_split_csvs(csv_paths)
    report.images_read = sum(len(records) for records in read.values())
    report.boxes_read = sum(len(r.boxes) for records in read.values() for r in records)
    with clock("decode_validate"):
        splits = {split: check_images(records, report, workers) for split, records in read.items()}
    labels = resolve_labels([r for records in splits.values() for r in records], label_map)
    shards = num_shards or default_shards(sum(map(len, splits.values())))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_tfrecords(splits, out_dir, labels, shards, workers, clock)
    write_labels(out_dir / "label_map.pbtxt", labels, label_map)
    result = build_report(report, sources=[str(p) for p in csv_paths], out_dir=out_dir, splits=splits, labels=labels,
                          shards=shards, seconds=clock.summary(), test_fraction=None, seed=None)
    (out_dir / REPORT_NAME).write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    return result
