"""The tutorial's two steps on their own: `voc-to-csv`, and `csv-to-tfrecord` for hand-edited CSVs."""
import json
import os
import time
from collections import Counter
from pathlib import Path

from data_prep.csv_io import read_csv
from data_prep.prepare import ImageRecord, Report, prepare, resolve_labels, write_labels, write_splits
from data_prep.split import default_shards
from data_prep.summary import format_summary
from data_prep.voc import Box
from webdet.errors import WebdetError


def voc_to_csv(sources, out_dir, *, test_fraction=0.2, seed=42) -> str:
    """Write only `train.csv` and `test.csv` (and the report); returns the printed summary."""
    report = prepare(sources, out_dir, test_fraction=test_fraction, seed=seed, write_records=False)
    return format_summary(report)


def _number(frame_path, row_number: int, field: str, value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise WebdetError(f"{frame_path}: row {row_number}: field '{field}' is {value!r}, not a number") from None


def records_from_csv(path) -> list[ImageRecord]:
    """One record per image of a split CSV (rows with an empty class are images without boxes)."""
    frame = read_csv(path)
    records: dict[tuple, ImageRecord] = {}
    for row_number, row in enumerate(frame.to_dict("records"), start=2):
        source, filename = str(row["source"]), str(row["filename"])
        key = (source, filename)
        if key not in records:
            image = Path(source) / filename
            records[key] = ImageRecord(f"{source}/{filename}", source, filename, image)
        if row["class"]:
            coords = [_number(path, row_number, f, row[f]) for f in ("xmin", "ymin", "xmax", "ymax")]
            records[key].boxes.append(Box(row["class"], *coords))
    return list(records.values())


def csv_to_tfrecord(csv_paths, out_dir, *, label_map=None, num_shards=None) -> str:
    """Rebuild `SPLIT-*.tfrecord` for each CSV (split = the CSV's name) and the label map."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report, timings, lines = Report(), Counter(), []
    by_split = {Path(p).stem: records_from_csv(p) for p in csv_paths}
    everything = [r for records in by_split.values() for r in records]
    labels = resolve_labels(everything, label_map, report)
    side = {r.key: split for split, records in by_split.items() for r in records}
    report.images_read = len(everything)
    report.boxes_read = sum(len(r.boxes) for r in everything)
    started = time.perf_counter()
    written = write_splits(everything, side, out_dir, labels, num_shards or default_shards(len(everything)),
                           report, timings, os.cpu_count() or 1)
    write_labels(out_dir / "label_map.pbtxt", labels, label_map)
    for split in by_split:
        boxes = sum(len(r.boxes) for r in written[split])
        lines.append(f"{split}: {len(by_split[split])} images read, {len(written[split])} written, {boxes} boxes")
    for kind, items in {**report.skipped, **report.warnings}.items():
        lines.append(f"  {kind}: {len(items)}: {'; '.join(items[:3])}{' …' if len(items) > 3 else ''}")
    lines.append(f"Wrote {out_dir} in {time.perf_counter() - started:.1f} s")
    (out_dir / "csv_to_tfrecord_report.json").write_text(json.dumps(
        {"skipped": report.skipped, "warnings": report.warnings,
         "written": {s: len(v) for s, v in written.items()}}, indent=2), encoding="utf-8")
    return "\n".join(lines)
