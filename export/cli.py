"""CLI subcommands `webdet export` and `webdet predict`."""


def register(subparsers):
    """Add this stage's subcommands to the `webdet` parser."""
    p = subparsers.add_parser("export", help="SavedModel (OD API signature) + TF.js web model, parity-checked",
                              description="Export a run's checkpoint as a TF2 OD API-compatible SavedModel and a "
                                          "TF.js graph model (4 MiB shards + metadata.json), and prove they agree.")
    p.add_argument("--run", required=True, help="the training run folder")
    p.add_argument("--out", required=True, help="export folder, e.g. export/kangaroo")
    p.add_argument("--checkpoint", default="best", help="best (default), last or a ckpt-N prefix")
    p.add_argument("--name", help="the model's name in metadata.json, shown by the web app and the service "
                                  "(default: the run folder's name)")
    p.add_argument("--quantize", choices=("none", "uint8", "float16"), default="none",
                   help="weight quantization of the web model (default none)")
    p.add_argument("--data", help="prepared data/ folder: parity on its test images and AP of the exported model")
    p.add_argument("--overwrite", action="store_true", help="replace an existing export folder")
    p.add_argument("--no-parity", action="store_true", help="skip the browser-runtime parity check")
    p.set_defaults(func=run_export)

    p = subparsers.add_parser("predict", help="detect objects in image files with an exported model")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--model", required=True, help="an export folder (with saved_model/)")
    p.add_argument("--out", default="predictions", help="folder for annotated images and predictions.json")
    p.add_argument("--score-threshold", type=float, help="default: the model's metadata.json threshold")
    p.set_defaults(func=run_predict)


def run_export(args) -> int:
    from webdet.export.exporter import export_run

    export_run(args.run, args.out, checkpoint=args.checkpoint, quantize=args.quantize, data_dir=args.data,
               overwrite=args.overwrite, parity=not args.no_parity, name=args.name)
    return 0


def run_predict(args) -> int:
    from webdet.export.predict import predict

    summary = predict(args.model, args.images, args.out, args.score_threshold)
    return 0 if summary["predicted"] else 1
