"""`webdet prepare`: LabelImg folders → train/test CSVs → label map → sharded TFRecords + a report.

Two passes over the images, both spread across cores:
1. decode and validate every image, fit its boxes to the real pixels (nothing is kept in memory);
2. once the split is known from the images that survived, store each one into its split's shards
   (the file's own bytes when it already is a baseline RGB JPEG, otherwise a re-encoded JPEG).

Nothing is lost silently: every image read is written or counted as skipped with its reason, every
box read is written or counted as dropped, and every warning names its file.
"""
import json
import time
from contextlib import contextmanager
from pathlib import Path

from webdet.data_prep import csv_io, label_map as label_map_io, tfrecords
from webdet.data_prep.images import stored_jpeg
from webdet.data_prep.pool import check_record, default_workers, encode_record, ordered_map
from webdet.data_prep.report import Report, build_report
from webdet.data_prep.scan import ImageRecord, scan_sources
from webdet.data_prep.split import default_shards, split_images
from webdet.contract import LabelMap
from webdet.errors import WebdetError

class PhaseClock:
    """Wall-clock seconds per named phase (parse, decode_validate, encode, write…)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.started = time.perf_counter()

    @contextmanager
    def __call__(self, phase: str):
        tick = time.perf_counter()
        try:
            yield
        finally:
            self.add(phase, time.perf_counter() - tick)

    def add(self, phase: str, seconds: float) -> None:
        self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def summary(self) -> dict:
        return {"total": time.perf_counter() - self.started, **self.seconds}


def check_images(records: list[ImageRecord], report: Report, workers: int) -> list[ImageRecord]:
    """Validate every image in parallel; return the usable records with real sizes and fitted boxes."""
    usable = []
    for checked in ordered_map(check_record, records, workers):
        record = checked.record
        if checked.problem:
            report.skip(checked.problem.kind, record.image_path, str(checked.problem), boxes=len(record.boxes))
            continue
        for kind, detail in checked.info.warnings + checked.fitted.warnings:
            report.warn(kind, record.image_path, detail)
        report.drop_boxes(checked.fitted.dropped)
        record.boxes, record.width, record.height = checked.fitted.kept, checked.info.width, checked.info.height
        record.info = checked.info
        if checked.info.reencode:
            report.reencoded[checked.info.reencode] += 1
        usable.append(record)
    return usable


def resolve_labels(records, label_map_path=None) -> LabelMap:
    """The label map: an imposed one, or ids 1..n for the classes found, sorted by name."""
    found = sorted({b.name for r in records for b in r.boxes})
    if not label_map_path:
        return LabelMap(enumerate(found, start=1))
    imposed = label_map_io.read_label_map(label_map_path)
    missing = [name for name in found if name not in imposed.ids()]
    if missing:
        files = sorted({r.filename for r in records for b in r.boxes if b.name in missing})
        raise WebdetError(f"{label_map_path}: class(es) {', '.join(missing)} used in the XML are not in the label map "
                          f"(files: {', '.join(files[:5])}{' …' if len(files) > 5 else ''})")
    return imposed


def split_records(records: list[ImageRecord], test_fraction: float, seed: int) -> dict[str, list[ImageRecord]]:
    """The records of each split (by image, seeded, stratified by class), in their original order."""
    if not 0.0 <= test_fraction < 1.0:
        raise WebdetError(f"--test-fraction: {test_fraction} is not in [0, 1)")
    _, test_keys = split_images({r.key: {b.name for b in r.boxes} for r in records}, test_fraction, seed)
    test_keys = set(test_keys)
    return {"train": [r for r in records if r.key not in test_keys], "test": [r for r in records if r.key in test_keys]}


def stored_images(records: list[ImageRecord], workers: int):
    """The JPEG bytes to store for each record, in order: files kept as they are are read here,
    re-encodings come from the process pool (working ahead while the caller writes)."""
    reencoded = ordered_map(encode_record, [(r.image_path, r.info) for r in records if r.info.reencode], workers)
    for record in records:
        yield next(reencoded) if record.info.reencode else stored_jpeg(record.image_path, record.info)


def write_tfrecords(splits: dict[str, list[ImageRecord]], out_dir: Path, labels: LabelMap, shards: int,
                    workers: int, clock: PhaseClock) -> None:
    """Store every record into `SPLIT-0000i-of-0000n.tfrecord`; source ids run from 1 over all splits."""
    source_id = 0
    for split, records in splits.items():
        writer = tfrecords.ShardedWriter(out_dir, split, shards)
        try:
            encoded_images = stored_images(records, workers)
            for record in records:
                with clock("encode"):
                    encoded = next(encoded_images)
                source_id += 1
                with clock("write"):
                    writer.write(tfrecords.make_example(record, encoded, source_id, labels))
        finally:
            writer.close()


def write_labels(path: Path, labels: LabelMap, imposed=None) -> None:
    """The label map in use: the imposed file as it is, or ids 1..n for the classes found."""
    if imposed:
        path.write_text(Path(imposed).read_text(encoding="utf-8"), encoding="utf-8")
    else:
        label_map_io.write_label_map(path, [labels[i] for i in sorted(labels)])


def _warn_empty_data(splits: dict, test_fraction: float, report: Report) -> None:
    if not any(r.boxes for records in splits.values() for r in records):
        report.warn("no_objects", "all images", "no image has a usable box; there is nothing to train on")
    for split, records in splits.items():
        if not records and (split == "train" or test_fraction > 0):
            report.warn("split_empty", split, f"no images in the {split} split; add images or change --test-fraction")


def _save_report(out_dir: Path, result: dict) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "prepare_report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")


def _with_report(error: WebdetError, result: dict) -> WebdetError:
    """Attach the written report to the error so the CLI can still print the summary."""
    error.report = result
    return error


def prepare(sources, out_dir, *, test_fraction=0.2, seed=42, label_map=None, strict=False,
            num_shards=None, workers=None, write_records=True) -> dict:
    """Write `train.csv`, `test.csv`, `label_map.pbtxt`, TFRecord shards and `prepare_report.json`.

    Returns the report (also written to `out_dir/prepare_report.json`). With `strict`, raises
    WebdetError after writing everything when anything was warned about or skipped.
    `write_records=False` writes only the CSVs and the report (`webdet voc-to-csv`).
    """
    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    out_dir, workers = Path(out_dir), workers or default_workers()
    clock, report = PhaseClock(), Report()
    with clock("parse"):
        records = scan_sources(sources, report)
    with clock("decode_validate"):
        records = check_images(records, report, workers)
    labels = resolve_labels(records, label_map)
    splits = split_records(records, test_fraction, seed)
    shards = num_shards or default_shards(len(records))

    def finish() -> dict:
        result = build_report(report, sources=sources, out_dir=out_dir, splits=splits, labels=labels,
                              shards=shards if records and write_records else 0, seconds=clock.summary(),
                              test_fraction=test_fraction, seed=seed)
        _save_report(out_dir, result)
        return result

    if not records:
        raise _with_report(WebdetError(f"{', '.join(map(str, sources))}: no usable annotated images "
                                       f"({report.images_read} read, all skipped); see "
                                       f"{out_dir / 'prepare_report.json'}"), finish())
    _warn_empty_data(splits, test_fraction, report)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split, members in splits.items():
        csv_io.write_csv(out_dir / f"{split}.csv", members)
    if write_records:
        write_tfrecords(splits, out_dir, labels, shards, workers, clock)
        write_labels(out_dir / "label_map.pbtxt", labels, label_map)
    result = finish()
    if strict and report.problem_count():
        raise _with_report(WebdetError(f"--strict: {report.problem_count()} warning(s) or skipped image(s) "
                                       f"({', '.join(report.problem_kinds())}); see "
                                       f"{out_dir / 'prepare_report.json'}"), result)
    return result
