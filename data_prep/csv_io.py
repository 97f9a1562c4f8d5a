"""The tutorial's CSV: `filename,width,height,class,xmin,ymin,xmax,ymax,source`, one row per box, in pixels.

`filename` is the image's path relative to `source`, the LabelImg folder it came from. `source` is
written as given when absolute, otherwise relative to the CSV's own folder (absolute when they only
share the filesystem root), so a project folder holding both can move and the CSV works from any
working directory. An image without objects
(a negative) is kept as exactly one row
whose `class`, `xmin`, `ymin`, `xmax` and `ymax` cells are empty; `csv-to-tfrecord` reads such a row
back as an image with no boxes.
"""
import os
from pathlib import Path

import pandas as pd

from webdet.errors import WebdetError

COLUMNS = ["filename", "width", "height", "class", "xmin", "ymin", "xmax", "ymax", "source"]


def source_for_csv(source, csv_dir) -> str:
    """The `source` cell: absolute sources as given; relative ones relative to the CSV's folder when the two
    share a parent folder below the filesystem root, otherwise absolute."""
    if Path(source).is_absolute():
        return str(source)
    folder, csv_dir = Path(source).resolve(), Path(csv_dir).resolve()
    try:
        shared = Path(os.path.commonpath([folder, csv_dir]))
    except ValueError:  # another drive (Windows): no relative path exists
        return str(folder)
    return str(folder) if shared == Path(shared.anchor) else Path(os.path.relpath(folder, csv_dir)).as_posix()


def source_from_csv(cell: str, csv_dir) -> Path:
    """Where a `source` cell points: absolute as is, relative from the CSV's folder (else the working directory)."""
    path = Path(cell)
    if path.is_absolute():
        return path
    beside_csv = Path(csv_dir) / path
    return beside_csv if beside_csv.is_dir() or not path.is_dir() else path


def rows_for(record, csv_dir=".") -> list[dict]:
    """CSV rows of one image record (see `scan.ImageRecord`)."""
    base = {"filename": record.filename, "width": record.width, "height": record.height,
            "source": source_for_csv(record.source, csv_dir)}
    if not record.boxes:
        return [{**base, "class": "", "xmin": "", "ymin": "", "xmax": "", "ymax": ""}]
    return [{**base, "class": b.name, "xmin": _num(b.xmin), "ymin": _num(b.ymin), "xmax": _num(b.xmax),
             "ymax": _num(b.ymax)} for b in record.boxes]


def _num(value: float):
    """Whole pixels as integers (as LabelImg writes them), fractional ones unrounded."""
    return int(value) if float(value).is_integer() else float(value)


def write_csv(path, records) -> int:
    """Write the rows of `records` (an empty list gives just the header); returns the number of rows."""
    rows = [row for record in records for row in rows_for(record, Path(path).parent)]
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return len(rows)


def read_csv(path) -> pd.DataFrame:
    """Read a split CSV, checking the columns; empty class cells mark images without boxes."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype={"filename": str, "class": str, "source": str}, keep_default_na=False)
    except FileNotFoundError:
        raise WebdetError(f"{path}: no such CSV file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise WebdetError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise WebdetError(f"{path}: missing column(s) {', '.join(missing)} (expected {','.join(COLUMNS)})")
    return frame
