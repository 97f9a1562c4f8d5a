"""CLI subcommands `webdet serve` and `webdet build-webapp`."""


def register(subparsers):
    """Add `serve` and `build-webapp` to the `webdet` parser."""
    p = subparsers.add_parser("serve", help="serve the web app with an exported model (and /api/detect)")
    p.add_argument("export_dir", help="an export folder written by `webdet export`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all interfaces)")
    p.add_argument("--port", type=int, default=8000)
    p.set_defaults(func=run_serve, needs_tensorflow=False)

    p = subparsers.add_parser("build-webapp", help="write a static site (app + model) for any static host")
    p.add_argument("export_dir")
    p.add_argument("--out", required=True, help="output folder, e.g. site/")
    p.set_defaults(func=run_build, needs_tensorflow=False)


def run_serve(args) -> int:
    from webdet.serve import serve

    serve(args.export_dir, args.host, args.port)
    return 0


def run_build(args) -> int:
    from webdet.serve import build_site

    out = build_site(args.export_dir, args.out)
    print(f"Wrote {out}: upload it to any static host (GitHub Pages, Netlify, S3…); the model is in {out}/model/")
    return 0
