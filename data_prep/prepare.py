"""`webdet prepare`: LabelImg folders → train/test CSVs → label map → sharded TFRecords + a report.

Nothing is lost silently: every image read is either written or counted as skipped with its reason,
every box read is written or counted as dropped, and every warning names its file.
"""
import json
import os
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from data_prep import csv_io, label_map as label_map_io, tfrecords
from data_prep.boxes import clean_boxes
from data_prep.images import IMAGE_SUFFIXES, ImageProblem, load_image
from data_prep.split import default_shards, split_images
from data_prep.voc import AnnotationError, Box, read_annotation
from webdet.errors import WebdetError


@dataclass
class ImageRecord:
    """One image to write: where it comes from and its boxes in pixels of the written image."""
    key: str                       # unique id: source + relative path
    source: str                    # the source folder
    filename: str                  # path relative to the source folder
    image_path: Path
    boxes: list[Box] = field(default_factory=list)
    annotated_size: tuple | None = None
    width: int = 0
    height: int = 0


class Report:
    """Counts and warnings, grouped by kind with the files named."""

    def __init__(self):
        self.warnings: dict[str, list[str]] = defaultdict(list)
        self.skipped: dict[str, list[str]] = defaultdict(list)
        self.images_read = 0
        self.boxes_read = 0
        self.boxes_dropped: Counter = Counter()

    def warn(self, kind: str, where: str, detail: str = "") -> None:
        self.warnings[kind].append(f"{where}: {detail}" if detail else where)

    def skip(self, kind: str, where: str, detail: str, boxes: int = 0) -> None:
        self.skipped[kind].append(f"{where}: {detail}")
        if boxes:
            self.boxes_dropped[f"image_skipped:{kind}"] += boxes


def find_images(source: Path) -> dict[str, list[Path]]:
    """Every image under a source folder, by file stem."""
    index = defaultdict(list)
    for path in sorted(source.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            index[path.stem].append(path)
    return index


def _pick_image(xml: Path, ann, candidates: list[Path], report: Report) -> Path | None:
    """The XML's own stem decides; the <filename> field only breaks ties and is checked."""
    named = Path(ann.filename).name if ann.filename else None
    if named and Path(named).stem != xml.stem:
        report.warn("filename_mismatch", str(xml), f"<filename> is {named!r}; the image is matched by the "
                                                   f"XML's own name {xml.stem!r}")
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    exact = [c for c in candidates if c.name == named] or [c for c in candidates if c.parent == xml.parent]
    chosen = (exact or candidates)[0]
    report.warn("duplicate_stem", str(xml), f"{len(candidates)} images named {xml.stem}.*: "
                                            f"{', '.join(c.name for c in candidates)}; using {chosen.name}")
    return chosen


def scan_sources(sources, report: Report) -> list[ImageRecord]:
    """Pair every XML with its image in each source folder (any layout: side by side or in subfolders)."""
    records, seen_keys = [], set()
    for source in sources:
        source = Path(source)
        if not source.is_dir():
            raise WebdetError(f"{source}: no such folder")
        xmls = sorted(source.rglob("*.xml"))
        images = find_images(source)
        if not xmls:
            raise WebdetError(f"{source}: no LabelImg annotations (*.xml) found; is this the right folder?")
        annotated = set()
        for xml in xmls:
            report.images_read += 1
            try:
                ann = read_annotation(xml)
            except AnnotationError as exc:
                report.skip(exc.kind, str(xml), str(exc))
                continue
            report.boxes_read += len(ann.boxes) + sum(1 for k, _ in ann.warnings if k in DROPPING_XML_WARNINGS)
            for kind, detail in ann.warnings:
                report.warn(kind, str(xml), detail)
                if kind in DROPPING_XML_WARNINGS:
                    report.boxes_dropped[kind] += 1
            image = _pick_image(xml, ann, images.get(xml.stem, []), report)
            if image is None:
                report.skip("image_missing", str(xml), f"no image named {xml.stem}.* (<filename> {ann.filename!r})",
                            boxes=len(ann.boxes))
                continue
            annotated.add(image)
            relative = image.relative_to(source).as_posix()
            key = f"{source}/{relative}"
            if key in seen_keys:
                report.skip("duplicate_annotation", str(xml), f"{relative} is already annotated by another XML",
                            boxes=len(ann.boxes))
                continue
            seen_keys.add(key)
            size = (ann.width, ann.height) if ann.width and ann.height else None
            records.append(ImageRecord(key, str(source), relative, image, ann.boxes, size))
        for paths in images.values():
            for path in paths:
                if path not in annotated:
                    report.warn("image_without_xml", str(path), "no annotation file; not used")
    return records


DROPPING_XML_WARNINGS = ("missing_name", "missing_bndbox", "bad_coordinate")


def _load(record: ImageRecord):
    """Worker: decode, validate and (re-)encode one image and fit its boxes (runs in a process pool)."""
    try:
        loaded = load_image(record.image_path, record.annotated_size)
    except ImageProblem as exc:
        return record, None, [], exc
    boxes, box_warnings = clean_boxes(record.boxes, loaded.width, loaded.height)
    return record, loaded, (boxes, box_warnings), None


def _map(records, workers: int):
    if workers <= 1 or len(records) < 16:
        yield from map(_load, records)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from pool.map(_load, records, chunksize=8)


def load_records(records, report: Report, workers: int, timings: Counter):
    """Yield (record, encoded JPEG) for every usable image; report the rest."""
    for record, loaded, fitted, problem in _map(records, workers):
        if problem:
            report.skip(problem.kind, str(record.image_path), str(problem), boxes=len(record.boxes))
            continue
        boxes, box_warnings = fitted
        for kind, detail in loaded.warnings + box_warnings:
            report.warn(kind, str(record.image_path), detail)
            if kind in ("box_zero_area", "box_outside_image"):
                report.boxes_dropped[kind] += 1
        timings["decode_validate"] += loaded.decode_seconds
        timings["encode"] += loaded.encode_seconds
        record.boxes, record.width, record.height = boxes, loaded.width, loaded.height
        yield record, loaded.encoded


def resolve_labels(records, label_map_path, report: Report) -> dict[str, int]:
    """Ids from an imposed label map, or 1..n for the classes found (sorted by name)."""
    found = sorted({b.name for r in records for b in r.boxes})
    if not label_map_path:
        return {name: i for i, name in enumerate(found, start=1)}
    imposed = {name: i for i, name in label_map_io.read_label_map(label_map_path).items()}
    missing = [name for name in found if name not in imposed]
    if missing:
        files = sorted({r.filename for r in records for b in r.boxes if b.name in missing})
        raise WebdetError(f"{label_map_path}: class(es) {', '.join(missing)} used in the XML are not in the label map "
                          f"(files: {', '.join(files[:5])}{' …' if len(files) > 5 else ''})")
    return imposed


def prepare(sources, out_dir, *, test_fraction=0.2, seed=42, label_map=None, strict=False,
            num_shards=None, workers=None, write_records=True) -> dict:
    """Write `train.csv`, `test.csv`, `label_map.pbtxt`, TFRecord shards and `prepare_report.json`.

    With `write_records=False` only the CSVs and the report are written (`webdet voc-to-csv`).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    report, timings = Report(), Counter()
    records = scan_sources([Path(s) for s in sources], report)
    timings["parse"] = time.perf_counter() - started
    if not records:
        raise WebdetError(f"{', '.join(map(str, sources))}: no usable annotated images "
                          f"({sum(len(v) for v in report.skipped.values())} skipped)")
    labels = resolve_labels(records, label_map, report)
    train_keys, test_keys = split_images({r.key: {b.name for b in r.boxes} for r in records}, test_fraction, seed)
    side = {**{k: "train" for k in train_keys}, **{k: "test" for k in test_keys}}
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = num_shards or default_shards(len(records))
    written = write_splits(records, side, out_dir, labels, shards, report, timings,
                           workers or os.cpu_count() or 1, write_records)
    for split in ("train", "test"):
        csv_io.write_csv(out_dir / f"{split}.csv", written[split])
    if write_records:
        write_labels(out_dir / "label_map.pbtxt", labels, label_map)
    result = build_report(sources, out_dir, report, written, labels, shards, timings,
                          time.perf_counter() - started, test_fraction, seed)
    (out_dir / "prepare_report.json").write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    if strict and report.warnings:
        raise WebdetError(f"--strict: {sum(len(v) for v in report.warnings.values())} warning(s) "
                          f"({', '.join(sorted(report.warnings))}); see {out_dir / 'prepare_report.json'}")
    return result


def write_splits(records, side: dict, out_dir: Path, labels, shards: int, report: Report, timings: Counter,
                 workers: int, write_records: bool = True) -> dict:
    """Decode/encode every record in a process pool and stream it into its split's shards."""
    splits = sorted(set(side.values()))
    writers = {s: tfrecords.ShardedWriter(out_dir, s, shards) for s in splits} if write_records else {}
    written = defaultdict(list)
    try:
        for index, (record, encoded) in enumerate(load_records(records, report, workers, timings), start=1):
            split = side[record.key]
            if write_records:
                tick = time.perf_counter()
                writers[split].write(tfrecords.make_example(record, encoded, index, labels))
                timings["write"] += time.perf_counter() - tick
            written[split].append(record)
    finally:
        for writer in writers.values():
            writer.close()
    return written


def write_labels(path: Path, labels: dict[str, int], imposed=None) -> None:
    if imposed:
        path.write_text(Path(imposed).read_text(encoding="utf-8"), encoding="utf-8")
    else:
        path.write_text(label_map_io.format_label_map(n for n, _ in sorted(labels.items(), key=lambda x: x[1])),
                        encoding="utf-8")


def _split_summary(records) -> dict:
    classes = Counter(b.name for r in records for b in r.boxes)
    return {"images": len(records), "boxes": sum(classes.values()),
            "negatives": sum(1 for r in records if not r.boxes), "classes": dict(sorted(classes.items()))}


def build_report(sources, out_dir, report: Report, written, labels, shards, timings, seconds,
                 test_fraction, seed) -> dict:
    n_written = sum(len(v) for v in written.values())
    boxes_written = sum(len(r.boxes) for v in written.values() for r in v)
    return {
        "sources": [str(s) for s in sources], "out_dir": str(out_dir),
        "images": {"read": report.images_read, "written": n_written,
                   "skipped": {k: len(v) for k, v in sorted(report.skipped.items())}},
        "boxes": {"read": report.boxes_read, "written": boxes_written,
                  "dropped": dict(sorted(report.boxes_dropped.items()))},
        "splits": {split: _split_summary(written[split]) for split in ("train", "test")},
        "label_map": {str(i): n for n, i in sorted(labels.items(), key=lambda x: x[1])},
        "shards_per_split": shards, "test_fraction": test_fraction, "seed": seed,
        "skipped": {k: v for k, v in sorted(report.skipped.items())},
        "warnings": {k: v for k, v in sorted(report.warnings.items())},
        "seconds": {"total": round(seconds, 3), **{k: round(v, 3) for k, v in sorted(timings.items())}},
    }
