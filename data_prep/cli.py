"""CLI subcommands of the data stage: prepare, voc-to-csv, csv-to-tfrecord, synth, kaggle."""
from pathlib import Path


def register(subparsers):
    """Add this stage's subcommands to the `webdet` parser."""
    p = subparsers.add_parser("prepare", help="LabelImg folder(s) → CSV split, label map, TFRecords",
                              description="Read LabelImg (Pascal VOC XML) folders and write data/ for training: "
                                          "train.csv, test.csv, label_map.pbtxt, sharded TFRecords and a report.")
    _add_split_args(p)
    p.add_argument("--label-map", help="impose an existing label_map.pbtxt instead of numbering the classes found")
    p.add_argument("--shards", type=int, help="TFRecord files per split (default: about 500 images each)")
    p.add_argument("--workers", type=int, help="processes for decoding/encoding (default: all cores)")
    p.add_argument("--strict", action="store_true", help="exit non-zero when there is any warning")
    p.set_defaults(func=run_prepare)

    p = subparsers.add_parser("voc-to-csv", help="LabelImg folder(s) → train.csv and test.csv only")
    _add_split_args(p)
    p.set_defaults(func=run_voc_to_csv)

    p = subparsers.add_parser("csv-to-tfrecord", help="rebuild TFRecords from (hand-edited) split CSVs")
    p.add_argument("csv", nargs="+", help="CSV files, e.g. data/train.csv data/test.csv (name = split)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--label-map", help="label_map.pbtxt to use (default: number the classes found)")
    p.add_argument("--shards", type=int)
    p.set_defaults(func=run_csv_to_tfrecord)

    p = subparsers.add_parser("synth", help="write a synthetic LabelImg dataset (shapes on clutter)")
    p.add_argument("--out", required=True)
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_synth)

    p = subparsers.add_parser("kaggle", help="download and unpack a Kaggle dataset")
    p.add_argument("dataset", help="OWNER/DATASET as on kaggle.com")
    p.add_argument("--out", required=True)
    p.set_defaults(func=run_kaggle)


def _add_split_args(p):
    p.add_argument("sources", nargs="+", help="LabelImg folders (XML beside images, or images/ + annotations/)")
    p.add_argument("--out", required=True, help="output folder, e.g. data/")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of images in the test split (0.2)")
    p.add_argument("--seed", type=int, default=42, help="split seed (42)")


def run_prepare(args) -> int:
    from data_prep.prepare import prepare
    from data_prep.summary import format_summary
    from webdet.errors import WebdetError

    try:
        report = prepare(args.sources, args.out, test_fraction=args.test_fraction, seed=args.seed,
                         label_map=args.label_map, strict=args.strict, num_shards=args.shards, workers=args.workers)
    except WebdetError as exc:
        report_path = Path(args.out) / "prepare_report.json"
        if args.strict and report_path.is_file():
            import json
            print(format_summary(json.loads(report_path.read_text(encoding="utf-8"))))
        raise exc
    print(format_summary(report))
    return 0


def run_voc_to_csv(args) -> int:
    from data_prep.convert import voc_to_csv

    print(voc_to_csv(args.sources, args.out, test_fraction=args.test_fraction, seed=args.seed))
    return 0


def run_csv_to_tfrecord(args) -> int:
    from data_prep.convert import csv_to_tfrecord

    print(csv_to_tfrecord(args.csv, args.out, label_map=args.label_map, num_shards=args.shards))
    return 0


def run_synth(args) -> int:
    from data_prep.synth import make_dataset

    out = make_dataset(args.out, images=args.images, seed=args.seed)
    print(f"Wrote {args.images} synthetic LabelImg images to {out}/images and {out}/annotations")
    return 0


def run_kaggle(args) -> int:
    from data_prep.kaggle import download

    path = download(args.dataset, args.out)
    print(f"Downloaded {args.dataset} to {path}")
    return 0
