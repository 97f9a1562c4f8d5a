"""The prepare report: counts that add up (read = written + skipped) and every warning with its file."""
from collections import Counter, defaultdict

from webdet.contract import LabelMap


class Report:
    """Collects what happened to every image and box while a dataset is prepared."""

    def __init__(self):
        self.warnings: dict[str, list[str]] = defaultdict(list)   # kind → "file: detail"
        self.skipped: dict[str, list[str]] = defaultdict(list)    # kind → "file: detail" (images not written)
        self.images_read = 0
        self.boxes_read = 0
        self.boxes_dropped: Counter = Counter()                  # kind → boxes not written
        self.reencoded: Counter = Counter()                      # reason → images stored as a new JPEG

    def warn(self, kind: str, where, detail: str = "") -> None:
        self.warnings[kind].append(f"{where}: {detail}" if detail else str(where))

    def skip(self, kind: str, where, detail: str, boxes: int = 0) -> None:
        """An image that will not be written; its `boxes` are counted as dropped with the same reason."""
        self.skipped[kind].append(f"{where}: {detail}")
        if boxes:
            self.boxes_dropped[f"image_skipped:{kind}"] += boxes

    def drop_boxes(self, kinds) -> None:
        self.boxes_dropped.update(kinds)

    def problem_count(self) -> int:
        """Warnings plus skipped images: what `--strict` refuses."""
        return sum(len(v) for v in self.warnings.values()) + sum(len(v) for v in self.skipped.values())

    def problem_kinds(self) -> list[str]:
        return sorted(set(self.warnings) | set(self.skipped))


def split_summary(records) -> dict:
    """Images, boxes, images without objects and boxes per class of one split."""
    classes = Counter(b.name for r in records for b in r.boxes)
    return {"images": len(records), "boxes": sum(classes.values()),
            "negatives": sum(1 for r in records if not r.boxes), "classes": dict(sorted(classes.items()))}


def build_report(report: Report, *, sources, out_dir, splits: dict, labels: LabelMap, shards: int,
                 seconds: dict, test_fraction, seed) -> dict:
    """The JSON-ready report; `splits` maps a split name to the records written into it."""
    written = [r for records in splits.values() for r in records]
    return {
        "sources": [str(s) for s in sources], "out_dir": str(out_dir),
        "images": {"read": report.images_read, "written": len(written),
                   "skipped": {k: len(v) for k, v in sorted(report.skipped.items())}},
        "boxes": {"read": report.boxes_read, "written": sum(len(r.boxes) for r in written),
                  "dropped": dict(sorted(report.boxes_dropped.items()))},
        "reencoded": dict(sorted(report.reencoded.items())),
        "splits": {name: split_summary(records) for name, records in splits.items()},
        "label_map": {str(i): labels[i] for i in sorted(labels)},
        "shards_per_split": shards, "test_fraction": test_fraction, "seed": seed,
        "skipped": {k: v for k, v in sorted(report.skipped.items())},
        "warnings": {k: v for k, v in sorted(report.warnings.items())},
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
    }
