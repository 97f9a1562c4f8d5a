"""CLI subcommands of the data stage: prepare, voc-to-csv, csv-to-tfrecord, synth, kaggle.

Each one parses flags, calls the library function with explicit arguments and prints its summary.
"""


def register(subparsers):
    """Add this stage's subcommands to the `webdet` parser."""
    _register_prepare(subparsers)
    _register_voc_to_csv(subparsers)
    _register_csv_to_tfrecord(subparsers)
    _register_synth(subparsers)
    _register_kaggle(subparsers)


def _register_prepare(subparsers):
    p = subparsers.add_parser(
        "prepare", help="LabelImg folder(s) → CSV split, label map, TFRecords",
        description="Read LabelImg (Pascal VOC XML) folders (XML beside the images, or images/ + annotations/) and "
                    "write OUT/train.csv, test.csv, label_map.pbtxt, train-*.tfrecord, test-*.tfrecord and "
                    "prepare_report.json. Every flaw in the data is counted and named; --strict makes any "
                    "warning or skipped image fail the command.")
    _add_split_args(p)
    p.add_argument("--label-map", metavar="FILE",
                   help="impose an existing label_map.pbtxt instead of numbering the classes found")
    p.add_argument("--shards", type=int, metavar="N", help="TFRecord files per split (default: about 500 images each)")
    p.add_argument("--strict", action="store_true", help="exit non-zero when anything was warned about or skipped")
    p.set_defaults(func=run_prepare)


def _register_voc_to_csv(subparsers):
    p = subparsers.add_parser("voc-to-csv", help="LabelImg folder(s) → train.csv and test.csv only",
                              description="The first half of prepare: validate and split, write the CSVs and the "
                                          "report; edit the CSVs, then rebuild the records with csv-to-tfrecord.")
    _add_split_args(p)
    p.set_defaults(func=run_voc_to_csv)


def _register_csv_to_tfrecord(subparsers):
    p = subparsers.add_parser("csv-to-tfrecord", help="rebuild TFRecords from (hand-edited) split CSVs",
                              description="Write SPLIT-*.tfrecord for each CSV (the file name is the split: "
                                          "train.csv → train-*.tfrecord) and label_map.pbtxt.")
    p.add_argument("csv", nargs="+", help="CSV files, e.g. data/train.csv data/test.csv")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--label-map", metavar="FILE", help="label_map.pbtxt to use (default: number the classes found)")
    p.add_argument("--shards", type=int, metavar="N", help="TFRecord files per split (default: about 500 images each)")
    _add_workers_arg(p)
    p.set_defaults(func=run_csv_to_tfrecord)


def _register_synth(subparsers):
    p = subparsers.add_parser("synth", help="write a synthetic LabelImg dataset (shapes on clutter)",
                              description="Write OUT/images/*.jpg and OUT/annotations/*.xml: circles, squares and "
                                          "triangles on cluttered backgrounds, some images without objects.")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--images", type=int, default=200, help="number of images (200)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same files (0)")
    p.set_defaults(func=run_synth, needs_tensorflow=False)


def _register_kaggle(subparsers):
    p = subparsers.add_parser("kaggle", help="download and unpack a Kaggle dataset",
                              description="Download OWNER/DATASET with the kaggle package and unzip it into OUT. "
                                          "Needs ~/.kaggle/kaggle.json or KAGGLE_USERNAME and KAGGLE_KEY.")
    p.add_argument("dataset", help="OWNER/DATASET as on kaggle.com, e.g. hugozanini1/kangaroodataset")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run_kaggle, needs_tensorflow=False)


def _add_split_args(p):
    p.add_argument("sources", nargs="+", help="LabelImg folders (XML beside images, or images/ + annotations/)")
    p.add_argument("--out", required=True, help="output folder, e.g. data/")
    p.add_argument("--test-fraction", type=float, default=0.2, help="share of images in the test split (0.2)")
    p.add_argument("--seed", type=int, default=42, help="split seed (42)")
    _add_workers_arg(p)


def _add_workers_arg(p):
    p.add_argument("--workers", type=int, metavar="N", help="processes for decoding/encoding (default: all cores)")


def _print_summary_then_raise(exc):
    """A failure that still wrote a report (--strict, nothing usable): print the summary, then fail."""
    from webdet.data_prep.summary import format_summary

    if getattr(exc, "report", None):
        print(format_summary(exc.report))
    raise exc


def run_prepare(args) -> int:
    from webdet.data_prep.prepare import prepare
    from webdet.data_prep.summary import format_summary
    from webdet.errors import WebdetError

    try:
        report = prepare(args.sources, args.out, test_fraction=args.test_fraction, seed=args.seed,
                         label_map=args.label_map, strict=args.strict, num_shards=args.shards, workers=args.workers)
    except WebdetError as exc:
        _print_summary_then_raise(exc)
    print(format_summary(report))
    return 0


def run_voc_to_csv(args) -> int:
    from webdet.data_prep.convert import voc_to_csv
    from webdet.data_prep.summary import format_summary
    from webdet.errors import WebdetError

    try:
        report = voc_to_csv(args.sources, args.out, test_fraction=args.test_fraction, seed=args.seed,
                            workers=args.workers)
    except WebdetError as exc:
        _print_summary_then_raise(exc)
    print(format_summary(report))
    return 0


def run_csv_to_tfrecord(args) -> int:
    from webdet.data_prep.convert import csv_to_tfrecord
    from webdet.data_prep.summary import format_summary

    print(format_summary(csv_to_tfrecord(args.csv, args.out, label_map=args.label_map, num_shards=args.shards,
                                         workers=args.workers)))
    return 0


def run_synth(args) -> int:
    from webdet.data_prep.synth import make_dataset

    out = make_dataset(args.out, images=args.images, seed=args.seed)
    print(f"Wrote {args.images} synthetic LabelImg images to {out / 'images'} and {out / 'annotations'}")
    return 0


def run_kaggle(args) -> int:
    from webdet.data_prep.kaggle import download

    path = download(args.dataset, args.out)
    print(f"Downloaded {args.dataset} to {path}")
    return 0
