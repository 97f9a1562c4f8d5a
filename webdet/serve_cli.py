"""CLI subcommands `webdet serve`, `webdet worker` and `webdet build-webapp`."""
from webdet.service.settings import ServiceSettings


def register(subparsers):
    """Add `serve`, `worker` and `build-webapp` to the `webdet` parser."""
    p = subparsers.add_parser("serve", help="serve the web app, the model and the detection API (FastAPI)")
    p.add_argument("export_dir", help="an export folder written by `webdet export`")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all interfaces)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="server processes, each with its own model "
                   "(more than 1 needs --queue redis://…)")
    p.add_argument("--queue", default="memory", help="where async jobs run: memory (in this process, the "
                   "default) or redis://HOST:PORT/DB for `webdet worker` processes")
    p.add_argument("--result-ttl", type=int, default=3600, help="seconds a job's result is kept (default 3600)")
    p.add_argument("--retries", type=int, default=0, help="times a failed Redis job is retried (default 0)")
    p.add_argument("--job-timeout", type=int, default=300, help="seconds a Redis job may run (default 300)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body (default 20 MB)")
    p.add_argument("--max-pixels", type=float, default=40.0, help="largest image in megapixels (default 40)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="URL",
                   help="let a front-end on this origin call the API (repeatable; * for any)")
    p.add_argument("--threads", type=int, default=2, help="detections run at once in this process (default 2)")
    p.add_argument("--max-queued", type=int, default=64, help="in-process jobs waiting before 503 (default 64)")
    p.set_defaults(func=run_serve)  # TensorFlow imported quietly up front; the model loads after start-up

    p = subparsers.add_parser("worker", help="run detection jobs from Redis (for `webdet serve --queue redis://…`)")
    p.add_argument("export_dir", help="the same export folder the server serves")
    p.add_argument("--queue", required=True, help="redis://HOST:PORT/DB, as given to `webdet serve`")
    p.add_argument("--name", default=None, help="worker name (default: webdet-HOST-PID)")
    p.add_argument("--burst", action="store_true", help="exit once the queue is empty")
    p.set_defaults(func=run_worker)

    p = subparsers.add_parser("build-webapp", help="write a static site (app + model) for any static host")
    p.add_argument("export_dir")
    p.add_argument("--out", required=True, help="output folder, e.g. site/")
    p.set_defaults(func=run_build, needs_tensorflow=False)


def settings_from(args) -> ServiceSettings:
    from webdet.service.settings import check_settings

    return check_settings(ServiceSettings(
        export_dir=args.export_dir, host=args.host, port=args.port, workers=args.workers, queue=args.queue,
        result_ttl=args.result_ttl, retries=args.retries, job_timeout=args.job_timeout,
        max_upload_mb=args.max_upload_mb, max_pixels_mpx=args.max_pixels, cors_origins=tuple(args.cors_origin),
        threads=args.threads, max_queued=args.max_queued))


def run_serve(args) -> int:
    from webdet.service.server import run_service

    settings = settings_from(args)
    if settings.uses_redis:
        from webdet.service.redis_jobs import connect

        connect(settings.queue).close()
    run_service(settings)
    return 0


def run_worker(args) -> int:
    import logging.config

    from webdet.errors import WebdetError
    from webdet.service.server import logging_config
    from webdet.service.settings import web_model_dir
    from webdet.service.worker import run_worker as work

    if not (web_model_dir(args.export_dir) / "metadata.json").is_file():
        raise WebdetError(f"{args.export_dir}: not an export folder (no web_model/metadata.json)")
    logging.config.dictConfig(logging_config())
    work(args.queue, args.export_dir, name=args.name, burst=args.burst)
    return 0


def run_build(args) -> int:
    from webdet.site import build_site

    out = build_site(args.export_dir, args.out)
    print(f"Wrote {out}: upload it to any static host (GitHub Pages, Netlify, S3…); the model is in {out}/model/")
    return 0
